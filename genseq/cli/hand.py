"""Handwriting commands: `train handwriting`, `eval handwriting`, `write`, `scribble`."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from ..hand.model import HandwritingConfig
from ..hand.api import WriteOptions
from ..render import PageOptions
from ..render.svg import MAX_PX
from .common import (SEED, Finite, mix_option, oversample_options, parse_mix, run_training, train_options,
                     typed_options)
from .groups import evaluate, main, train

_H = HandwritingConfig(alphabet="a")
_W = WriteOptions()
_P = PageOptions()


@train.command("handwriting")
@click.argument("data", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@mix_option
@click.option("--kind", type=click.Choice(["synthesis", "prediction"]), default="synthesis", show_default=True,
              help="synthesis writes given text (section 5); prediction scribbles freely (section 4).")
@click.option("--layers", type=click.IntRange(min=1), default=_H.layers, show_default=True, help="LSTM layers.")
@click.option("--hidden", type=click.IntRange(min=1), default=_H.hidden, show_default=True, help="Cells per layer.")
@click.option("--mixtures", type=click.IntRange(min=1), default=_H.mixtures, show_default=True, help="Output Gaussians (K).")
@click.option("--window", type=click.IntRange(min=1), default=_H.window, show_default=True, help="Window Gaussians (M).")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Lines per batch (per process under torchrun).")
@click.option("--max-points", type=click.IntRange(min=2), default=1200, show_default=True,
              help="Skip training lines longer than this.")
@click.option("--eval-sequences", type=click.IntRange(min=1), default=None,
              help="Score only N validation lines, spread evenly over each file, at each evaluation (faster).")
@click.option("--augment", type=Finite(min=0.0, max=3.0), default=0.0, show_default=True, metavar="S",
              help="Map each training line by a random slant, rotation and stretch, S times "
                   "±0.15 shear, ±2 degrees, ±10% (0 is off): rare letters are then harder to memorise.")
@click.option("--dropout", type=Finite(min=0.0, max=0.9), default=0.0, show_default=True, metavar="P",
              help="While training, drop this share of each LSTM layer's outputs where they feed the next "
                   "layer and the mixture output (Zaremba et al. 2014), a regulariser; 0 is off.")
@click.option("--blend", type=Finite(min=0.0, max=1.0, min_open=True), default=None, metavar="A",
              help="With --init: best.pt keeps A x the tuned weights + (1 - A) x the starting model's, "
                   "which keeps more of its legibility (default: 0.125 for your own .jsonl/.inkml lines, else 1).")
@click.option("--as-written", is_flag=True,
              help="With --init, your own .jsonl/.inkml lines are learnt as written (default: stood "
                   "upright to 3.4 degrees and, given one file, your slant recorded; the fine-tuned "
                   "model leans its lines back towards it).")
@oversample_options
@train_options
def train_handwriting_cmd(data, mix, **kw):
    """Train Graves' handwriting network on DATA: one or more stroke files (from
    `genseq data iam-ondb|unipen|jsonl|inkml`). With several, the alphabet is the
    union of theirs, each batch comes from one file (--mix), and the held-out
    score is reported per file.

    With --init (a model file or 'default') the model keeps that file's sizes
    and normalisation and fine-tunes on DATA; characters only DATA holds are
    added to its alphabet with fresh weights. Your own handwriting may come as
    .jsonl or .inkml files: they are brought to the model's own ink in the run
    folder, stood upright (your slant recorded in the model, which leans its
    lines back towards it; --as-written keeps the lines as written), a few
    lines held out, and flags left at their defaults take a short schedule
    for a few dozen lines (150 steps of 8 lines, lr 1e-4, --augment 1,
    --blend 0.125).
    """
    from ..hand.train import train_handwriting
    run_training(train_handwriting, list(data), mix=parse_mix(mix, len(data)), **typed_options(kw))


@evaluate.command("handwriting")
@click.argument("model")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="val", show_default=True, help="Split to score.")
@click.option("--by-class", is_flag=True,
              help="Also the NLL per point by the class of the character the window attends to "
                   "(lower, upper, digit, space, punct) and by where it stands (first of the line, first "
                   "of a word, inside a word), and each class against lowercase letters at its own "
                   "positions; also size-free: less 2 log r for each pen step of length r, over the "
                   "steps where the pen moved.")
@click.option("--sequences", type=click.IntRange(min=1), default=None,
              help="Score only this many sequences, spread evenly over the split (e.g. a sample of train).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_handwriting(model, data, split, by_class, sequences, as_json):
    """Held-out NLL of MODEL (checkpoint or 'default') on DATA, in nats, data units."""
    from ..hand.evaluate import evaluate_file
    from ..hand.api import load_hand_model
    r = evaluate_file(load_hand_model(model), data, split, by_class=by_class, max_sequences=sequences)
    if as_json:
        click.echo(json.dumps(r))
        return
    click.echo(f"{r['nll_per_point']:.4f} nats/point, {r['nll_per_sequence']:.1f} nats/sequence "
               f"over {r['sequences']:,} sequences ({r['points']:,} points)")
    for name, c in r.get("classes", {}).items():
        click.echo(f"  {name:5s} {_class_line(c)}")
        for pos, at in c["positions"].items():
            click.echo(f"    {pos.replace('_', ' '):10s} {_class_line(at)}")
        gap, free_gap = c["vs_lower_same_positions"], c["size_free_vs_lower_same_positions"]
        if gap is not None:
            click.echo(f"    {'':10s} {gap:+.4f} nats/point against lowercase letters at the same positions"
                       + (f"; size-free {free_gap:+.4f}" if free_gap is not None else ""))


def _class_line(c: dict) -> str:
    free = c["size_free_nll_per_point"]
    return (f"{c['nll_per_point']:.4f} nats/point over {c['points']:,} points"
            + (f"; size-free {free:.4f} over the {c['moving_points']:,} where the pen moved" if free is not None else ""))


def parse_char_bias(value: str | None) -> tuple[str, float] | None:
    """--char-bias 'xX=2.5' -> ("xX", 2.5); '' -> None (--bias for every character)."""
    from ..errors import GenseqError
    if not value:
        return None
    chars, sep, b = value.rpartition("=")
    try:
        bias = float(b)
    except ValueError:
        bias = math.nan
    if not sep or not chars or not math.isfinite(bias):
        raise GenseqError(f"--char-bias {value!r}: give CHARS=B, e.g. 'xX=2.5'")
    return chars, bias


def page_options(f):
    opts = [
        click.option("--color", default="black", show_default=True, help="Ink colour (any SVG colour)."),
        click.option("--width", "stroke_width", type=Finite(min=0, min_open=True, max=MAX_PX), default=_P.stroke_width,
                     show_default=True, help="Pen width in px."),
        click.option("--line-height", type=Finite(min=0, min_open=True, max=MAX_PX), default=None,
                     help="Distance between lines in px (default: from the text height)."),
        click.option("--align", type=click.Choice(["left", "center", "right"]), default="left", show_default=True,
                     help="Line alignment."),
        click.option("--page-width", type=Finite(min=50, max=MAX_PX), default=_P.width, show_default=True, help="Page width in px."),
        click.option("--page-height", type=Finite(min=50, max=MAX_PX), default=None,
                     help="Page height in px; text flows onto more pages (out-1.svg, out-2.svg, ...)."),
        click.option("--margin", type=Finite(min=0, max=MAX_PX), default=_P.margin, show_default=True, help="Page margin in px."),
        click.option("--background", default="white", show_default=True, help="Page colour, or 'none'."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _page(color, stroke_width, line_height, align, page_width, page_height, margin, background) -> PageOptions:
    return PageOptions(width=page_width, height=page_height, margin=margin, line_height=line_height, align=align,
                       color=color, stroke_width=stroke_width,
                       background=None if background == "none" else background)


@main.command("write")
@click.argument("text", required=False)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("handwriting.svg"),
              show_default=True, help="File to write: .svg, .png or .pdf (PNG and PDF need matplotlib: "
                                      "pip install 'genseq[export]'). More pages: NAME-1.svg, NAME-2.svg, ...; "
                                      "a PDF holds them all.")
@click.option("--file", "-f", "text_file", type=click.File("r", encoding="utf-8"), default=None,
              help="Read the text from a file ('-' for stdin).")
@click.option("--model", "-m", default=None, help="Synthesis model file (default: the bundled one).")
@click.option("--bias", "-b", type=float, default=None,
              help="Legibility (Graves 5.4): 0 is the raw model, higher is neater.  [default: 1.5; "
                   "1.0 in your hand: with --style-file, or a fine-tuned model's own lines]")
@click.option("--char-bias", default="", metavar="CHARS=B",
              help="Bias B instead of --bias while the pen writes one of CHARS, e.g. 'xX=2.5' "
                   "(default: --bias for every character).")
@click.option("--style", "-s", type=int, default=None,
              help="Style number (priming, Graves 5.5): a bundled one, or one of the lines a fine-tuned "
                   "model carries; default: the one --seed picks (a fine-tuned model's first).")
@click.option("--no-style", "unprimed", is_flag=True, help="No priming: every line in a hand of its own.")
@click.option("--style-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Prime with your own handwriting: a JSON Lines file (text + strokes) or InkML (.inkml). "
                   "It primes stood upright, and the lines lean three quarters of the way back to your slant.")
@click.option("--style-lines", type=click.IntRange(1, 5), default=_W.style_lines, show_default=True,
              help="With --style-file: prime with this many of its lines, side by side: those the reader "
                   "reads plainly, nearest 40 characters long, first.")
@click.option("--as-written", is_flag=True,
              help="With --style-file: prime with your lines as written, not stood upright (the lines then lean "
                   "as the model imitates your slant).")
@click.option("--seed", type=SEED, default=_W.seed, show_default=True, help="Same seed, same handwriting.")
@click.option("--max-chars", type=int, default=_W.max_chars, show_default=True, help="Wrap lines at this many characters.")
@click.option("--unknown", type=click.Choice(["error", "drop", "replace"]), default="error", show_default=True,
              help="Characters the model cannot write.")
@click.option("--max-text", type=click.IntRange(min=1), default=_W.max_text, show_default=True,
              help="Refuse texts longer than this many characters.")
@click.option("--candidates", "-k", type=click.IntRange(1, 16), default=_W.candidates, show_default=True,
              help="Write each line this many times; the recognizer keeps the best at every word's end (1: the first draw).")
@click.option("--recognizer", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Recognizer file that picks among the candidates (default: the bundled one).")
@click.option("--picture-reader", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A reader of pictures (genseq train recognizer --input image) that also reads each "
                   "candidate's newest word as drawn; its log p(word | picture) is added to the score.")
@click.option("--by-line", is_flag=True,
              help="Choose among the candidates by whole lines only (default: at every word's end).")
@click.option("--cross-check", type=Finite(min=0, max=10), default=_W.cross_check, show_default=True,
              metavar="NATS",
              help="Also choose by shape: a candidate whose x, X, t, f, + or # strokes cross less often than "
                   "another's loses NATS per missing crossing (in words with x, X, + or #; 0 turns it off).")
@click.option("--margin-check", type=Finite(min=0, max=10), default=None, metavar="NATS",
              help="Also choose by how sure the reader is of each digit, capital and #: by how much it prefers "
                   "the right character to the likeliest other letter or digit in its place; a candidate loses "
                   "NATS per nat that margin falls short of 5 (0 turns it off).  [default: 1; 0 in your hand]")
@click.option("--bar-check", type=Finite(min=0, max=10), default=None, metavar="NATS",
              help="Also choose by shape: a candidate loses NATS per capital E drawn without its top bar "
                   "(which reads as a t) and per t whose bar does not cross to the right of its stem "
                   "(which reads as an l; 0 turns it off).  [default: 3; 0 in your hand]")
@click.option("--word-gap", type=Finite(min=0, max=5), default=None, metavar="WIDTHS",
              help="Move words apart where the model left less than WIDTHS average character widths between "
                   "them (0 keeps the lines as drawn).  [default: 1.2; 0 in your hand]")
@click.option("--animate", is_flag=True,
              help="An SVG that draws itself stroke by stroke at the pen's pace (CSS, no script; "
                   "still for readers who ask for reduced motion).")
@click.option("--speed", type=Finite(min=0.01, max=100), default=1.0, show_default=True,
              help="With --animate: how much faster than the recorded pen.")
@click.option("--plotter", is_flag=True,
              help="An SVG for pen plotters: one path per stroke in writing order, no fill, no background, "
                   "a layer per line.")
@click.option("--dpi", type=Finite(min=1, max=2400), default=96.0, show_default=True,
              help="Pixels per inch of a PNG (-o page.png); 96 is one pixel per px of the page.")
@page_options
def write_cmd(text, output, text_file, model, bias, char_bias, style, unprimed, style_file, style_lines, as_written, seed,
              max_chars, unknown,
              max_text, candidates, recognizer, picture_reader, by_line, cross_check, margin_check, bar_check, word_gap, animate, speed,
              plotter, dpi, **page):
    """Handwrite TEXT (or --file, or stdin) into an SVG, or a PNG or PDF by the name of -o."""
    from ..errors import GenseqError
    from ..hand.api import write_drawing
    from ..render import save_drawing
    from ..render.output import check_output
    from ..render.svg import stale_pages
    if animate and plotter:
        raise GenseqError("give --animate or --plotter, not both")
    ctx, typed = click.get_current_context(), click.core.ParameterSource.COMMANDLINE
    if style_file is None and ctx.get_parameter_source("style_lines") is typed:
        raise GenseqError("--style-lines works with --style-file (how many of its lines prime)")
    if style_file is None and as_written:
        raise GenseqError("--as-written works with --style-file (how its lines prime)")
    if not animate and ctx.get_parameter_source("speed") is typed:
        raise GenseqError("--speed works with --animate (how fast the page draws itself)")
    flavour = "animated" if animate else "plotter" if plotter else "static"
    if text is not None and text_file is not None:
        raise GenseqError("give the text as an argument or with --file, not both")
    if text is None:
        if text_file is None:
            if sys.stdin.isatty():
                raise GenseqError("no text: give it as an argument, with --file, or on stdin")
            text_file = sys.stdin
        # At most --max-text + 1 characters are kept (--file /dev/zero cannot fill the
        # memory); past the limit the rest is only counted, up to 64 Mi, for the message.
        text = text_file.read(max_text + 1)
        if len(text) > max_text:
            n, cap = len(text), 64 * 1024 * 1024
            while n <= cap and (block := text_file.read(1 << 20)):
                n += len(block)
            raise GenseqError(f"the text has {f'more than {cap:,}' if n > cap else f'{n:,}'} characters; "
                              f"the limit is {max_text:,} (--max-text raises it; writing takes about 25 ms "
                              "per character on a CPU)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # an argument of bytes that are not UTF-8 (Python keeps them as surrogates)
        raise GenseqError(f"the text is not UTF-8 (character {err.start + 1} of the argument)") from None
    if not output.parent.is_dir():
        raise GenseqError(f"cannot write {output}: folder {output.parent} does not exist")
    from ..atomic import output_target
    output_target(output)  # refuse a device, FIFO or folder now, not after minutes of writing
    opts = WriteOptions(bias=bias, char_bias=parse_char_bias(char_bias), seed=seed, style=style,
                        unprimed=unprimed, style_file=style_file,
                        style_lines=style_lines, upright=not as_written, max_chars=max_chars,
                        unknown=unknown, max_text=max_text, candidates=candidates, recognizer=recognizer,
                        picture_reader=picture_reader, by_word=not by_line, cross_check=cross_check, margin_check=margin_check,
                        bar_check=bar_check, word_gap=word_gap, page=_page(**page))
    check_output(output, flavour)  # before minutes of writing, not after
    from ..strokes.build import Report
    left_out = Report()
    drawing, lines = write_drawing(text, model, opts, left_out)
    bad = [ln for ln in lines if ln is not None and ln.status != "ok"]
    written = save_drawing(drawing, output, opts.page, flavour=flavour, speed=speed, dpi=dpi)
    for path in written:
        click.echo(str(path))
    old = stale_pages(output, written) if output.suffix.lower() != ".pdf" else []
    if old:
        names = old[0].name + (f" to {old[-1].name}" if len(old) > 1 else "")
        click.echo(f"warning: {names} {'are' if len(old) > 1 else 'is'} left from an earlier, longer set of pages",
                   err=True)
    if left_out.skipped:
        reasons = left_out.reasons()
        click.echo(f"note: {style_file}: {sum(left_out.skipped.values())} line(s) left out ({reasons}); "
                   "the others primed", err=True)
    if bad:
        click.echo(f"warning: {len(bad)} line(s) still looked wrong after re-sampling: "
                   + "; ".join(f"{ln.text!r} ({ln.status})" for ln in bad[:5]), err=True)


@main.command("scribble")
@click.option("--model", "-m", required=True, help="A prediction model file (genseq train handwriting --kind prediction).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("scribble.svg"),
              show_default=True, help="File to write: SVG, or PNG or PDF by its name (genseq[export]).")
@click.option("--lines", type=click.IntRange(1, 100), default=3, show_default=True, help="Lines to draw.")
@click.option("--steps", type=click.IntRange(1, 10000), default=400, show_default=True, help="Points per line.")
@click.option("--bias", "-b", type=Finite(0, 10), default=0.5, show_default=True, help="Neatness (Graves 5.4).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed.")
@click.option("--dpi", type=Finite(min=1, max=2400), default=96.0, show_default=True,
              help="Pixels per inch of a PNG page.")
@page_options
def scribble_cmd(model, output, lines, steps, bias, seed, dpi, **page):
    """Unconditional handwriting from a prediction network (Graves 2013 section 4)."""
    from ..errors import GenseqError
    from ..hand.api import load_hand_model, scribble_lines
    from ..render import save_drawing
    from ..render.output import check_output
    check_output(output, "static")  # before drawing, not after
    hm = load_hand_model(model)
    if hm.config.kind != "prediction":
        raise GenseqError("scribble needs a prediction model; a synthesis model writes text: use `genseq write`")
    for path in save_drawing(scribble_lines(hm, lines, steps, bias, seed), output, _page(**page), dpi=dpi):
        click.echo(str(path))
