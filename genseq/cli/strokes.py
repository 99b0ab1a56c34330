"""`genseq data iam-ondb|jsonl|inkml|stats`: pen-stroke datasets. Thin: parse,
build options, call one function in genseq.strokes, print its summary."""
from __future__ import annotations

import click

from ..strokes.clean import MAX_JUMP_RATIO, CleanOptions
from ..strokes.unipen import UnipenOptions
from .common import Finite
from .groups import data

_clean_options = [
    click.option("--every", type=click.IntRange(min=1, max=10000), default=1, show_default=True,
                 help="Keep every n-th point of each stroke (stroke ends always kept)."),
    click.option("--min-dist", type=Finite(min=0), default=0.0, show_default=True,
                 help="Drop points closer than this (source units) to the last kept one; 0 = off."),
    click.option("--max-jump-ratio", type=Finite(min=0), default=MAX_JUMP_RATIO, show_default=True,
                 help="Skip lines with an in-stroke step longer than this many median steps; 0 = off."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split assignment."),
    click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="Output HDF5 file."),
    click.option("-v", "--verbose", is_flag=True, help="Also print one line per skipped file or line."),
]


_U = UnipenOptions()


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
@click.option("--keep-crossed-out", is_flag=True,
              help="Keep lines with a crossed-out word. The transcriptions write '#' for a struck-through "
                   "word, so by default those lines are skipped: a model would learn '#' as a scribble.")
@clean_options
def iam_ondb(linestrokes, ascii_, val_frac, test_frac, progress, keep_crossed_out, every, min_dist, max_jump_ratio,
             seed, out, verbose):
    """Convert IAM-OnDB: LINESTROKES (lineStrokes-all.tar.gz or folder) and ASCII
    (ascii-all.tar.gz or folder) into a stroke HDF5 file."""
    from ..strokes.iam import IamOptions, convert_iam

    opts = IamOptions(val_frac=val_frac, test_frac=test_frac, seed=seed, progress=progress,
                      keep_crossed_out=keep_crossed_out,
                      clean=CleanOptions(every=every, min_dist=min_dist, max_jump_ratio=max_jump_ratio))
    _report(convert_iam(linestrokes, ascii_, out, opts), verbose, out)


@data.command("unipen")
@click.argument("path", type=click.Path())
@click.option("--categories", default=",".join(_U.categories), show_default=True,
              help="Index folders to read, comma-separated: 8 text lines, 6 and 7 words, "
                   "1a-1d isolated digits, capitals, lowercase, symbols (sized by height and stitched into "
                   "lines of words per writer), 2 mixed and 3 in-context characters.")
@click.option("--val-frac", type=float, default=_U.val_frac, show_default=True, help="Share of writers for val.")
@click.option("--test-frac", type=float, default=_U.test_frac, show_default=True, help="Share of writers for test.")
@click.option("--points-per-char", type=Finite(min=1, max=1000), default=_U.points_per_char, show_default=True,
              help="Thin each writer's ink in pen time to this many points per character (IAM-OnDB's).")
@click.option("--width-per-char", type=Finite(min=0, min_open=True), default=_U.width_per_char, show_default=True,
              help="Scale each writer so that the median width of a character is this: IAM-OnDB's median "
                   "(186) times sqrt(131/105), for UNIPEN's flatter letters; see datasets/unipen.")
@click.option("--smooth", type=Finite(min=0, max=10), default=_U.smooth, show_default=True,
              help="Low-pass each stroke by a Gaussian of this x half the thinning step before thinning: "
                   "coarse tablets' staircase ink is smoothed, not left out (0: off, staircases stay).")
