"""Handwriting pages as PNG images and as one vector PDF, drawn by matplotlib.

The drawing is the SVG's (genseq.render.svg): the same layout, the same
centripetal Catmull-Rom Bézier control points, pen width, colours, round caps
and joins, and labels. SVG lengths are CSS px, 96 to the inch, so a page
`w` px wide is `w * dpi / 96` pixels in a PNG and `w * 72 / 96` points in
the PDF. matplotlib is optional (`pip install 'genseq[export]'`) and imported
only when a PNG or PDF is made; only its object-oriented API is used (a
Figure and a canvas per page, never pyplot), so no global figure state is
shared between callers such as a web server's threads. No torch here
(STYLE.md rule 9).
"""
from __future__ import annotations

import io
import math
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import atomic_open, output_target
from ..errors import GenseqError
from .smooth import DOT_LENGTH, _dedupe, bezier_controls
from .svg import Page, PageOptions, paginate

PX_PER_INCH = 96.0  # CSS px, the SVG's user unit
PT_PER_INCH = 72.0  # PDF points, matplotlib's unit for line widths and font sizes
PT_PER_PX = PT_PER_INCH / PX_PER_INCH
MAX_PIXELS = 65535  # Agg's (and so matplotlib's) limit on each side of an image
MAX_PAGE_PIXELS = 150_000_000  # pixels of one page (600 MB as RGBA): an A4 page at 1,200 dpi is 139 million

# matplotlib.path.Path's code values (part of its documented API), so that the
# geometry below needs no matplotlib.
MOVETO, LINETO, CURVE4 = 1, 2, 4

# Agg sizes its canvas by truncating the figure's size in pixels, and a size
# given in inches comes back as, say, 999.9999999 pixels: a sliver more keeps
# the intended count (0.001 px, far below anything visible).
_SLIVER = 1e-3

_NEEDS_MPL = "PNG and PDF output needs matplotlib: pip install 'genseq[export]'"
_RGB_INT = re.compile(r"^rgb\( *(\d+) *, *(\d+) *, *(\d+) *\)$")
_RGB_PCT = re.compile(r"^rgb\( *(\d+(?:\.\d*)?)% *, *(\d+(?:\.\d*)?)% *, *(\d+(?:\.\d*)?)% *\)$")


