"""`genseq data iam-ondb|jsonl|inkml|stats`: pen-stroke datasets. Thin: parse,
build options, call one function in genseq.strokes, print its summary."""
from __future__ import annotations

import click

from ..strokes.clean import MAX_JUMP_RATIO, CleanOptions
from .common import Finite
from .groups import data

_clean_options = [
    click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Keep every n-th point of each stroke (stroke ends always kept)."),
    click.option("--min-dist", type=Finite(min=0), default=0.0, show_default=True,
                 help="Drop points closer than this (source units) to the last kept one; 0 = off."),
    click.option("--max-jump-ratio", type=Finite(min=0), default=MAX_JUMP_RATIO, show_default=True,
                 help="Skip lines with an in-stroke step longer than this many median steps; 0 = off."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split assignment."),
    click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="Output HDF5 file."),
    click.option("-v", "--verbose", is_flag=True, help="Also print one line per skipped file or line."),
]


def clean_options(f):
    for opt in reversed(_clean_options):
        f = opt(f)
    return f


def _report(report, verbose: bool, out: str) -> None:
    click.echo(report.summary(verbose), err=True)
    click.echo(f"wrote {out}", err=True)


@data.command("iam-ondb")
@click.argument("linestrokes", type=click.Path())
@click.argument("ascii_", metavar="ASCII", type=click.Path())
@click.option("--val-frac", type=float, default=0.05, show_default=True, help="Share of text groups for val.")
@click.option("--test-frac", type=float, default=0.05, show_default=True, help="Share of text groups for test.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@clean_options
def iam_ondb(linestrokes, ascii_, val_frac, test_frac, progress, every, min_dist, max_jump_ratio, seed, out,
             verbose):
    """Convert IAM-OnDB: LINESTROKES (lineStrokes-all.tar.gz or folder) and ASCII
    (ascii-all.tar.gz or folder) into a stroke HDF5 file."""
    from ..strokes.iam import IamOptions, convert_iam

    opts = IamOptions(val_frac=val_frac, test_frac=test_frac, seed=seed, progress=progress,
                      clean=CleanOptions(every=every, min_dist=min_dist, max_jump_ratio=max_jump_ratio))
    _report(convert_iam(linestrokes, ascii_, out, opts), verbose, out)


@data.command("jsonl")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--val-frac", type=float, default=None, help="Share of texts for val [default: 0.05 with >= 20 texts, else 0].")
@click.option("--test-frac", type=float, default=0.0, show_default=True, help="Share of texts for test.")
@clean_options
def jsonl(files, val_frac, test_frac, every, min_dist, max_jump_ratio, seed, out, verbose):
    """Convert your own handwriting, JSON Lines (datasets/jsonl/README.md)."""
    from ..strokes.jsonl import JsonlOptions, convert_jsonl

    opts = JsonlOptions(val_frac=val_frac, test_frac=test_frac, seed=seed,
                        clean=CleanOptions(every=every, min_dist=min_dist, max_jump_ratio=max_jump_ratio))
    _report(convert_jsonl(files, out, opts), verbose, out)


@data.command("inkml")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--val-frac", type=float, default=None, help="Share of texts for val [default: 0.05 with >= 20 texts, else 0].")
@click.option("--test-frac", type=float, default=0.0, show_default=True, help="Share of texts for test.")
@clean_options
def inkml(files, val_frac, test_frac, every, min_dist, max_jump_ratio, seed, out, verbose):
    """Convert W3C InkML files (subset: datasets/inkml/README.md)."""
    from ..strokes.inkml import InkmlOptions, convert_inkml

    opts = InkmlOptions(val_frac=val_frac, test_frac=test_frac, seed=seed,
                        clean=CleanOptions(every=every, min_dist=min_dist, max_jump_ratio=max_jump_ratio))
    _report(convert_inkml(files, out, opts), verbose, out)


@data.command("stats")
@click.argument("file", type=click.Path())
def stats(file):
    """Counts, lengths, points per character and alphabet of a stroke HDF5 file;
    tokens per split and the vocabulary of a text corpus."""
    from ..strokes.stats import format_stats, stroke_stats
    from ..text.corpus import describe_corpus, is_text_corpus

    click.echo(describe_corpus(file) if is_text_corpus(file) else format_stats(stroke_stats(file)))
