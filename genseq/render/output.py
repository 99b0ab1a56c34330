"""Laid-out lines to files, the format chosen by the file's suffix.

.png: raster pages (matplotlib, `dpi`); .pdf: one vector PDF with a page per
page (matplotlib); anything else: SVG in the named flavour (static, animated
or plotter; see render_svg). Several pages become NAME-1.EXT, NAME-2.EXT, ...
(a PDF keeps them in one file). Every name is checked before anything is
written, and every file is written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import GenseqError
from .animate import render_animated
from .plotter import render_plotter
from .svg import PageOptions, render_pages, save_pages

RASTER = (".png", ".pdf")


def check_output(path: str | os.PathLike, flavour: str = "static") -> str:
    """The output's suffix, once `path` can take a drawing of `flavour`: an animated
    or plotter drawing is an SVG, and PNG or PDF need matplotlib. Callers check
    before minutes of writing, not after."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".svg", *RASTER):
        raise GenseqError(f"{Path(path).name}: name a .svg, .png or .pdf file (the format follows the name)")
    if suffix in RASTER:
        if flavour != "static":
            article = "an" if flavour[0] in "aeiou" else "a"
            raise GenseqError(f"{article} {flavour} drawing is an SVG: write it to a .svg file, not {suffix}")
        from .raster import matplotlib_classes
        matplotlib_classes()  # the one-line error when matplotlib is missing
    return suffix


FLAVOURS = ("static", "animated", "plotter")


def render_svg(lines: Sequence[np.ndarray | None], options: PageOptions = PageOptions(),
               labels: Sequence[str] | None = None, flavour: str = "static", speed: float = 1.0) -> list[str]:
    """One SVG document per page in the named flavour (one of FLAVOURS).

    `speed` only matters to "animated"; "plotter" leaves `labels` out (a
    plotter cannot write a font as single strokes) but still checks their
    count. Raises GenseqError for an unknown flavour, and as the flavour does.
    """
    if flavour not in FLAVOURS:
        raise GenseqError(f"flavour must be one of {', '.join(FLAVOURS)}, not {flavour!r}")
    if flavour == "animated":
        return render_animated(lines, options, labels, speed=speed)
    if labels is not None and len(labels) != len(lines):
        raise GenseqError(f"got {len(labels)} labels for {len(lines)} lines")
    if flavour == "plotter":
        return render_plotter(lines, options)
    return render_pages(lines, options, labels)


def save_drawing(lines: Sequence[np.ndarray | None], path: str | os.PathLike, options: PageOptions = PageOptions(),
                 labels: Sequence[str] | None = None, flavour: str = "static", speed: float = 1.0,
                 dpi: float = 96.0) -> list[Path]:
    """Render `lines` (data-unit offsets, see render_pages) into `path`; returns the files written."""
    path = Path(path)
    suffix = check_output(path, flavour)
    if suffix == ".png":
        from .raster import render_png
        return save_pages(render_png(lines, options, labels, dpi=dpi), path)
    if suffix == ".pdf":
        from .raster import render_pdf, save_pdf
        return [save_pdf(render_pdf(lines, options, labels), path)]
    return save_pages(render_svg(lines, options, labels, flavour=flavour, speed=speed), path)