def _stroke_path(points: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Vertices and codes of one stroke, as smooth_path draws it: a dot is a
    DOT_LENGTH segment (the round cap paints the disc), two points a line,
    more a cubic Bézier per pair of points."""
    p = _dedupe(points[np.isfinite(points).all(axis=1)])
    if len(p) == 0:
        return None
    if len(p) == 1:
        verts = np.array([p[0], p[0] + (DOT_LENGTH, 0.0)])
        return verts, np.array([MOVETO, LINETO], dtype=np.uint8)
    if len(p) == 2:
        return p, np.array([MOVETO, LINETO], dtype=np.uint8)
    c1, c2 = bezier_controls(p)  # (k-1, 2) each
    # Segment i is CURVE4 with vertices c1[i], c2[i], p[i+1]: interleave them.
    verts = np.concatenate([p[:1], np.stack([c1, c2, p[1:]], axis=1).reshape(-1, 2)])
    codes = np.full(len(verts), CURVE4, dtype=np.uint8)
    codes[0] = MOVETO
    return verts, codes


def _line_path(strokes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """One compound path (vertices (P, 2), codes (P,)) for a line's strokes in
    page px, as the SVG has one path per line; None when nothing is drawable."""
    parts = [part for part in map(_stroke_path, strokes) if part is not None]
    if not parts:
        return None
    return np.concatenate([v for v, _ in parts]), np.concatenate([c for _, c in parts])


def _rgba(color: str | None) -> tuple[float, float, float, float]:
    """An SVG 1.1 colour (as PageOptions accepts it) as matplotlib's RGBA;
    None is transparent. matplotlib reads the names and #rrggbb; it has no
    rgb() (and older releases no #rgb), so those are read here."""
    from matplotlib.colors import to_rgba
    if color is None:
        return (0.0, 0.0, 0.0, 0.0)
    c = color.strip()
    if re.fullmatch(r"#[0-9a-fA-F]{3}", c):
        c = "#" + "".join(ch * 2 for ch in c[1:])
    for pattern, full in ((_RGB_INT, 255.0), (_RGB_PCT, 100.0)):
        m = pattern.match(c)
        if m:  # CSS clips out-of-range components: rgb(300, 0, 0) is red
            r, g, b = (min(float(v), full) / full for v in m.groups())
            return (r, g, b, 1.0)
    return to_rgba(c)


def matplotlib_classes():
    """matplotlib's Figure, PathPatch and Path classes, or the one-line error."""
    try:
        import matplotlib.figure
        import matplotlib.patches
        import matplotlib.path
    except ImportError:
        raise GenseqError(_NEEDS_MPL) from None
    return matplotlib.figure.Figure, matplotlib.patches.PathPatch, matplotlib.path.Path


def _figure(page: Page, options: PageOptions, labels: Sequence[str] | None,
            size_px: tuple[float, float], dpi: float):
    """A Figure of `size_px` device pixels at `dpi` whose one axes maps page px
    to the figure at dpi / 96 pixels per px, y flipped (SVG y grows down)."""
    Figure, PathPatch, MplPath = matplotlib_classes()
    w_px, h_px = size_px
    background = _rgba(options.background)
    fig = Figure(figsize=(w_px / dpi, h_px / dpi), dpi=dpi, facecolor=background, edgecolor=background,
                 frameon=options.background is not None, layout="none")
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_frame_on(False)
    ink, label_color = _rgba(options.color), _rgba(options.label_color)
    anchor = {"left": "left", "center": "center", "right": "right"}[options.align]
    for place, strokes in page.lines:
        line = _line_path(strokes)
        if line is not None:
            path = MplPath(*line)
            path.should_simplify = False  # draw every sample, as the SVG does
            # snap=False: Agg snaps a path of only straight segments to whole
            # pixels, which shrinks a dot's DOT_LENGTH segment to nothing (and
            # nothing is drawn); SVG renderers never snap.
            ax.add_patch(PathPatch(path, fill=False, edgecolor=ink, linewidth=options.stroke_width * PT_PER_PX,
                                   capstyle="round", joinstyle="round", antialiased=True, snap=False))
        if labels is not None and labels[place.line]:
            # parse_math=False: a "$" in a transcription is text, not mathtext.
            ax.text(place.label_x, place.label_y, str(labels[place.line]), fontsize=options.label_size * PT_PER_PX,
                    color=label_color, family="sans-serif", ha=anchor, va="baseline",
                    parse_math=False, usetex=False)
    scale = dpi / PX_PER_INCH  # device pixels per page px
    ax.set_xlim(0.0, w_px / scale)
    ax.set_ylim(h_px / scale, 0.0)
    return fig


def _pixels(length: float, dpi: float) -> int:
    """Whole pixels covering `length` page px at `dpi` (a part pixel counts)."""
    return max(1, math.ceil(length * dpi / PX_PER_INCH - 1e-6))


def render_png(lines: Sequence[np.ndarray | None], options: PageOptions = PageOptions(),
               labels: Sequence[str] | None = None, dpi: float = 96) -> list[bytes]:
    """One PNG image (bytes) per page of handwriting, drawn as `render_pages` draws the SVG.

    At dpi 96 one page px is one pixel; a page `w` px wide is ceil(w * dpi / 96)
    pixels wide. The background is transparent when `options.background` is
    None. The bytes hold no time stamp: the same input gives the same bytes.
    """
    if not (isinstance(dpi, (int, float)) and math.isfinite(dpi) and dpi > 0):
        raise GenseqError(f"dpi must be a positive number, not {dpi!r}")
    pages = paginate(lines, options, labels)
    matplotlib_classes()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    sizes = [(_pixels(page.width, dpi), _pixels(page.height, dpi)) for page in pages]
    for page, (w_px, h_px) in zip(pages, sizes):  # every page checked before any is drawn
        if max(w_px, h_px) > MAX_PIXELS:
            raise GenseqError(f"a page of {page.width:g} x {page.height:g} px at {dpi:g} dpi is {w_px} x {h_px} "
                              f"pixels, more than the {MAX_PIXELS} a PNG side may have here; lower the dpi "
                              "or set a page height")
        if w_px * h_px > MAX_PAGE_PIXELS:
            raise GenseqError(f"a page of {page.width:g} x {page.height:g} px at {dpi:g} dpi is {w_px} x {h_px} "
                              f"pixels, more than the {MAX_PAGE_PIXELS:,} a PNG page may have; lower the dpi "
                              "or the page size")
    out = []
    for page, (w_px, h_px) in zip(pages, sizes):
        fig = _figure(page, options, labels, (w_px + _SLIVER, h_px + _SLIVER), dpi)
        buf = io.BytesIO()
        # The canvas's own print_png, not savefig: savefig applies the user's
        # savefig.* rcParams (bbox "tight" would crop the page).
        FigureCanvasAgg(fig).print_png(buf, metadata={"Software": None})
        out.append(buf.getvalue())
    return out


def render_pdf(lines: Sequence[np.ndarray | None], options: PageOptions = PageOptions(),
               labels: Sequence[str] | None = None) -> bytes:
    """One vector PDF (bytes) with a PDF page per page of handwriting.

    Each page is the SVG page's size at 72 pt per 96 px; strokes stay cubic
    Bézier curves (nothing is rasterised). No creation date is written, so the
    same input gives the same bytes.
    """
    pages = paginate(lines, options, labels)
    matplotlib_classes()
    from matplotlib.backends.backend_pdf import FigureCanvasPdf, PdfPages
    buf = io.BytesIO()
    with PdfPages(buf, metadata={"CreationDate": None, "Creator": "genseq"}) as pdf:
        for page in pages:
            fig = _figure(page, options, labels, (page.width, page.height), PX_PER_INCH)
            # print_pdf straight onto the PdfPages: savefig would apply savefig.* rcParams.
            FigureCanvasPdf(fig).print_pdf(pdf)
    return buf.getvalue()


def save_pdf(data: bytes, path: str | os.PathLike) -> Path:
    """Write a PDF atomically to `path` (all pages are in the one file)."""
    path = Path(path)
    output_target(path)
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return path
