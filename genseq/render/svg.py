"""Lay out lines of handwriting on pages and write them as SVG.

Every line of a page set shares one scale (px per data unit), so letters keep
the same size from line to line. Data y grows upwards; SVG y grows downwards,
so the layout flips y: page point = (x0 + s * x, y0 - s * y). No torch here.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import svgwrite

from ..atomic import atomic_path, output_target
from ..errors import GenseqError
from .smooth import offsets_to_strokes, smooth_path

_ALIGNS = ("left", "center", "right")


MAX_PX = 1e6  # no page size, margin or line height beyond this (px)


def _is_color(value) -> bool:
    """An SVG 1.1 colour, by svgwrite's own validator (names, #rgb, #rrggbb, rgb())."""
    from svgwrite.validator2 import get_validator
    try:
        get_validator("full", debug=True).check_svg_type(str(value), "color")
    except TypeError:
        return False
    return isinstance(value, str)


@dataclass(frozen=True)
class PageOptions:
    """How to lay out lines of handwriting. Lengths are SVG user units (px).

    width: page width.
    height: page height; None = one page exactly as tall as its lines need,
        otherwise lines flow onto as many pages of this height as needed.
    margin: blank border on every side.
    line_height: distance between the centres of consecutive lines; None =
        `line_spacing` times the text height. A line with tall outliers gets
        more room rather than overlapping its neighbours.
    line_spacing: used when line_height is None, in units of the text height
        (the 5th-95th percentile height of a line's points, median over lines).
    align: "left", "center" or "right".
    color, stroke_width: the pen.
    background: None = transparent, else an SVG colour filling the page.
    scale: px per data unit; None = the largest scale at which the widest
        line fits between the margins, but no larger than makes the text
        height `max_text_height` px (so short lines are not blown up).
    max_text_height: see scale.
    label_size, label_color: the transcription printed under each line when
        labels are given to `render_pages`.
    digits: decimals written for path coordinates.
    """

    width: float = 1000.0
    height: float | None = None
    margin: float = 40.0
    line_height: float | None = None
    line_spacing: float = 1.8
    align: str = "left"
    color: str = "black"
    stroke_width: float = 1.6
    background: str | None = None
    scale: float | None = None
    max_text_height: float = 40.0
    label_size: float = 12.0
    label_color: str = "#888888"
    digits: int = 2

    def __post_init__(self) -> None:
        if self.align not in _ALIGNS:
            raise GenseqError(f"align must be one of {', '.join(_ALIGNS)}, not {self.align!r}")
        if not all(np.isfinite(v) for v in (self.width, self.margin, self.height or 0.0)):
            raise GenseqError("page width, height and margin must be finite numbers")
        if not (self.width > 2 * self.margin >= 0):
            raise GenseqError(f"page width {self.width} leaves no room inside margins of {self.margin}")
        if self.height is not None and not self.height > 2 * self.margin:
            raise GenseqError(f"page height {self.height} leaves no room inside margins of {self.margin}")
        for name in ("scale", "line_height"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise GenseqError(f"{name} must be a positive number, not {v}")
        if not (self.stroke_width > 0 and self.max_text_height > 0 and self.line_spacing > 0):
            raise GenseqError("stroke_width, max_text_height and line_spacing must be positive")
        for name in ("color", "background", "label_color"):
            value = getattr(self, name)
            if value is not None and not _is_color(value):
                raise GenseqError(f"{name} {value!r} is not an SVG colour (a name like navy, #rgb, #rrggbb "
                                  "or rgb(r, g, b))")
        # Upper bounds keep every position on the page a finite number.
        for name, most in (("width", MAX_PX), ("height", MAX_PX), ("margin", MAX_PX), ("scale", MAX_PX),
                           ("line_height", MAX_PX), ("stroke_width", MAX_PX), ("max_text_height", MAX_PX),
                           ("label_size", MAX_PX), ("line_spacing", 1000.0)):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and abs(v) <= most):
                raise GenseqError(f"{name} must be at most {most:g}, not {v}")


