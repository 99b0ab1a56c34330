"""One training loop for every model kind (text, handwriting, the recognizer).

A `Task` owns the model, its data and its metrics; the loop owns everything
that is the same for all of them: device and precision, optimizer and
learning-rate schedule, gradient clipping, non-finite guards, periodic
held-out evaluation, best/last checkpoints, exact resume, limits on steps and
time, signals, progress and the metrics log.

Exact resume: `last.pt` holds the model, the optimizer, the step, the RNG
states and the task's data position (and any state it carries, such as the
hidden state of truncated BPTT). A run killed at any moment and resumed from
it repeats the lost steps with the same random numbers, so on a CPU with a
fixed seed the final weights equal those of an uninterrupted run.

Under torchrun (see dist.py) the same loop trains with DistributedDataParallel:
each process calls `task.shard(rank, world)` to read only its share of the
data, `--batch` is per process (the step's batch is `batch x processes`), the
learning rate and step count mean what they mean in one process, and every
decision that must be the same everywhere (skip a non-finite step, stop on a
signal or --max-time, save) is taken from one small all-reduce per step. Rank 0
alone evaluates, draws and writes; `last.pt` holds every rank's data position,
carried state and RNG state, so resuming with the same number of processes is
exact in the same sense as above (on the CPU; CUDA kernels are not bitwise
deterministic anyway).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ..atomic import atomic_open
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import GenseqError, first_line
from . import dist


class Task(Protocol):
    """What a model kind provides to the loop."""

    kind: str             # checkpoint kind: "text" | "handwriting" | "recognizer"
    unit: str             # what throughput counts: "chars" | "points"
    model: nn.Module
    batch: int            # examples (streams, lines) per step in one process

    config: Any           # the model's config dataclass (to_dict(): plain types)
    def meta(self) -> dict: ...              # vocabulary/alphabet and data description
    def compatible(self, ckpt: dict) -> str | None: ...  # why a checkpoint can't resume this run
    def train_batch(self, device: torch.device) -> Any: ...   # advances the data position
    def loss(self, batch: Any) -> tuple[torch.Tensor, int]: ...  # mean loss, units counted
    def evaluate(self, device: torch.device) -> dict[str, float]: ...  # must hold "val_loss"
    def state_dict(self) -> dict: ...        # data position + carried state (tensors/plain)
    def load_state_dict(self, state: dict) -> None: ...
    def on_eval(self, out: Path, step: int) -> None: ...      # pictures; may do nothing
    def shard(self, rank: int, world: int) -> None: ...       # read only this process's share
    # Optional: `kept(state) -> state`, the weights best.pt keeps of the model's
    # (e.g. blended with the starting model's); last.pt always keeps the model's own.


@dataclass(frozen=True)
class TrainOptions:
    out: Path
    max_steps: int = 5000
    max_time: float | None = None      # seconds of training in this invocation
    lr: float = 2e-3
    min_lr_frac: float = 0.1           # cosine decay to lr * min_lr_frac at max_steps
    warmup: int = 100
    weight_decay: float = 0.0
    clip: float = 5.0                  # global gradient-norm clip
    eval_every: int = 250
    save_every: float = 300.0          # seconds between last.pt saves (also at each eval)
    device: str = "auto"               # auto | cpu | cuda | mps
    precision: str = "auto"            # auto | fp32 | bf16 (auto: bf16 on CUDA, fp32 elsewhere)
    threads: int | None = None         # CPU threads (None: torch's default)
    seed: int = 1337
    resume: bool = False
    init: Path | None = None           # fine-tune: start from these weights, fresh optimizer
    progress: bool = True
    nan_patience: int = 5              # non-finite steps before restoring the last checkpoint

    def __post_init__(self) -> None:
        # NaN passes every `<` test (and Click's ranges): reject it here, before any work.
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise GenseqError(f"--lr must be a positive number, not {self.lr}")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise GenseqError(f"--clip must be a positive number, not {self.clip}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise GenseqError(f"--weight-decay must be a number >= 0, not {self.weight_decay}")
        if self.max_time is not None and not self.max_time >= 0:
            raise GenseqError(f"--max-time must be >= 0, not {self.max_time}")
        if not self.save_every > 0:
            raise GenseqError(f"--save-every must be a positive number of minutes, not {self.save_every / 60}")
        if not 0 <= self.seed < 2**63:
            raise GenseqError("--seed must be between 0 and 2**63 - 1")


@dataclass
class TrainResult:
    step: int
    best_val: float | None
    stopped: str                       # "max_steps" | "max_time" | "interrupted"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    index = name.removeprefix("cuda:")
    if name.startswith("cuda:") and not (index.isascii() and index.isdigit()):
        raise GenseqError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N, mps)")
    if name.startswith("cuda") and name in ("cuda", f"cuda:{index}"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise GenseqError(f"--device {name}: no CUDA device is available")
        if name != "cuda" and int(index) >= count:
            raise GenseqError(f"--device {name}: there are {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GenseqError("--device mps: no MPS device is available")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise GenseqError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N, mps)")
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    """bf16 autocast (fp32 weights, optimizer and loss); a no-op for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision not in ("fp32", "bf16"):
        raise GenseqError(f"unknown precision {precision!r} (auto, fp32, bf16)")
    return precision


