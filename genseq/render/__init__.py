"""Handwriting to SVG: pen offsets -> smooth strokes -> laid-out pages, and
small SVG charts of training metrics. Never imports torch (STYLE.md rule 9).

Three flavours of the same pages: static (`render_pages`), self-drawing with a
CSS animation (`render_animated`), and pen-plotter ready (`render_plotter`);
`render_svg` picks one by name; `save_drawing` writes any of them, or PNG
and PDF pages (render/raster.py, with matplotlib), by the file's suffix.
"""
from __future__ import annotations

from .animate import POINTS_PER_SECOND, render_animated
from .output import FLAVOURS, render_svg, save_drawing
from .plotter import render_plotter
from .smooth import offsets_to_strokes, smooth_path
from .svg import PageOptions, Placement, layout, render_pages, save_pages

__all__ = ["offsets_to_strokes", "smooth_path", "PageOptions", "Placement", "layout",
           "render_pages", "save_pages", "render_animated", "render_plotter", "render_svg",
           "FLAVOURS", "POINTS_PER_SECOND", "save_drawing"]
