"""Handwriting to SVG: pen offsets -> smooth strokes -> laid-out pages, and
small SVG charts of training metrics. Never imports torch (STYLE.md rule 9).

Three flavours of the same pages: static (`render_pages`), self-drawing with a
CSS animation (`render_animated`), and pen-plotter ready (`render_plotter`);
`render_svg` picks one by name; `save_drawing` writes any of them, or PNG
and PDF pages (render/raster.py, with matplotlib), by the file's suffix.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import GenseqError
from .animate import POINTS_PER_SECOND, render_animated
from .plotter import render_plotter
from .smooth import offsets_to_strokes, smooth_path
from .svg import PageOptions, Placement, layout, render_pages, save_pages
from .output import save_drawing

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


__all__ = ["offsets_to_strokes", "smooth_path", "PageOptions", "Placement", "layout",
           "render_pages", "save_pages", "render_animated", "render_plotter", "render_svg",
           "FLAVOURS", "POINTS_PER_SECOND", "save_drawing"]
