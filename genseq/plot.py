"""`vpype genseq`: handwriting for pen plotters, as a vpype plugin (the `plot` extra).

    vpype genseq --style 2 "Dear Ada," linesort write letter.svg

pyproject.toml registers the command under the "vpype.plugins" entry point.
It writes the text as `genseq write` does and hands vpype one polyline per pen
stroke, in writing order, in CSS px (vpype's unit, and genseq's SVG px): the
curves of genseq's SVG, flattened. The layout has no page height and no
margin (vpype's `layout` and `pagesize` place the ink on paper). Torch loads
only when the command runs, so `vpype --help` stays fast.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
import vpype as vp
import vpype_cli

from .errors import GenseqError
from .render.smooth import bezier_polyline, offsets_to_strokes
from .render.svg import PageOptions, layout

if TYPE_CHECKING:
    from .hand.sample import HandLine
    from .hand.api import WriteOptions

_P = PageOptions()
QUANTIZATION = "0.1mm"  # vpype's own default for flattening curves (`vpype read -q`)


def handwriting_lines(text: str, model: str | os.PathLike | None = None, options: WriteOptions | None = None,
                      max_step: float | None = None) -> tuple[vp.LineCollection, list[HandLine | None]]:
    """Handwrite `text`: (one polyline per stroke in page px, the written lines).

    `options` None means WriteOptions(); its `page` lays the lines out as `genseq write` would. `max_step` (px) is the
    longest piece of a flattened curve (None: QUANTIZATION).
    """
    from .hand.api import WriteOptions, write_drawing
    options = WriteOptions() if options is None else options
    max_step = vp.convert_length(QUANTIZATION) if max_step is None else max_step
    # hand/api.py's own checks, cleaning and wrapping: the same seed writes the same strokes as `genseq write`.
    pts, written = write_drawing(text, model, options)
    lc = vp.LineCollection()
    for p in layout(pts, options.page)[0]:
        for stroke in offsets_to_strokes(pts[p.line]):
            xy = bezier_polyline(p.to_page(stroke), max_step)
            if len(xy):
                lc.append(xy[:, 0] + 1j * xy[:, 1])
    return lc, written


@click.command()
@click.argument("text")
@click.option("--file", "-f", "from_file", is_flag=True, help="TEXT names a file to read the text from ('-': stdin).")
@click.option("--model", "-m", default=None, help="Synthesis model file (default: the bundled one).")
@click.option("--bias", "-b", type=float, default=None,
              help="Legibility (Graves 5.4): 0 is the raw model, higher is neater (default: genseq write's).")
@click.option("--style", "-s", type=int, default=None,
              help="Style number (priming, Graves 5.5): a bundled one, or one a fine-tuned --model carries; "
                   "default: the one --seed picks (a fine-tuned model's first).")
@click.option("--style-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Prime with your own handwriting: a JSON Lines or .inkml file (text + strokes).")
@click.option("--seed", type=int, default=None, help="Same seed, same handwriting (default: genseq write's).")
@click.option("--max-chars", type=int, default=None, help="Wrap lines at this many characters (default: genseq write's).")
@click.option("--unknown", type=click.Choice(["error", "drop", "replace"]), default=None,
              help="Characters the model cannot write (default: error).")
@click.option("--candidates", "-k", type=int, default=None,
              help="Write each line this many times and keep the best read (1: the first draw; "
                   "default: genseq write's).")
@click.option("--width", "-w", type=vpype_cli.LengthType(), default=f"{_P.width:g}px", show_default=True,
              help="The widest line's width, at most (short texts stop at letters 40px high).")
@click.option("--line-height", type=vpype_cli.LengthType(), default=None,
              help="Distance between lines (default: from the text height).")
@click.option("--align", type=click.Choice(["left", "center", "right"]), default=_P.align, show_default=True,
              help="Line alignment within --width.")
@click.option("--quantization", "-q", type=vpype_cli.LengthType(), default=QUANTIZATION, show_default=True,
              help="Longest straight piece of a flattened curve.")
@vpype_cli.generator
def genseq(text, from_file, model, width, line_height, align, quantization, **write) -> vp.LineCollection:
    """Handwrite TEXT with genseq's network, one path per pen stroke.

    Options come before TEXT (vpype reads what follows it as the next command).
    """
    try:
        from .hand.api import WriteOptions
        if from_file:
            limit = WriteOptions.max_text
            try:
                with click.open_file(text, encoding="utf-8") as f:
                    text = f.read(limit + 1)
            except OSError as err:
                raise GenseqError(f"cannot read {text}: {err.strerror or err}") from None
            except UnicodeDecodeError as err:
                raise GenseqError(f"{text} is not UTF-8 text (byte {err.start})") from None
            if len(text) > limit:
                raise GenseqError(f"the text has more than {limit:,} characters, the most genseq writes "
                                  "in one call (about 25 ms per character on a CPU)")
        for name, length in (("--width", width), ("--line-height", line_height), ("--quantization", quantization)):
            if length is not None and not length > 0:
                raise GenseqError(f"{name} must be a positive length")
        page = PageOptions(width=width, margin=0.0, line_height=line_height, align=align)
        given = {k: v for k, v in write.items() if v is not None}
        lc, written = handwriting_lines(text, model, WriteOptions(page=page, **given), quantization)
    except GenseqError as err:
        raise click.ClickException(str(err)) from None
    bad = [ln for ln in written if ln is not None and ln.status != "ok"]
    if bad:
        click.echo(f"warning: {len(bad)} line(s) still looked wrong after re-sampling: "
                   + "; ".join(f"{ln.text!r} ({ln.status})" for ln in bad[:5]), err=True)
    return lc


genseq.help_group = "Plugins"
