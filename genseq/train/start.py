"""How a training run starts, shared by each model kind's train function
(genseq.text.train, genseq.hand.train, genseq.reader.train): a new model from
the sizes given (those left out, None, at the config's defaults), or a
fine-tune from a model file (`init`; 'default' is the bundled one) that keeps
that model's sizes."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from ..checkpoint import bundled_path, check_new_model, load_checked
from ..errors import GenseqError
from ..strokes.batches import data_scale
from ..strokes.mixed import data_alphabet, paths_of
from .loop import TrainOptions


def init_path(init: str | Path | None, default: str) -> Path | None:
    """The model file a run fine-tunes: `init`, the bundled file `default` for
    'default', or None for a new model."""
    if init == "default":
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


def run_config(data, kind: str, config_cls, build, sizes: dict, *, init: Path | None, resume: Path | None,
               new: Callable) -> tuple:
    """The model config and per-file data scales of a training run, and whether it fine-tunes:

    - a resumed run's own (the size flags must agree with it unless it was
      fine-tuned, and it must read as many files);
    - a fine-tuned model's (`init`), its alphabet grown by the characters only
      the data holds (the task's `adapt_init` grows the weights to match);
    - or `new(paths)`, a config from the data.

    Model files are checked against their own config before anything is built
    (checkpoint.load_checked). `build(config)` makes the model; `sizes` are the
    flags (name -> value) that a config must agree with."""
    paths = paths_of(data)

    def checked(path: Path) -> dict:
        return load_checked(path, kind, lambda c: build(config_cls.from_dict(c["config"])))
    if resume is not None and resume.exists():
        ck = checked(resume)
        config = config_cls.from_dict(ck["config"])
        if not ck["meta"].get("init"):
            differ = [f"--{k} {v} (was {getattr(config, k)})" for k, v in sizes.items() if getattr(config, k) != v]
            if differ:
                raise GenseqError(f"cannot resume {resume}: the model configuration differs: {', '.join(differ)}")
        files = ck["meta"].get("files") or [{"scale": ck["meta"].get("scale", 1.0)}]
        if len(files) != len(paths):
            raise GenseqError(f"cannot resume {resume}: the run read {len(files)} stroke file(s), now {len(paths)}")
        return config, [float(f.get("scale", 1.0)) for f in files], bool(ck["meta"].get("init"))
    if init is not None:
        ck = checked(init)
        config = config_cls.from_dict(ck["config"])
        if getattr(config, "alphabet", ""):
            extra = "".join(sorted(set(data_alphabet(paths)) - set(config.alphabet)))
            config = dataclasses.replace(config, alphabet=config.alphabet + extra) if extra else config
        return config, [data_scale(config, p, ck["meta"]) for p in paths], True
    config = new(paths)
    check_new_model(lambda: build(config), getattr(config, "layers", None))
    return config, [1.0] + [data_scale(config, p) for p in paths[1:]], False
