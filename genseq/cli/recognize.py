"""Recognizer commands: `train recognizer`, `eval recognizer`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..reader.model import RecognizerConfig
from .common import Finite, mix_option, oversample_options, parse_mix, run_training, train_options, typed_options
from .groups import evaluate, train

_R = RecognizerConfig(alphabet="a")


@train.command("recognizer")
@click.argument("data", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@mix_option
@click.option("--layers", type=click.IntRange(min=1), default=_R.layers, show_default=True,
              help="Bidirectional LSTM layers.")
@click.option("--hidden", type=click.IntRange(min=1), default=_R.hidden, show_default=True,
              help="Cells per direction per layer.")
@click.option("--stride", type=click.IntRange(min=1), default=_R.stride, show_default=True,
              help="Points per LSTM frame.")
@click.option("--dropout", type=Finite(0, 1, max_open=True), default=_R.dropout, show_default=True,
              help="Dropout on the LSTM inputs and outputs while training.")
@click.option("--input", type=click.Choice(["pen", "image"]), default=_R.input, show_default=True,
              help="What it reads: the pen's path (pen), or the ink drawn as a picture, "
                   "through convolutions (image).")
@click.option("--height", type=click.IntRange(16, 128), default=_R.height, show_default=True,
              help="With --input image: rows of each line's picture.")
@click.option("--px-per-unit", type=Finite(0.01, 1), default=_R.px_per_unit, show_default=True,
              help="With --input image: pixels per data unit (the default suits IAM-OnDB's units).")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Lines per batch.")
@click.option("--max-points", type=click.IntRange(min=2), default=1200, show_default=True,
              help="Skip training lines longer than this.")
@click.option("--eval-sequences", type=click.IntRange(min=1), default=None,
              help="Read only N validation lines, spread evenly over each file, at each evaluation (faster).")
@click.option("--no-augment", is_flag=True, help="Train on the lines as they are (no random scale/slant).")
@oversample_options
@train_options
def train_recognizer(data, mix, no_augment, **kw):
    """Train the handwriting reader that `genseq write` uses to pick legible lines.

    A bidirectional LSTM with CTC (Graves et al. 2006) over DATA's strokes (or,
    with --input image, over pictures of them) and texts: one or more stroke
    files (from `genseq data iam-ondb|unipen|jsonl|inkml`), mixed by --mix as
    in `train handwriting`. With --init, characters only DATA
    holds are added to the reader's alphabet with fresh output weights.
    """
    from ..reader.train import train_reader
    run_training(train_reader, list(data), mix=parse_mix(mix, len(data)), augment=not no_augment,
                 **typed_options(kw))


@evaluate.command("recognizer")
@click.argument("model")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="val", show_default=True, help="Split to read.")
@click.option("--chars", default="", metavar="CHARS",
              help="Also report how many of these characters (say rare ones) it reads right.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_recognizer(model, data, split, chars, as_json):
    """Character error rate and CTC NLL of MODEL (checkpoint or 'default') on DATA."""
    from ..reader.evaluate import evaluate_file
    from ..reader.api import load_recognizer_file
    reader, meta = load_recognizer_file(model)
    r = evaluate_file(reader, data, split, chars, meta)
    if as_json:
        click.echo(json.dumps(r))
        return
    click.echo(f"character error rate {r['cer']:.2%}, {r['lines_exact']:.1%} of lines exact, "
               f"{r['nll_per_char']:.3f} nats/char over {r['lines']:,} lines ({r['chars']:,} characters)")
    if chars:
        seen = r["chars_seen"]
        click.echo(f"{chars}: {r['chars_read']:,} of {seen:,} read right"
                   + (f" ({r['chars_recall']:.1%})" if seen else ""))
