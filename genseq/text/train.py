"""Training a character model: `genseq train text` as one function."""
from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import load_checked
from ..train import TrainOptions, TrainResult, train
from ..train.start import init_path, refuse_size_flags, with_defaults
from .api import DEFAULT_MODEL
from .model import CharRNN, CharRNNConfig
from .task import TextTask


def train_text(corpus: str | Path, out: str | Path, *, cell: str | None = None, layers: int | None = None,
               hidden: int | None = None, embed: int | None = None, dropout: float | None = None,
               tie_weights: bool | None = None, batch: int = 64, seq_len: int = 128,
               init: str | Path | None = None, **options) -> TrainResult:
    """Train a character-level language model on `corpus` (an HDF5 corpus from
    genseq.text.corpus.build_corpus) into the run folder `out`.

    The sizes (cell ... tie_weights) left out are CharRNNConfig's defaults; with
    `init` (a model file, or 'default' for the bundled one) the model keeps that
    file's sizes (a size given that disagrees is an error) and only `dropout`
    may change. `batch` streams of `seq_len` characters per step; `options` are
    genseq.train.TrainOptions' (max_steps, lr, seed, resume, ...; max_time and
    save_every in seconds)."""
    opts = TrainOptions(out=Path(out), init=init_path(init, DEFAULT_MODEL), **options)
    given = dict(cell=cell, layers=layers, hidden=hidden, embed=embed, dropout=dropout, tie_weights=tie_weights)
    if opts.init is None:
        sizes = with_defaults(given, CharRNNConfig)
    else:  # fine-tuning keeps the model file's sizes; dropout (no weights) may change
        ck = load_checked(opts.init, "text", lambda c: CharRNN(CharRNNConfig.from_dict(c["config"])))
        model = {k: v for k, v in ck["config"].items() if k != "vocab_size"}
        refuse_size_flags(opts.init, {k: v for k, v in given.items() if k != "dropout"}, model)
        sizes = model if dropout is None else {**model, "dropout": dropout}
    torch.manual_seed(opts.seed)  # the model's initial weights: same seed, same run
    return train(TextTask(corpus, sizes, batch=batch, steps=seq_len), opts)