@dataclass(frozen=True)
class Placement:
    """Where one line lands: data (x, y) -> page (x0 + scale * x, y0 - scale * y)."""

    line: int  # index into the input lines
    page: int
    scale: float
    x0: float
    y0: float
    label_y: float  # baseline of the label text
    label_x: float

    def to_page(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        with np.errstate(over="ignore"):  # absurd offsets: inf, which the path writer drops
            return np.stack([self.x0 + self.scale * xy[..., 0], self.y0 - self.scale * xy[..., 1]], axis=-1)


@dataclass(frozen=True)
class _Line:
    strokes: list[np.ndarray]
    lo: np.ndarray  # (2,) data bounding box
    hi: np.ndarray
    mid: float  # robust vertical centre (data units)
    text_height: float  # robust height (data units)


def _measure(points: np.ndarray | None) -> _Line | None:
    strokes = offsets_to_strokes(points)
    if not strokes:
        return None
    xy = np.concatenate(strokes)
    with np.errstate(over="ignore", invalid="ignore"):
        q5, q95 = np.percentile(xy[:, 1], [5, 95])
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        height = float(q95 - q5)
        mid = float(q5 / 2 + q95 / 2)
    return _Line(strokes, lo, hi, mid, height)


def _auto_scale(measured: list[_Line], options: PageOptions) -> float:
    if options.scale is not None:
        return float(options.scale)
    inner = options.width - 2 * options.margin
    with np.errstate(over="ignore", invalid="ignore"):
        widest = max(float(m.hi[0] - m.lo[0]) for m in measured)
        tallest = max(float(m.hi[1] - m.lo[1]) for m in measured)
    heights = [m.text_height for m in measured if np.isfinite(m.text_height) and m.text_height > 0]
    text = float(np.median(heights)) if heights else tallest
    candidates = []
    if np.isfinite(widest) and widest > 0:
        candidates.append(inner / widest)
    if np.isfinite(text) and text > 0:
        candidates.append(options.max_text_height / text)
    scale = min(candidates) if candidates else 1.0
    return scale if np.isfinite(scale) and scale > 0 else 1.0


def _check_lines_fit(measured: list, scale: float, label_room: float, options: PageOptions) -> None:
    """Refuse a page height that a line's ink (with its label) cannot fit in: it would be clipped."""
    with np.errstate(over="ignore", invalid="ignore"):
        inks = [scale * float(m.hi[1] - m.lo[1]) + label_room if m is not None else 0.0 for m in measured]
    inks = [h if np.isfinite(h) else 0.0 for h in inks]
    room = options.height - 2 * options.margin
    if inks and max(inks) > room:
        i = int(np.argmax(inks))
        raise GenseqError(f"line {i + 1} is {inks[i]:.0f} px tall, but a page height of {options.height:g} "
                          f"leaves {room:.0f} px inside the margins: give a page height of at least "
                          f"{math.ceil(inks[i] + 2 * options.margin)} or smaller margins")


def layout(lines: Sequence[np.ndarray | None], options: PageOptions = PageOptions(),
           labels: Sequence[str] | None = None) -> tuple[list[Placement], list[float], int]:
    """Place every non-empty line: (placements, page heights, page count).

    Rows stack downwards; empty lines (None, no rows, or nothing finite) take
    one line height of blank space. With `options.height`, a row that does not
    fit on the current page starts the next one; a line whose ink (and label)
    is taller than the room inside the margins is refused, not clipped.
    """
    measured = [_measure(p) for p in lines]
    present = [m for m in measured if m is not None]
    scale = _auto_scale(present, options) if present else 1.0
    heights = [m.text_height for m in present if np.isfinite(m.text_height) and m.text_height > 0]
    text_px = scale * float(np.median(heights)) if heights else options.max_text_height
    if not np.isfinite(text_px) or text_px <= 0:
        text_px = options.max_text_height
    pitch = options.line_height if options.line_height is not None else options.line_spacing * text_px
    label_room = 1.4 * options.label_size if labels is not None else 0.0
    inner = options.width - 2 * options.margin
    gap = 0.15 * pitch  # the least space between one line's ink and the next's

    if options.height is not None:
        _check_lines_fit(measured, scale, label_room, options)
    placements: list[Placement] = []
    page_heights: list[float] = []
    page, cursor = 0, options.margin  # cursor: top of the next row on this page
    page_started = False
    for i, m in enumerate(measured):
        if m is None:
            above = below = pitch / 2
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                above = max(pitch / 2, scale * float(m.hi[1] - m.mid) + gap / 2)
                below = max(pitch / 2, scale * float(m.mid - m.lo[1]) + gap / 2)
            if not np.isfinite(above + below):
                above = below = pitch / 2
        row = above + below + label_room
        if options.height is not None and page_started and cursor + row > options.height - options.margin:
            page_heights.append(options.height)
            page, cursor, page_started = page + 1, options.margin, False
        page_started = True
        centre = cursor + above
        if m is not None:
            width = scale * float(m.hi[0] - m.lo[0])
            free = inner - width if np.isfinite(width) else 0.0
            left = options.margin + {"left": 0.0, "center": free / 2, "right": free}[options.align]
            label_x = options.margin + {"left": 0.0, "center": inner / 2, "right": inner}[options.align]
            placements.append(Placement(
                line=i, page=page, scale=scale,
                x0=left - scale * float(m.lo[0]), y0=centre + scale * m.mid,
                label_y=centre + below + 0.9 * options.label_size, label_x=label_x,
            ))
        elif labels is not None:
            label_x = options.margin + {"left": 0.0, "center": inner / 2, "right": inner}[options.align]
            placements.append(Placement(i, page, scale, 0.0, 0.0, centre + below + 0.9 * options.label_size, label_x))
        cursor += row
    page_heights.append(options.height if options.height is not None else cursor + options.margin)
    return placements, page_heights, page + 1


@dataclass(frozen=True)
class Page:
    """One page of laid-out ink, shared by every SVG flavour.

    width, height: the page size in px, rounded as written in the SVG.
    lines: this page's placements in writing order, each with its strokes in
        page px (a list of (k, 2) arrays, possibly empty for a labelled blank).
    """

    width: float
    height: float
    lines: list[tuple[Placement, list[np.ndarray]]]


def paginate(lines: Sequence[np.ndarray | None], options: PageOptions = PageOptions(),
          labels: Sequence[str] | None = None) -> list[Page]:
    """Lay out `lines` (see `render_pages`) and group the ink by page.

    Raises GenseqError when `lines` itself is empty (there is nothing to lay
    out, which is almost always a caller's mistake) or labels do not match.
    """
    if len(lines) == 0:
        raise GenseqError("nothing to render: the list of lines is empty")
    if labels is not None and len(labels) != len(lines):
        raise GenseqError(f"got {len(labels)} labels for {len(lines)} lines")
    placements, page_heights, n_pages = layout(lines, options, labels)
    out = [Page(_n(options.width), _n(math.ceil(page_heights[i] * 100) / 100), []) for i in range(n_pages)]
    for p in placements:
        out[p.page].lines.append((p, [p.to_page(s) for s in offsets_to_strokes(lines[p.line])]))
    return out


def drawing(page: Page, background: str | None) -> svgwrite.Drawing:
    """An empty SVG document of the page's size (px, with a matching viewBox)."""
    dwg = svgwrite.Drawing(size=(page.width, page.height), profile="full", debug=False)
    dwg.viewbox(0, 0, page.width, page.height)
    if background is not None:
        dwg.add(dwg.rect((0, 0), (page.width, page.height), fill=background))
    return dwg


def ink_group(dwg: svgwrite.Drawing, options: PageOptions) -> svgwrite.container.Group:
    """The group every ink path goes in: the pen's colour and width, round ends."""
    return dwg.g(fill="none", stroke=options.color, stroke_width=options.stroke_width,
                 stroke_linecap="round", stroke_linejoin="round", class_="ink")


def label_group(dwg: svgwrite.Drawing, page: Page, options: PageOptions,
                labels: Sequence[str]) -> svgwrite.container.Group:
    """The transcriptions of the page's lines, small and grey under each line."""
    text = dwg.g(fill=options.label_color, font_size=options.label_size,
                 font_family="sans-serif", class_="labels",
                 text_anchor={"left": "start", "center": "middle", "right": "end"}[options.align])
    for p, _ in page.lines:
        shown = _xml_text(labels[p.line])
        if shown:
            text.add(dwg.text(shown, insert=(_n(p.label_x), _n(p.label_y))))
    return text


# Characters XML 1.0 forbids in a document (a stroke file from elsewhere may hold them in a
# transcription): C0 controls but tab, newline and return, surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(s: str) -> str:
    """A label with the characters an SVG may not hold left out."""
    return _NOT_XML.sub("", s)


def render_pages(lines: Sequence[np.ndarray | None], options: PageOptions = PageOptions(),
                 labels: Sequence[str] | None = None) -> list[str]:
    """One SVG document (a string) per page of handwriting.

    `lines` are (N, 3) offset arrays (see genseq.render.smooth); a line may be
    None or empty, which leaves a blank line (a paragraph break). Lines whose
    points are all NaN/inf also render blank, so a diverged model still gives
    a valid picture. `labels`, when given, must have one string per line and
    are printed small under each line.

    Raises GenseqError when `lines` itself is empty (there is nothing to lay
    out, which is almost always a caller's mistake) or labels do not match.
    """
    docs = []
    for page in paginate(lines, options, labels):
        dwg = drawing(page, options.background)
        ink = ink_group(dwg, options)
        for _, strokes in page.lines:
            d = "".join(smooth_path(s, options.digits) for s in strokes)  # one path per line
            if d:
                ink.add(dwg.path(d=d))
        dwg.add(ink)
        if labels is not None:
            dwg.add(label_group(dwg, page, options, labels))
        docs.append(dwg.tostring())
    return docs


def _n(v: float) -> float:
    return round(float(v), 2)


def stale_pages(path: str | os.PathLike, written: list[Path]) -> list[Path]:
    """Pages of an earlier, longer save to `path` that this one (`written`) did not
    replace: stem-(n+1).suffix and on while they exist (stem-1... when one page was written)."""
    path = Path(path)
    suffix = path.suffix or ".svg"
    first = len(written) + 1 if len(written) > 1 else 1
    out = []
    while (p := path.with_name(f"{path.stem}-{first + len(out)}{suffix}")).is_file():
        out.append(p)
    return out


def save_pages(pages: Sequence[str | bytes], path: str | os.PathLike) -> list[Path]:
    """Write pages atomically: one page to `path`, several to stem-1.svg, stem-2.svg, ...
    (the suffix is the path's own; .svg if it has none). Pages are text (SVG)
    or bytes (PNG). An existing name that is not a regular file is refused
    before any page is written; a symlink's target is replaced (genseq.atomic)."""
    path = Path(path)
    if len(pages) == 0:
        raise GenseqError("no pages to save")
    if len(pages) == 1:
        targets = [path]
    else:
        suffix = path.suffix or ".svg"
        targets = [path.with_name(f"{path.stem}-{i}{suffix}") for i in range(1, len(pages) + 1)]
    for target in targets:  # a device, FIFO or folder among the names: refused before any page is written
        output_target(target)
    # All pages or none: each is written and synced to its temporary file
    # first; the renames over the targets happen only once every page is on disk.
    with contextlib.ExitStack() as stack:
        for target, doc in zip(targets, pages):
            tmp = stack.enter_context(atomic_path(target))
            with open(tmp, "wb") as fh:
                fh.write(doc if isinstance(doc, bytes) else doc.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
    return targets
