"""Handwriting pages for pen plotters: one single-line path per stroke.

What vpype, AxiDraw's Inkscape extension and similar tools take as is: no
fill, no background, no text (a plotter cannot write a font as single strokes),
strokes in writing order (the order the plotter draws them), and one Inkscape
layer per line of handwriting, so a line can be plotted, skipped or given its
own pen. The page keeps `render_pages`' size: width and height in px, which
plotter software reads at 96 px per inch. Curves stay Bézier curves; plotter
software linearises them itself. No torch here (STYLE.md rule 9).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .smooth import smooth_path
from .svg import PageOptions, drawing, paginate

INKSCAPE_NS = "http://www.inkscape.org/namespaces/inkscape"


def render_plotter(lines: Sequence[np.ndarray | None], options: PageOptions = PageOptions()) -> list[str]:
    """One plotter-ready SVG document per page, laid out as `render_pages`
    lays out the same lines without labels.

    Layer ids and names count the input lines from 1 ("line-3", "line 3"), so
    a line keeps its name across pages; lines without ink get no layer.
    `options.background` and the label options are ignored. Raises GenseqError
    as `render_pages` does.
    """
    docs = []
    for page in paginate(lines, options):
        dwg = drawing(page, background=None)
        dwg.attribs["xmlns:inkscape"] = INKSCAPE_NS
        for p, strokes in page.lines:
            paths = [d for d in (smooth_path(s, options.digits) for s in strokes) if d]
            if not paths:
                continue
            layer = dwg.g(id=f"line-{p.line + 1}", fill="none", stroke=options.color,
                          stroke_width=options.stroke_width, stroke_linecap="round", stroke_linejoin="round")
            layer.attribs["inkscape:groupmode"] = "layer"
            layer.attribs["inkscape:label"] = f"line {p.line + 1}"
            for d in paths:
                layer.add(dwg.path(d=d, fill="none"))
            dwg.add(layer)
        docs.append(dwg.tostring())
    return docs
