"""One training loop for every model kind (text now, handwriting too).

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import torch
from torch import nn

from ..atomic import atomic_open
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import GenseqError


class Task(Protocol):
    """What a model kind provides to the loop."""

    kind: str             # checkpoint kind: "text" | "handwriting"
    unit: str             # what throughput counts: "chars" | "points"
    model: nn.Module

    def config(self) -> dict: ...            # the model's dataclass, plain types
    def meta(self) -> dict: ...              # vocabulary/alphabet and data description
    def compatible(self, ckpt: dict) -> str | None: ...  # why a checkpoint can't resume this run
    def train_batch(self, device: torch.device) -> Any: ...   # advances the data position
    def loss(self, batch: Any) -> tuple[torch.Tensor, int]: ...  # mean loss, units counted
    def evaluate(self, device: torch.device) -> dict[str, float]: ...  # must hold "val_loss"
    def state_dict(self) -> dict: ...        # data position + carried state (tensors/plain)
    def load_state_dict(self, state: dict) -> None: ...
    def on_eval(self, out: Path, step: int) -> None: ...      # pictures; may do nothing


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


@dataclass
class TrainResult:
    step: int
    best_val: float | None
    stopped: str                       # "max_steps" | "max_time" | "interrupted"
    metrics: dict = field(default_factory=dict)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GenseqError("--device cuda: no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise GenseqError("--device mps: no MPS device is available")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise GenseqError(f"unknown device {name!r} (auto, cpu, cuda, mps)")
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
    """SIGINT/SIGTERM set a flag; the loop saves at the next step boundary."""

    def __init__(self) -> None:
        self.caught: int | None = None
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
            raise KeyboardInterrupt
        self.caught = signum

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


def train(task: Task, opts: TrainOptions) -> TrainResult:
    """Train `task.model` under `opts`; see the module docstring."""
    from tqdm import tqdm

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if opts.threads:
        torch.set_num_threads(opts.threads)
    device = pick_device(opts.device)
    precision = resolve_precision(opts.precision, device)
    if opts.max_steps < 1:
        raise GenseqError("--max-steps must be at least 1")

    torch.manual_seed(opts.seed)
    random.seed(opts.seed)
    model = task.model
    step, best_val, lr_scale = 0, None, 1.0
    ckpt = None
    if opts.resume:
        if not last_path.exists():
            raise GenseqError(f"--resume: no checkpoint at {last_path}")
        ckpt = load_checkpoint(last_path, kind=task.kind)
        if "train" not in ckpt:
            raise GenseqError(f"{last_path} holds weights only; it cannot resume a run")
        why = task.compatible(ckpt)
        if why:
            raise GenseqError(f"cannot resume {last_path}: {why} (use --init to fine-tune instead)")
        model.load_state_dict(ckpt["model"])
    elif last_path.exists():
        raise GenseqError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    elif opts.init is not None:
        init = load_checkpoint(opts.init, kind=task.kind)
        why = task.compatible(init)
        if why:
            raise GenseqError(f"cannot fine-tune from {opts.init}: {why}")
        model.load_state_dict(init["model"])

    model.to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": opts.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=opts.lr)
    if ckpt is not None:
        tr = ckpt["train"]
        optimizer.load_state_dict(tr["optimizer"])
        _optimizer_to(optimizer, device)
        step, best_val, lr_scale = tr["step"], tr["best_val"], tr["lr_scale"]
        task.load_state_dict(tr["task"])
        _set_rng_state(tr["rng"])
    log = MetricsLog(out, step if ckpt is not None else None)
    if ckpt is None:
        log.records.clear()
        log._rewrite()

    def save(path: Path, with_train: bool) -> None:
        train_state = None
        if with_train:
            train_state = {"optimizer": optimizer.state_dict(), "step": step, "best_val": best_val,
                           "lr_scale": lr_scale, "task": task.state_dict(), "rng": _rng_state(),
                           "options": {k: str(v) for k, v in asdict(opts).items()}}
        meta = dict(task.meta(), step=step, best_val=best_val, precision=precision)
        save_checkpoint(path, kind=task.kind, config=task.config(), meta=meta,
                        model_state=model.state_dict(), train_state=train_state)

    def evaluate() -> dict:
        model.eval()
        with torch.no_grad():
            metrics = task.evaluate(device)
        model.train()
        return metrics

    start = time.monotonic()
    last_save = start
    stopped = "max_steps"
    bad_steps = 0
    window_loss, window_units, window_t = 0.0, 0, time.monotonic()
    bar = tqdm(total=opts.max_steps, initial=step, desc=f"train {task.kind}", unit="step",
               disable=not opts.progress, dynamic_ncols=True, file=sys.stderr)
    if step == 0 and ckpt is None:
        _log(f"training {sum(p.numel() for p in model.parameters()):,} parameters on {device} "
             f"({precision}); checkpoints in {out}", bar)
    model.train()
    with _Signals() as signals:
        while step < opts.max_steps:
            if signals.caught is not None:
                stopped = "interrupted"
                break
            if opts.max_time is not None and time.monotonic() - start >= opts.max_time:
                stopped = "max_time"
                break
            lr = lr_at(step, opts) * lr_scale
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = task.train_batch(device)
            with autocast(device, precision):
                loss, units = task.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            finite = bool(torch.isfinite(loss))
            if finite:
                loss.backward()
                gnorm = nn.utils.clip_grad_norm_(model.parameters(), opts.clip)
                finite = bool(torch.isfinite(gnorm))
            if not finite:
                # Skip the update; a streak of them means the run has diverged:
                # go back to the last good checkpoint at half the learning rate.
                bad_steps += 1
                _log(f"step {step}: non-finite loss or gradient, update skipped", bar)
                if bad_steps >= opts.nan_patience and last_path.exists():
                    good = load_checkpoint(last_path, kind=task.kind)
                    model.load_state_dict(good["model"])
                    optimizer.load_state_dict(good["train"]["optimizer"])
                    _optimizer_to(optimizer, device)
                    task.load_state_dict(good["train"]["task"])
                    step = good["train"]["step"]
                    lr_scale *= 0.5
                    bad_steps = 0
                    bar.n = step
                    _log(f"restored {last_path} (step {step}); learning rate now x{lr_scale:g}", bar)
                step += 1
                bar.update(1)
                continue
            optimizer.step()
            bad_steps = 0
            step += 1
            window_loss += float(loss.detach()) * units
            window_units += units
            bar.update(1)
            if step % 10 == 0 or step == opts.max_steps:
                now = time.monotonic()
                rate = window_units / max(now - window_t, 1e-9)
                train_loss = window_loss / max(window_units, 1)
                bar.set_postfix(loss=f"{train_loss:.3f}", **{f"{task.unit}/s": f"{rate:,.0f}"})
                log.add({"step": step, "train_loss": train_loss, "lr": lr, f"{task.unit}_per_s": rate,
                         "time": time.time()})
                window_loss, window_units, window_t = 0.0, 0, now
            if step % opts.eval_every == 0 or step == opts.max_steps:
                metrics = evaluate()
                log.add({"step": step, **metrics, "time": time.time()})
                _log(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), bar)
                if best_val is None or metrics["val_loss"] < best_val:
                    best_val = metrics["val_loss"]
                    save(best_path, with_train=False)
                save(last_path, with_train=True)
                last_save = time.monotonic()
                log.draw()
                task.on_eval(out, step)
            elif time.monotonic() - last_save >= opts.save_every:
                save(last_path, with_train=True)
                last_save = time.monotonic()
    bar.close()
    save(last_path, with_train=True)
    log.draw()
    if stopped == "interrupted":
        name = signal.Signals(signals.caught).name
        _log(f"{name}: saved {last_path} at step {step}; continue with the same command plus --resume", None)
    else:
        _log(f"stopped ({stopped}) at step {step}; best val_loss {best_val}; checkpoints in {out}", None)
    return TrainResult(step=step, best_val=best_val, stopped=stopped)
