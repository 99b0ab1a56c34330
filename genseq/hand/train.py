"""Training Graves' handwriting networks: `genseq train handwriting` as one function."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint
from ..errors import GenseqError
from ..strokes.mixed import paths_of
from ..strokes.normalise import model_ink
from ..train import TrainOptions, TrainResult, train
from ..train.start import init_path, refuse_size_flags, resume_path, with_defaults
from .model import HandwritingConfig
from .own import SMALL_SET, is_own, own_data, own_styles, writer_shear_of
from .task import HandTask, run_config, run_ink
from .api import DEFAULT_MODEL

LINES = {"batch": 32, "max_points": 1200, "augment": 0.0, "dropout": 0.0}  # the training lines of a run, unless given


def train_handwriting(data: str | Path | list, out: str | Path, *, mix: list[float] | None = None,
                      kind: str | None = None, layers: int | None = None, hidden: int | None = None,
                      mixtures: int | None = None, window: int | None = None, batch: int | None = None,
                      max_points: int | None = None, eval_sequences: int | None = None,
                      augment: float | None = None, dropout: float | None = None,
                      oversample: tuple[str, int] | None = None,
                      init: str | Path | None = None, blend: float | None = None, as_written: bool = False,
                      **options) -> TrainResult:
    """Train a handwriting network ('synthesis' or 'prediction' `kind`) on `data`,
    one stroke file or several (their alphabets joined; each batch from one file,
    file k with probability mix[k]), into the run folder `out`.

    The sizes left out are HandwritingConfig's defaults; with `init` (a model
    file, or 'default' for the bundled one) the model keeps that file's sizes and
    ink (a size given that disagrees is an error), and characters only `data`
    holds are added to its alphabet. Your own handwriting may come as .jsonl or
    .inkml files: they are converted into `out` (hand/own.py), and with `init`
    the options left out take SMALL_SET's recipe. `blend` (with `init`): best.pt
    keeps blend * the tuned weights + (1 - blend) * the starting ones
    (genseq.train.blend; the small-set recipe's default is SMALL_SET.blend, else
    1, the tuned weights). `dropout`: the share of each layer's outputs dropped
    where they feed the next layer and the output, while training. Your own
    lines are stood upright to the model's slant, and the model records the
    writer's (hand.slant.model_lean), unless `as_written`. `options` are
    genseq.train.TrainOptions' (max_steps, lr, seed, resume, ...; max_time and
    save_every in seconds)."""
    paths = sources = paths_of(data)
    init = init_path(init, DEFAULT_MODEL)
    start = load_checkpoint(init, kind="handwriting") if init is not None else None
    init_meta = start["meta"] if start is not None else None
    if blend is not None and blend < 1.0 and start is None:
        raise GenseqError("--blend needs --init: the model the fine-tune starts from")
    recipe, one_writer, small, before = LINES, False, False, set()
    if as_written and not any(is_own(p) for p in paths):
        raise GenseqError("--as-written is for your own .jsonl or .inkml lines (a stroke file is used as it is)")
    if any(is_own(p) for p in paths):
        if init is not None and all(is_own(p) for p in paths):  # a few dozen lines: the small-set recipe
            options, recipe, small = {**SMALL_SET.schedule(), **options}, SMALL_SET.lines(), True
            one_writer = len(paths) == 1
        before = set(Path(out).glob("*.h5"))  # files there before this run are never removed
        paths = own_data(paths, Path(out), init_meta, resume=options.get("resume", False), upright=not as_written)
    with _forgotten_unless_started([p for p in paths if p not in sources and p not in before], Path(out)):
        blend_given, blend = blend, (SMALL_SET.blend if small else 1.0) if blend is None else blend
        lines = with_defaults(dict(batch=batch, max_points=max_points, augment=augment, dropout=dropout), recipe)
        opts = TrainOptions(out=Path(out), init=init, **options)
        given = dict(kind=kind, hidden=hidden, layers=layers, mixtures=mixtures, window=window)
        sizes, resume = with_defaults(given, HandwritingConfig), resume_path(opts)
        config, scales, tuned = run_config(paths, sizes.pop("kind"), sizes, init=init, resume=resume)
        if init is not None:
            refuse_size_flags(init, given, config.to_dict())
        resumed = (load_checkpoint(resume, kind="handwriting")["meta"]
                   if resume is not None and resume.exists() else None)
        if blend_given is None and resumed is not None:  # a resumed run blends as it did
            was = resumed.get("blend", 1.0)
            blend = float(was) if isinstance(was, (int, float)) and 0.0 < was <= 1.0 else 1.0
            if blend < 1.0 and start is None:
                raise GenseqError("this run keeps best.pt blended with the model it started from: "
                                  "resume it with the same --init")
        torch.manual_seed(opts.seed)  # the initial weights follow the seed
        # One writer's lines: the model file carries a few of them, its default style (a resumed run, its own).
        styles = None
        if one_writer and config.kind == "synthesis":
            styles = resumed.get("styles") if resumed is not None else None
            if not isinstance(styles, list) or not styles:
                styles = own_styles(paths[0], config, source=sources[0],
                                    target=model_ink(init_meta) if init_meta else None)
        # One writer's lines stood upright (a converted file, or `data jsonl --upright`): the model records their slant.
        writer = writer_shear_of(paths[0]) if len(paths) == 1 else None
        task = HandTask(paths, config, **lines, seed=opts.seed, eval_sequences=eval_sequences, scale=scales, init=tuned,
                        oversample=oversample, mix=mix, ink=run_ink(init_meta, resumed), styles=styles,
                        blend=(blend, start["model"]) if blend < 1.0 else None, writer_shear=writer)
        result = train(task, opts)
        if styles and result.stopped != "interrupted" and os.environ.get("RANK", "0") == "0":
            best, n = Path(out) / "best.pt", len(styles) - 1
            others = f" (--style 1{f' to {n}' if n > 1 else ''} for your other line{'s' if n > 1 else ''})" if n else ""
            print(f"{best} writes in your hand, primed with your line {styles[0]['text']!r}{others}: "
                  f"genseq write \"...\" --model {best}", file=sys.stderr)
        return result


@contextlib.contextmanager
def _forgotten_unless_started(made: list[Path], out: Path):
    """Files converted into `out` for this run are removed (and `out` with them when
    it is left empty) if the run stops before its first checkpoint: a refused or
    interrupted start leaves no half-made run folder that --resume cannot continue."""
    try:
        yield
    except BaseException:
        if made and not (out / "last.pt").exists():
            for p in made:
                p.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                out.rmdir()  # only if nothing else is in it
        raise