@click.option("--max-turning", type=Finite(min=0, max=180), default=_U.max_turning, show_default=True,
              help="Leave out writers whose converted ink turns more than this many degrees per step "
                   "(IAM-OnDB: 37; noisy sensors: 70 and more); 0 keeps all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split assignment.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), required=True, help="Output HDF5 file.")
@click.option("-v", "--verbose", is_flag=True, help="Also print one line per skipped segment.")
def unipen(path, categories, val_frac, test_frac, points_per_char, width_per_char, smooth, max_turning, seed,
           progress, out, verbose):
    """Convert UNIPEN train_r01_v07: PATH is its archive (.tar.xz, .tar.gz) or
    unpacked folder, read without unpacking. Each writer's ink is brought to
    IAM-OnDB's size and points per character, so both corpora train one model;
    splits are by writer, and writers are stored only as a hash."""
    from ..strokes.unipen import UnipenOptions, convert_unipen

    cats = tuple(c.strip() for c in categories.split(",") if c.strip())
    opts = UnipenOptions(categories=cats, val_frac=val_frac, test_frac=test_frac, seed=seed, progress=progress,
                         points_per_char=points_per_char, width_per_char=width_per_char, smooth=smooth,
                         max_turning=max_turning)
    _report(convert_unipen(path, out, opts), verbose, out)


def own_ink_options(f):
    """FILES and the options of the importers of your own handwriting (jsonl, inkml)."""
    f = clean_options(f)
    f = click.option("--raw", is_flag=True,
                     help="Keep the source units and every point (no normalisation).")(f)
    f = click.option("--like", default="default", show_default=True, metavar="MODEL",
                     help="Bring the ink, as one writer's, to this model's size, points per character and "
                          "level baseline ('default': the bundled model), ready to prime or fine-tune it.")(f)
    f = click.option("--upright", is_flag=True,
                     help="Shear all lines together so that the writer's slant stands at 3.4 degrees (the "
                          "median of IAM-OnDB's training lines) and record the slant: a model fine-tuned on "
                          "this one file (--init) leans its lines back towards it, as `train handwriting "
                          "mine.jsonl --init` does.")(f)
    f = click.option("--test-frac", type=float, default=0.0, show_default=True, help="Share of texts for test.")(f)
    f = click.option("--val-frac", type=float, default=None,
                     help="Share of texts for val, at least one text when above 0 "
                          "[default: 0.05 with >= 20 texts, else 0].")(f)
    return click.argument("files", nargs=-1, required=True, type=click.Path())(f)


def ink_target_of(like: str, raw: bool):
    """(InkTarget or None, the model's data units) for --like / --raw."""
    from ..errors import GenseqError
    from ..strokes.iam import UNITS as IAM_UNITS
    from ..strokes.normalise import IAM_TARGET, model_ink
    if raw:
        return None, ""
    if like == "default":
        return IAM_TARGET, IAM_UNITS  # the bundled model's ink: IAM-OnDB, --every 2
    from ..checkpoint import load_checkpoint
    meta = load_checkpoint(like, kind="handwriting")["meta"]
    target = model_ink(meta)
    if target is None:
        raise GenseqError(f"{like} records no ink size and density to normalise to; use --raw")
    return target, str(meta.get("units", ""))


def _import_own(convert, files, val_frac, test_frac, like, raw, upright, every, min_dist, max_jump_ratio, seed,
                out, verbose) -> None:
    """Run `convert` (convert_jsonl, convert_inkml) on FILES with the options of own_ink_options."""
    from ..errors import GenseqError
    from ..strokes.build import ImportOptions
    if not raw and (every != 1 or min_dist != 0):
        raise GenseqError("--every and --min-dist work with --raw; without it the ink is resampled to the "
                          "points per character of --like's model")
    if raw and upright:
        raise GenseqError("--upright works on ink brought to a model's (--like); --raw keeps the source as it is")
    target, units = ink_target_of(like, raw)
    opts = ImportOptions(val_frac=val_frac, test_frac=test_frac, seed=seed, target=target, target_units=units,
                         upright=upright,
                         clean=CleanOptions(every=every, min_dist=min_dist, max_jump_ratio=max_jump_ratio))
    _report(convert(files, out, opts), verbose, out)


@data.command("jsonl")
@own_ink_options
def jsonl(files, **kw):
    """Convert your own handwriting, JSON Lines (datasets/jsonl/README.md)."""
    from ..strokes.jsonl import convert_jsonl
    _import_own(convert_jsonl, files, **kw)


@data.command("inkml")
@own_ink_options
def inkml(files, **kw):
    """Convert W3C InkML files (subset: datasets/inkml/README.md)."""
    from ..strokes.inkml import convert_inkml
    _import_own(convert_inkml, files, **kw)


@data.command("stats")
@click.argument("file", type=click.Path())
def stats(file):
    """Counts, lengths, points per character and alphabet of a stroke HDF5 file;
    tokens per split and the vocabulary of a text corpus."""
    import os

    from ..errors import GenseqError
    from ..strokes.stats import format_stats, stroke_stats
    from ..text.corpus import describe_corpus, is_text_corpus

    if os.path.isdir(file):
        raise GenseqError(f"{file}: is a folder, expected a stroke file or text corpus (.h5)")
    click.echo(describe_corpus(file) if is_text_corpus(file) else format_stats(stroke_stats(file)))
