"""How a training run starts, shared by each model kind's train function
(genseq.text.train, genseq.hand.train, genseq.reader.train): a new model from
the sizes given (those left out, None, at the config's defaults), or a
fine-tune from a model file (`init`; 'default' is the bundled one) that keeps
that model's sizes."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import GenseqError
from .loop import TrainOptions


def init_path(init: str | Path | None, default: str) -> Path | None:
    """The model file a run fine-tunes: `init`, the bundled file `default` for
    'default', or None for a new model."""
    if init == "default":
        from ..checkpoint import bundled_path
        return bundled_path(default)
    return Path(init) if init else None


def resume_path(opts: TrainOptions) -> Path | None:
    """The checkpoint a resumed run continues (it may not exist yet); None for a new run."""
    return Path(opts.out) / "last.pt" if opts.resume else None


def with_defaults(values: dict, defaults) -> dict:
    """`values` (name -> value) with those left out (None) at `defaults`': a dict,
    or a config dataclass (its fields' defaults)."""
    if dataclasses.is_dataclass(defaults):
        defaults = {f.name: f.default for f in dataclasses.fields(defaults)}
    return {k: defaults[k] if v is None else v for k, v in values.items()}


def refuse_size_flags(init: Path, given: dict, model: dict) -> None:
    """Fine-tuning keeps the model file's sizes: a size given (not None) that
    disagrees with them is an error, not silently ignored."""
    names = [n for n, v in given.items() if v is not None and model.get(n) != v]
    if names:
        flags = ", ".join(f"--{n.replace('_', '-')} {given[n]} (the model: {model.get(n)})" for n in names)
        raise GenseqError(f"--init {init} keeps that model's sizes; these flags disagree: {flags}. "
                          "Leave them out to fine-tune, or drop --init to train a new model")
