"""Handwriting to SVG: pen offsets -> smooth strokes -> laid-out pages, and
small SVG charts of training metrics. Never imports torch (STYLE.md rule 9)."""
from .smooth import offsets_to_strokes, smooth_path
from .svg import PageOptions, Placement, layout, render_pages, save_pages

__all__ = ["offsets_to_strokes", "smooth_path", "PageOptions", "Placement", "layout",
           "render_pages", "save_pages"]
