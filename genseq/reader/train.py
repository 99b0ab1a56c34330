"""Training the reader: `genseq train recognizer` as one function."""
from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import torch

from ..errors import GenseqError
from ..strokes.mixed import paths_of
from ..train import TrainOptions, TrainResult, train
from ..train.start import init_path, refuse_size_flags, resume_path, with_defaults
from .api import DEFAULT_RECOGNIZER
from .model import RecognizerConfig
from .task import RecognizeTask, run_config


def train_reader(data: str | Path | list, out: str | Path, *, mix: list[float] | None = None,
                 layers: int | None = None, hidden: int | None = None, stride: int | None = None,
                 dropout: float | None = None, input: str | None = None, height: int | None = None,
                 px_per_unit: float | None = None, batch: int = 32, max_points: int = 1200,
                 eval_sequences: int | None = None, augment: bool = True,
                 oversample: tuple[str, int] | None = None, init: str | Path | None = None,
                 **options) -> TrainResult:
    """Train the reader (a bidirectional LSTM with CTC) on `data`, one stroke
    file or several mixed by `mix` as in train_handwriting, into the run folder `out`.

    `input`: what it reads, "pen" (the offsets, the default) or "image" (the ink
    drawn: raster.py, `height` rows at `px_per_unit` pixels per data unit). The
    sizes left out are RecognizerConfig's defaults; with `init` (a model file,
    or 'default' for the bundled reader) it keeps that file's sizes (a size
    given that disagrees is an error; `dropout` may change), and characters only
    `data` holds are added to its alphabet. `augment`: each training line
    distorted by a random affine map (scale, slant, small rotation). `options` are
    genseq.train.TrainOptions' (max_steps, lr, seed, resume, ...; max_time and
    save_every in seconds)."""
    paths = paths_of(data)
    init = init_path(init, DEFAULT_RECOGNIZER)
    opts = TrainOptions(out=Path(out), init=init, **options)
    given = dict(hidden=hidden, layers=layers, stride=stride, dropout=dropout, input=input, height=height,
                 px_per_unit=px_per_unit)
    config, scales, tuned = run_config(paths, with_defaults(given, RecognizerConfig), init=init,
                                    resume=resume_path(opts))
    if init is not None:  # fine-tuning keeps the model file's sizes; dropout (no weights) may change
        refuse_size_flags(init, {k: v for k, v in given.items() if k != "dropout"}, dataclasses.asdict(config))
        if dropout is not None:
            config = replace(config, dropout=dropout)
    _refuse_other_inputs_flags(given, config.input)
    torch.manual_seed(opts.seed)
    task = RecognizeTask(paths, config, batch=batch, max_points=max_points, seed=opts.seed,
                         eval_sequences=eval_sequences, augment=augment, init=tuned, oversample=oversample,
                         scale=scales, mix=mix)
    return train(task, opts)


def _refuse_other_inputs_flags(given: dict, input: str) -> None:
    """--height and --px-per-unit size an image reader, --stride a pen reader: given to the
    other kind they would be stored unused, and refused on resuming."""
    if input == "image" and given.get("stride") is not None:
        raise GenseqError("--stride sets a pen reader's points per frame; an image reader (--input image) "
                          "has none")
    if input == "pen" and (given.get("height") is not None or given.get("px_per_unit") is not None):
        raise GenseqError("--height and --px-per-unit size an image reader's pictures: give --input image")
