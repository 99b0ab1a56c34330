"""Options shared by the `train` commands: they map one to one onto TrainOptions."""
from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import click

from ..errors import GenseqError
from ..train import TrainOptions

_D = TrainOptions(out=Path("."))


class Finite(click.FloatRange):
    """click.FloatRange that also refuses nan and inf (its range check lets nan through)."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if rv is not None and not math.isfinite(rv):
            self.fail(f"{rv} is not a finite number.", param, ctx)
        return rv

    def _describe_range(self) -> str:
        # Without bounds, --help would show "x<=None"; say nothing then.
        return "" if self.min is None and self.max is None else super()._describe_range()


SEED = click.IntRange(0, 2**63 - 1)  # what torch.manual_seed and numpy's generators all accept


def train_options(f):
    """Decorate a Click command with the TrainOptions flags (defaults from the dataclass)."""
    opts = [
        click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), required=True,
                     help="Run folder: last.pt, best.pt, metrics.jsonl, loss.svg, pictures."),
        click.option("--max-steps", type=click.IntRange(min=1), default=_D.max_steps, show_default=True,
                     help="Total optimizer steps (the schedule decays over them)."),
        click.option("--max-time", type=Finite(min=0), default=None,
                     help="Stop this invocation after so many minutes (resume later)."),
        click.option("--lr", type=Finite(min=0, max=10, min_open=True), default=_D.lr, show_default=True,
                     help="Peak learning rate (AdamW, warm-up then cosine decay)."),
        click.option("--warmup", type=click.IntRange(min=1), default=_D.warmup, show_default=True,
                     help="Warm-up steps."),
        click.option("--weight-decay", type=Finite(min=0), default=_D.weight_decay, show_default=True,
                     help="AdamW weight decay on matrices."),
        click.option("--clip", type=Finite(min=0, min_open=True), default=_D.clip, show_default=True,
                     help="Clip the global gradient norm to this."),
        click.option("--eval-every", type=click.IntRange(min=1), default=_D.eval_every, show_default=True,
                     help="Steps between held-out evaluations (and checkpoints)."),
        click.option("--save-every", type=Finite(min=1), default=_D.save_every / 60, show_default=True,
                     help="Minutes between checkpoints between evaluations."),
        click.option("--device", default=_D.device, show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default=_D.precision,
                     show_default=True, help="auto: bf16 autocast on CUDA, fp32 elsewhere."),
        click.option("--threads", type=click.IntRange(min=1, max=1024), default=None, help="CPU threads for torch."),
        click.option("--seed", type=SEED, default=_D.seed, show_default=True, help="Random seed."),
        click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped."),
        click.option("--init", type=click.Path(dir_okay=False), default=None,
                     help="Fine-tune: start from this model file's weights ('default' for the bundled one)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def oversample_options(f):
    """--oversample CHARS and --oversample-factor N; the command gets `oversample`:
    (chars, factor) or None."""
    def wrapped(*a, oversample, oversample_factor, **kw):
        return f(*a, oversample=(oversample, oversample_factor) if oversample else None, **kw)
    wrapped = functools.wraps(f)(wrapped)
    wrapped = click.option("--oversample-factor", type=click.IntRange(min=1, max=1000), default=4, show_default=True,
                           help="How many times per pass such a line is read.")(wrapped)
    return click.option("--oversample", default=None, metavar="CHARS",
                        help="Read training lines that contain any of these characters more often "
                             "(rare letters, digits).")(wrapped)


def typed(name: str) -> bool:
    """Whether option `name` was given on the command line (not its default)."""
    return click.get_current_context().get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def typed_options(kw: dict) -> dict:
    """The options of `kw` typed on the command line, as the library's keyword
    arguments (--max-time and --save-every in seconds, --quiet as progress=False).
    Those left out take the library's defaults: the ones --help shows, or what it
    chooses by context (a fine-tune keeps its model's sizes; a few lines of your
    own handwriting take a short schedule)."""
    given = {k: v for k, v in kw.items() if typed(k)}
    for minutes in ("max_time", "save_every"):
        if given.get(minutes) is not None:
            given[minutes] *= 60
    if given.pop("quiet", False):
        given["progress"] = False
    return given


def run_training(train_fn, *args, **kwargs) -> None:
    """Call a library train function (genseq.text.train.train_text, ...); exit 130
    when a signal stopped the run (it resumes with --resume)."""
    if train_fn(*args, **kwargs).stopped == "interrupted":
        sys.exit(130)


def mix_option(f):
    """--mix A,B,...: the shares of several DATA files (the command gets the string; see parse_mix)."""
    return click.option("--mix", default=None, metavar="A,B,...",
                        help="With several DATA files: the share of batches drawn from each, e.g. 0.6,0.4 "
                             "[default: in proportion to their training lines].")(f)


def parse_mix(mix: str | None, n: int) -> list[float] | None:
    """'0.6,0.4' -> [0.6, 0.4] for n files; None stays None."""
    if mix is None:
        return None
    try:
        shares = [float(v) for v in mix.split(",")]
    except ValueError:
        raise GenseqError(f"--mix {mix!r}: expected numbers separated by commas, e.g. 0.6,0.4") from None
    if len(shares) != n:
        raise GenseqError(f"--mix gives {len(shares)} share(s) for {n} stroke file(s)")
    if not all(math.isfinite(v) and v >= 0 for v in shares) or sum(shares) <= 0:
        raise GenseqError(f"--mix {mix!r}: shares must be non-negative numbers with a positive sum")
    return shares


