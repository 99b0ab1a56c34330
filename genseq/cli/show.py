"""`genseq show`: draw lines of a stroke dataset, with their transcriptions."""
from __future__ import annotations

from pathlib import Path

import click

from ..render import PageOptions
from .groups import main

_D = PageOptions()


@main.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--index", "-i", "indices", type=int, multiple=True, default=(0,), show_default=True,
              help="Sequence to draw (repeat for several; negative counts from the end).")
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "val", "test"]),
              help="Which split of the file to read.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Output .svg, .png or .pdf (several pages become OUT-1.svg, OUT-2.svg, ...; a PDF "
                   "holds them all). Default: FILE's name with -SPLIT.svg, in the current folder.")
@click.option("--dpi", type=click.FloatRange(1, 2400), default=96.0, show_default=True,
              help="Pixels per inch of a PNG; 96 is one pixel per px of the page.")
@click.option("--width", type=float, default=_D.width, show_default=True, help="Page width in px.")
@click.option("--page-height", type=float, default=None,
              help="Page height in px; lines flow onto several pages. Default: one page as tall as needed.")
@click.option("--align", type=click.Choice(["left", "center", "right"]), default=_D.align, show_default=True,
              help="Horizontal alignment of the lines.")
@click.option("--background", default="white", show_default=True,
              help="Page colour (SVG colour name or #rrggbb); 'none' for transparent.")
@click.option("--no-labels", is_flag=True, help="Do not print the transcription under each line.")
def show(file: str, indices: tuple[int, ...], split: str, out: str | None, dpi: float, width: float,
         page_height: float | None, align: str, background: str, no_labels: bool) -> None:
    """Draw sequences of a stroke dataset FILE.h5 as SVG, each labelled with its text."""
    from ..render import save_drawing
    from ..strokes import StrokeDataset

    options = PageOptions(width=width, height=page_height, align=align,
                          background=None if background.lower() == "none" else background)
    with StrokeDataset(file) as ds:
        part = ds.split(split)
        samples = []
        for i in indices:
            try:
                samples.append(part[i])
            except IndexError as err:
                raise click.ClickException(str(err)) from None
    labels = None if no_labels else [f"{s.id}: {s.text}" for s in samples]
    target = Path(out) if out else Path(f"{Path(file).stem}-{split}.svg")
    for p in save_drawing([s.points for s in samples], target, options, labels=labels, dpi=dpi):
        click.echo(str(p))