def lr_at(step: int, opts: TrainOptions) -> float:
    """Linear warm-up, then cosine decay to lr * min_lr_frac (a function of the step
    alone, so resuming needs no scheduler state)."""
    if step < opts.warmup:
        return opts.lr * (step + 1) / opts.warmup
    span = max(1, opts.max_steps - opts.warmup)
    progress = min(1.0, (step - opts.warmup) / span)
    floor = opts.lr * opts.min_lr_frac
    return floor + 0.5 * (opts.lr - floor) * (1 + math.cos(math.pi * progress))


class _Signals:
    """SIGINT/SIGTERM set a flag; the loop saves at the next step boundary.

    A second signal stops at once, unless it comes within `grace` seconds of
    the first: torchrun passes a terminal's Ctrl-C on to workers that the
    terminal has already interrupted.
    """

    def __init__(self, grace: float = 0.0) -> None:
        self.caught: int | None = None
        self.grace, self._at = grace, 0.0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_Signals":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a test runner thread)
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.caught is not None:  # a second Ctrl-C: stop now, last.pt is still intact
            if time.monotonic() - self._at >= self.grace:
                raise KeyboardInterrupt
            return
        self.caught, self._at = signum, time.monotonic()

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, _, gauss = random.getstate()
    random.setstate((version, tuple(state["python"]), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _optimizer_to(opt: torch.optim.Optimizer, device: torch.device) -> None:
    for st in opt.state.values():
        for k, v in st.items():
            if isinstance(v, torch.Tensor) and k != "step":
                st[k] = v.to(device)


class MetricsLog:
    """metrics.jsonl beside the checkpoints (one JSON object per line), and the
    loss-curve picture loss.svg redrawn from it."""

    def __init__(self, out: Path, resume_step: int | None) -> None:
        self.path = out / "metrics.jsonl"
        self.records: list[dict] = []
        if self.path.exists() and resume_step is not None:
            for line in self.path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    rec = json.loads(line)
                    if rec.get("step", 0) <= resume_step:  # drop what the lost steps wrote
                        self.records.append(rec)
        self._rewrite()

    def _rewrite(self) -> None:
        with atomic_open(self.path) as fh:
            for rec in self.records:
                fh.write(json.dumps(rec) + "\n")

    def add(self, rec: dict) -> None:
        self.records.append(rec)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")

    def draw(self) -> None:
        try:
            from ..render.plots import loss_curve_svg
        except ImportError:
            return
        loss_curve_svg(self.records, self.out_svg)

    @property
    def out_svg(self) -> Path:
        return self.path.with_name("loss.svg")


def _log(msg: str, progress) -> None:
    if progress is not None:
        progress.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr)


SCHEDULE = ("max_steps", "lr", "warmup", "weight_decay")  # options a resumed run may change


def _schedule_changes(saved: dict, opts: TrainOptions) -> str:
    """'--max-steps 30000 -> 6600, ...' for the schedule options a resumed run changed."""
    now = {k: str(getattr(opts, k)) for k in SCHEDULE}
    return ", ".join(f"--{k.replace('_', '-')} {saved[k]} -> {now[k]}"
                     for k in SCHEDULE if k in saved and saved[k] != now[k])


def _own(train_state: dict, rank: int) -> dict:
    """This rank's data position, carried state and RNG state from a checkpoint's train state."""
    return train_state["ranks"][rank] if "ranks" in train_state else train_state


def _describe(task: Task, opts: TrainOptions, world: dist.World) -> str:
    """The effective batch, learning rate and steps, as printed at the start."""
    batch = getattr(task, "batch", None)
    size = "" if batch is None else f"batch {batch} per step; "
    if batch is not None and world.distributed:
        size = f"batch {batch} per process x {world.size} processes = {batch * world.size} per step; "
    return (f"{size}lr {opts.lr:g} (warm-up {opts.warmup}, cosine to {opts.lr * opts.min_lr_frac:g}); "
            f"{opts.max_steps} steps")


def _same_dropout(ckpt: dict, config: dict) -> dict:
    """`ckpt` with the run's dropout: a fine-tune may change it (it has no weights);
    everything else in the configuration must match the model file's."""
    if "dropout" in config and "dropout" in ckpt["config"]:
        return {**ckpt, "config": {**ckpt["config"], "dropout": config["dropout"]}}
    return ckpt


def train(task: Task, opts: TrainOptions) -> TrainResult:
    """Train `task.model` under `opts`; see the module docstring."""
    if opts.max_steps < 1:
        raise GenseqError("--max-steps must be at least 1")
    if opts.threads:
        torch.set_num_threads(opts.threads)
    world = dist.start(pick_device(opts.device))
    try:
        with run_folder(Path(opts.out)) if world.main else contextlib.nullcontext():
            result = _train(task, opts, world)
            world.sum([0.0])  # nobody leaves before rank 0 has written the last checkpoint
        return result
    finally:
        world.close()


@contextlib.contextmanager
def run_folder(out: Path):
    """The run folder `out`, made if missing and held by this run alone (an
    exclusive lock on the folder itself while the run lasts): a second run given
    the same --out is refused instead of mixing its checkpoints and metrics in."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no flock on this platform: unguarded
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GenseqError(f"{out} is in use by another run; wait for it to end or choose another --out") from None
        except OSError:
            pass  # a filesystem without locks (some network mounts): unguarded
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _train(task: Task, opts: TrainOptions, world: dist.World) -> TrainResult:
    run = _Run(task, opts, world)                      # run folder, device, seeds, this rank's data
    ckpt = run.start(world.from_main(run.read_start))  # new, --init weights, or resumed from last.pt
    run.announce(ckpt)
    run.model.train()
    with _Signals(grace=5.0 if world.distributed else 0.0) as signals:
        stopped = "max_steps"
        while run.step < opts.max_steps:
            stop = run.train_step(signals)  # evaluates and checkpoints when due
            if stop is not None and run.step < opts.max_steps:  # a signal or --max-time, all ranks at once
                stopped = stop
                break
    return run.finish(stopped, signals)


class _Run:
    """One invocation of the loop: its state, and the steps of the algorithm."""

    def __init__(self, task: Task, opts: TrainOptions, world: dist.World) -> None:
        """Set up: the run folder, device and precision, this rank's share of the
        data and its random stream."""
        self.task, self.opts, self.world = task, opts, world
        self.out, self.main = Path(opts.out), world.main
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.last_path, self.best_path = self.out / "last.pt", self.out / "best.pt"
        self.device = world.device
        self.precision = resolve_precision(opts.precision, self.device)
        if world.distributed:
            task.shard(world.rank, world.size)
        # Each rank its own random stream (dropout); rank 0's is a single-process run's.
        torch.manual_seed(opts.seed + world.rank)
        random.seed(opts.seed + world.rank)
        self.model = task.model
        self.step, self.best_val, self.lr_scale = 0, None, 1.0
        self.bad_steps = 0  # non-finite steps in a row
        self.bar = None

    def read_start(self) -> tuple[str, dict] | None:
        """What the run starts from: ("resume", last.pt), ("init", the --init model
        file) or None. Rank 0 reads the run folder; what it finds reaches every rank."""
        opts, task, last_path = self.opts, self.task, self.last_path
        if opts.resume:
            if not last_path.exists():
                raise GenseqError(f"--resume: no checkpoint at {last_path} (the run saved none yet: start it "
                                  "again without --resume)")
            ckpt = load_checkpoint(last_path, kind=task.kind)
            if "train" not in ckpt:
                raise GenseqError(f"{last_path} holds weights only; it cannot resume a run")
            why = task.compatible(ckpt)
            if why:
                raise GenseqError(f"cannot resume {last_path}: {why}; resume with the flags the run started "
                                  "with, or start a new run from it with --init")
            saved = ckpt["train"].get("world", 1)
            if saved != self.world.size:
                raise GenseqError(f"cannot resume {last_path}: it was saved by {saved} process(es), this run has "
                                  f"{self.world.size}; resume with {saved}, or start a new run from it with --init")
            return "resume", ckpt
        if last_path.exists():
            raise GenseqError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        if opts.init is not None:
            init = load_checkpoint(opts.init, kind=task.kind)
            if hasattr(task, "adapt_init"):  # e.g. a handwriting model whose alphabet the data grows
                init = task.adapt_init(init)
            why = task.compatible(_same_dropout(init, task.config.to_dict()))
            if why:
                raise GenseqError(f"cannot fine-tune from {opts.init}: {why}")
            return "init", init
        return None

    def start(self, start_from: tuple[str, dict] | None) -> dict | None:
        """Load the starting weights; when resuming, also the optimizer, step, data
        position and random state (the checkpoint, returned). Then the metrics log,
        the clocks and the progress bar."""
        model, opts = self.model, self.opts
        ckpt = start_from[1] if start_from is not None and start_from[0] == "resume" else None
        if start_from is not None:
            model.load_state_dict(start_from[1]["model"])
        model.to(self.device)
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": opts.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}], lr=opts.lr)
        if ckpt is not None:
            try:
                tr = ckpt["train"]
                self._restore(tr)
                self.best_val, self.lr_scale = tr["best_val"], float(tr["lr_scale"])
                if self.best_val is not None:  # None until the first evaluation
                    self.best_val = float(self.best_val)
                _set_rng_state(_own(tr, self.world.rank)["rng"])
            except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, IndexError) as err:
                if isinstance(err, torch.cuda.OutOfMemoryError) or "CUDA" in str(err):
                    raise  # the device, not the file
                raise GenseqError(f"cannot resume {self.last_path}: its training state is damaged "
                                  f"({type(err).__name__}: {first_line(err)}); start a new run from it with "
                                  "--init") from None
        # The training forward pass goes through DDP (it averages the gradients);
        # everything else uses the bare model.
        self.wrapped = self.world.wrap(model)
        self.log = MetricsLog(self.out, self.step if ckpt is not None else None) if self.main else None
        self.started = self.last_save = time.monotonic()
        # The training loss since the last report (a resumed run goes on with the saved sums, so its
        # metrics are an uninterrupted run's); units per second count this invocation's steps only.
        window = ckpt["train"].get("window", (0.0, 0)) if ckpt is not None else (0.0, 0)
        self.window_loss, self.window_units = float(window[0]), int(window[1])
        self.rate_units, self.window_t = 0, time.monotonic()
        from tqdm import tqdm
        self.bar = tqdm(total=opts.max_steps, initial=self.step, desc=f"train {self.task.kind}", unit="step",
                        disable=not (opts.progress and self.main), dynamic_ncols=True, file=sys.stderr)
        return ckpt

    def _restore(self, tr: dict) -> None:
        """The optimizer, step and this rank's data position of a checkpoint's train state;
        the optimizer takes this run's --weight-decay (announced when it changed)."""
        self.optimizer.load_state_dict(tr["optimizer"])
        for group in self.optimizer.param_groups:  # moments of another shape would fail at the first step
            for p in group["params"]:
                for v in self.optimizer.state.get(p, {}).values():
                    if torch.is_tensor(v) and v.dim() > 0 and v.shape != p.shape:
                        raise ValueError(f"optimizer moments of shape {tuple(v.shape)} for weights {tuple(p.shape)}")
        self.optimizer.param_groups[0]["weight_decay"] = self.opts.weight_decay  # the matrices' group
        _optimizer_to(self.optimizer, self.device)
        if not isinstance(tr["step"], int) or isinstance(tr["step"], bool) or tr["step"] < 0:
            raise ValueError(f"step {tr['step']!r} is not a count")
        self.step = tr["step"]
        self.task.load_state_dict(_own(tr, self.world.rank)["task"])

    def announce(self, ckpt: dict | None) -> None:
        """What is trained, where and how; what a resumed run changed."""
        model, opts, world, step = self.model, self.opts, self.world, self.step
        if step == 0 and ckpt is None:
            self.say(f"training {sum(p.numel() for p in model.parameters()):,} parameters on {self.device} "
                     f"({self.precision}); checkpoints in {self.out}")
        if world.distributed:
            self.say(f"data parallel: {world.size} processes ({'nccl' if self.device.type == 'cuda' else 'gloo'})")
        self.say(_describe(self.task, opts, world))
        if ckpt is not None:
            changed = _schedule_changes(ckpt["train"].get("options", {}), opts)
            if changed and step < opts.max_steps:
                self.say(f"resumed at step {step} with other options ({changed}): training follows them from "
                         f"here (learning rate {lr_at(step, opts) * self.lr_scale:.3g} now)")
            elif changed:
                self.say(f"resumed at step {step}, already at --max-steps {opts.max_steps}: nothing to train")

    def train_step(self, signals: _Signals) -> str | None:
        """One optimizer step (or a skipped one), then the evaluation or checkpoint
        it is due. Returns why to stop before the next step, if anything."""
        opts, task, optimizer = self.opts, self.task, self.optimizer
        lr = lr_at(self.step, opts) * self.lr_scale
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = task.train_batch(self.device)
        with autocast(self.device, self.precision), dist.forward_through(task, self.wrapped):
            loss, units = task.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        finite = bool(torch.isfinite(loss))
        # One collective per step: every rank skips, stops and saves together.
        now = time.monotonic()
        bad, loss_sum, units_sum, caught, late, due = self.world.sum([
            0.0 if finite else 1.0, float(loss.detach()) * units if finite else 0.0, units if finite else 0,
            signals.caught is not None, opts.max_time is not None and now - self.started >= opts.max_time,
            now - self.last_save >= opts.save_every])
        stop = "interrupted" if caught else "max_time" if late else None
        finite = not bad
        if finite:
            loss.backward()
            gnorm = nn.utils.clip_grad_norm_(self.model.parameters(), opts.clip)
            finite = bool(torch.isfinite(gnorm))  # the same on every rank: gradients are averaged
        if not finite:
            self._skip_update()
            return stop
        optimizer.step()
        self.bad_steps = 0
        self.step += 1
        self.window_loss += loss_sum
        self.window_units += int(units_sum)
        self.rate_units += int(units_sum)
        self.bar.update(1)
        if self.step % 10 == 0 or self.step == opts.max_steps:
            self._report_throughput(lr)
        if self.step % opts.eval_every == 0 or self.step == opts.max_steps:
            self._evaluate_and_checkpoint()
        elif due:
            self.save(self.last_path, with_train=True)
            self.last_save = time.monotonic()
        return stop

    def _skip_update(self) -> None:
        """Skip the update of a non-finite step; a streak of them means the run has
        diverged: go back to the last good checkpoint at half the learning rate."""
        self.bad_steps += 1
        self.say(f"step {self.step}: non-finite loss or gradient, update skipped")
        good = None
        if self.bad_steps >= self.opts.nan_patience:
            good = self.world.from_main(lambda: load_checkpoint(self.last_path, kind=self.task.kind)
                                        if self.last_path.exists() else None)
        if good is None:
            self.step += 1
            self.bar.update(1)
            return
        self.model.load_state_dict(good["model"])
        self._restore(good["train"])  # the data position goes back with the step: nothing to count
        self.lr_scale *= 0.5
        self.bad_steps = 0
        self.bar.n = self.step
        self.bar.refresh()
        self.say(f"restored {self.last_path} (step {self.step}); learning rate now x{self.lr_scale:g}")

    def _report_throughput(self, lr: float) -> None:
        """The mean training loss and units per second since the last report."""
        now = time.monotonic()
        rate = self.rate_units / max(now - self.window_t, 1e-9)  # all ranks: the sums are global
        train_loss = self.window_loss / max(self.window_units, 1)
        if self.main:
            self.bar.set_postfix(loss=f"{train_loss:.3f}", **{f"{self.task.unit}/s": f"{rate:,.0f}"})
            self.log.add({"step": self.step, "train_loss": train_loss, "lr": lr,
                          f"{self.task.unit}_per_s": rate, "time": time.time()})
        self.window_loss, self.window_units, self.rate_units, self.window_t = 0.0, 0, 0, now

    def _evaluate_and_checkpoint(self) -> None:
        """Held-out metrics (rank 0; the other ranks wait in their next collective),
        best.pt when they improve, last.pt, the pictures."""
        if self.main:
            metrics = self.evaluate()
            self.log.add({"step": self.step, **metrics, "time": time.time()})
            self.say(f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if self.best_val is None or metrics["val_loss"] < self.best_val:
                self.best_val = metrics["val_loss"]
                self.save(self.best_path, with_train=False)
        self.save(self.last_path, with_train=True)
        self.last_save = time.monotonic()
        if self.main:
            self.log.draw()
            self.task.on_eval(self.out, self.step)

    def evaluate(self) -> dict:
        self.model.eval()
        with torch.no_grad():
            metrics = self.task.evaluate(self.device)
        self.model.train()
        return metrics

    def save(self, path: Path, with_train: bool) -> None:
        """Rank 0 writes; a resumable save is collective (it gathers every rank's state)."""
        world, task = self.world, self.task
        train_state = None
        if with_train:
            mine = {"task": task.state_dict(), "rng": _rng_state()}
            if world.distributed:
                mine["weights"] = dist.weights_digest(self.model.state_dict())
            ranks = world.gather(mine)
            if not self.main:
                return
            train_state = {"optimizer": self.optimizer.state_dict(), "step": self.step, "best_val": self.best_val,
                           "lr_scale": self.lr_scale, "task": ranks[0]["task"], "rng": ranks[0]["rng"],
                           "options": {k: str(v) for k, v in asdict(self.opts).items()},
                           "window": [self.window_loss, self.window_units]}
            if world.distributed:
                train_state.update(world=world.size, ranks=ranks)
                if len({r["weights"] for r in ranks}) > 1:
                    self.say(f"step {self.step}: WARNING the processes' weights differ (data parallelism is broken)")
        elif not self.main:
            return
        meta = dict(task.meta(), step=self.step, best_val=self.best_val, precision=self.precision)
        state = self.model.state_dict()
        if not with_train and hasattr(task, "kept"):
            state = task.kept(state)
        save_checkpoint(path, kind=task.kind, config=task.config.to_dict(), meta=meta,
                        model_state=state, train_state=train_state)

    def finish(self, stopped: str, signals: _Signals) -> TrainResult:
        """The last checkpoint, the loss curve and the closing line."""
        self.bar.close()
        self.save(self.last_path, with_train=True)
        if self.main:
            self.log.draw()
            if stopped == "interrupted":
                name = signal.Signals(signals.caught or signal.SIGTERM).name
                _log(f"{name}: saved {self.last_path} at step {self.step}; continue with the same command plus "
                     "--resume", None)
            else:
                _log(f"stopped ({stopped}) at step {self.step}; best val_loss {self.best_val}; "
                     f"checkpoints in {self.out}", None)
        return TrainResult(step=self.step, best_val=self.best_val, stopped=stopped)

    def say(self, msg: str) -> None:
        if self.main:
            _log(msg, self.bar)
