"""Handwriting pages that draw themselves: SVG with a pure CSS animation.

No script: every stroke is its own <path pathLength="1">, hidden by a dash
pattern (stroke-dasharray 1, stroke-dashoffset 1) and revealed by one shared
@keyframes rule that runs the offset to 0. Each path carries its own
animation-delay and animation-duration inline, so the strokes appear one after
another at the pen's recorded pace. Viewers who ask for reduced motion get the
finished page at once. No torch here (STYLE.md rule 9).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import GenseqError
from .smooth import smooth_path
from .svg import PageOptions, drawing, ink_group, label_group, paginate

# One offset row is one time step of the pen. The model writes about 11.3
# points per character and people write about 4-5 characters per second, so
# about 50 points per second reads as real writing.
POINTS_PER_SECOND = 50.0
LINE_PAUSE = 0.4  # seconds between the end of one line and the start of the next (at speed 1)
MAX_SPEED = 100.0
MIN_DURATION = 0.001  # s: the shortest time written, so a dot at a high speed never gets 0s

_STYLE = """\
path{stroke-dasharray:1;stroke-dashoffset:1;animation-name:genseq-draw;\
animation-timing-function:linear;animation-fill-mode:both}
@keyframes genseq-draw{to{stroke-dashoffset:0}}
@media (prefers-reduced-motion: reduce){path{animation:none;stroke-dasharray:none;stroke-dashoffset:0}}"""


def stroke_times(lines: Sequence[Sequence[np.ndarray]], speed: float = 1.0,
                 points_per_second: float = POINTS_PER_SECOND) -> list[list[tuple[float, float]]]:
    """(delay, duration) in seconds of every stroke of a page's lines.

    `lines` holds each line's strokes ((k, 2) arrays) in writing order. A
    stroke of k points takes k samples to draw; the pen lift before the next
    stroke takes one more (the offset row that jumps); a line follows the
    previous one after LINE_PAUSE. Everything is divided by `speed`.
    """
    step = 1.0 / points_per_second
    out, t, inked = [], 0.0, False
    for strokes in lines:
        if inked and len(strokes):
            t += LINE_PAUSE - step  # the last stroke's lift sample is part of the pause
        times = []
        for s in strokes:
            times.append((t / speed, max(len(s) * step / speed, MIN_DURATION)))
            t += (len(s) + 1) * step
        inked = inked or bool(len(strokes))
        out.append(times)
    return out


def _number(name: str, value, most: float) -> float:
    """`value` as a float above 0 and at most `most`, else GenseqError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(value, bool) or not (math.isfinite(v) and 0 < v <= most):
        bound = f" and at most {most:g}" if math.isfinite(most) else ""
        raise GenseqError(f"{name} must be a number above 0{bound}, not {value!r}")
    return v


def _seconds(t: float) -> str:
    return (f"{t:.3f}".rstrip("0").rstrip(".") or "0") + "s"


def render_animated(lines: Sequence[np.ndarray | None], options: PageOptions = PageOptions(),
                    labels: Sequence[str] | None = None, speed: float = 1.0,
                    points_per_second: float = POINTS_PER_SECOND) -> list[str]:
    """One self-drawing SVG document per page, laid out as `render_pages` does.

    Each page's clock starts at 0 when it is opened. `speed` > 1 writes
    faster (at most MAX_SPEED); labels, when given, are shown from the start.
    Raises GenseqError for a bad speed or rate, and as `render_pages` does.
    """
    speed = _number("speed", speed, MAX_SPEED)
    points_per_second = _number("points_per_second", points_per_second, math.inf)
    docs = []
    for page in paginate(lines, options, labels):
        dwg = drawing(page, options.background)
        dwg.add(dwg.style(_STYLE))
        ink = ink_group(dwg, options)
        times = stroke_times([strokes for _, strokes in page.lines], speed, points_per_second)
        for (_, strokes), line_times in zip(page.lines, times):
            for stroke, (delay, duration) in zip(strokes, line_times):
                d = smooth_path(stroke, options.digits)
                if d:  # a stroke that overflowed the page has no path, but keeps its time
                    path = dwg.path(d=d)
                    path.attribs["pathLength"] = 1
                    path.attribs["style"] = (f"animation-delay:{_seconds(delay)};"
                                             f"animation-duration:{_seconds(duration)}")
                    ink.add(path)
        dwg.add(ink)
        if labels is not None:
            dwg.add(label_group(dwg, page, options, labels))
        docs.append(dwg.tostring())
    return docs
