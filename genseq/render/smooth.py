"""Pen offsets to strokes, and strokes to smooth SVG path data.

No torch here (STYLE.md rule 9): everything is numpy and strings.

Point convention (whole project): a handwriting sequence is a float array
(N, 3) of rows (dx, dy, pen_up); (dx, dy) = p_i - p_{i-1}, row 0 is the offset
from the origin, y grows upwards, and pen_up = 1 marks the last point of a
stroke (the pen lifts after it).
"""
from __future__ import annotations

import numpy as np

# A dot (a stroke of one point) is drawn as a segment this short, in the path's
# own units, so that the round line cap paints a disc of the stroke's width in
# every renderer (zero-length subpaths are dropped by some of them).
DOT_LENGTH = 0.01


def offsets_to_strokes(points: np.ndarray) -> list[np.ndarray]:
    """Absolute coordinates of each stroke: a list of (k, 2) float arrays.

    Rows whose dx or dy is NaN or infinite are dropped before the cumulative
    sum (so they do not poison every later point); if such a row had its pen
    up, the lift is kept (the stroke ends at the previous point). Points whose
    running sum overflows to infinity are dropped too. Empty strokes are never
    returned; `None` or an empty array gives [].
    """
    if points is None:
        return []
    arr = np.asarray(points, dtype=np.float64)
    if arr.size == 0:
        return []
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise ValueError(f"expected an (N, 3) array of (dx, dy, pen_up), got shape {arr.shape}")
    dxy, pen = arr[:, :2], arr[:, 2]
    finite = np.isfinite(dxy).all(axis=1)
    lift = np.nan_to_num(pen, nan=0.0, posinf=1.0, neginf=0.0) > 0.5
    if not finite.all():
        # Move the pen lift of a dropped row onto the last kept row before it.
        kept_before = np.maximum.accumulate(np.where(finite, np.arange(len(arr)), -1))
        moved = lift & ~finite & (kept_before >= 0)
        lift = lift & finite
        lift[kept_before[moved]] = True
        dxy, lift = dxy[finite], lift[finite]
    if len(dxy) == 0:
        return []
    with np.errstate(over="ignore", invalid="ignore"):
        xy = np.cumsum(dxy, axis=0)
    # Split after every pen-up row: stroke ids count the lifts before each row.
    stroke_id = np.concatenate([[0], np.cumsum(lift[:-1])])
    ok = np.isfinite(xy).all(axis=1)
    strokes = []
    bounds = np.flatnonzero(np.diff(stroke_id)) + 1
    for xs, oks in zip(np.split(xy, bounds), np.split(ok, bounds)):
        xs = xs[oks]
        if len(xs):
            strokes.append(xs)
    return strokes


def _dedupe(stroke: np.ndarray) -> np.ndarray:
    """Drop consecutive repeated points (zero-length segments break the spline)."""
    if len(stroke) < 2:
        return stroke
    keep = np.concatenate([[True], (np.diff(stroke, axis=0) != 0).any(axis=1)])
    return stroke[keep]


def _num(v: float, digits: int) -> str:
    s = f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "", "-") else s


def bezier_controls(stroke: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cubic Bézier control points of a centripetal Catmull-Rom spline.

    For k >= 2 distinct points returns (c1, c2), each (k-1, 2): segment i goes
    from stroke[i] to stroke[i+1] with controls c1[i], c2[i]. Centripetal
    parametrisation (alpha = 1/2) never makes cusps or loops inside a segment,
    unlike the uniform one, which matters for unevenly spaced pen samples.
    The ends use a mirrored phantom point, so the curve leaves straight.
    """
    p = np.asarray(stroke, dtype=np.float64)
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    p0, p1, p2, p3 = ext[:-3], ext[1:-2], ext[2:-1], ext[3:]
    # d_i = |segment|^alpha with alpha = 1/2; d_i^2 is the segment length.
    # hypot, not a norm of squares: no overflow for huge (absurd) coordinates.
    l1, l2, l3 = (np.hypot(*(b - a).T)[:, None] for a, b in ((p0, p1), (p1, p2), (p2, p3)))
    l1, l2, l3 = (np.maximum(v, 1e-12) for v in (l1, l2, l3))
    d1, d2, d3 = np.sqrt(l1), np.sqrt(l2), np.sqrt(l3)
    with np.errstate(over="ignore", invalid="ignore"):
        c1 = (l1 * p2 - l2 * p0 + (2 * l1 + 3 * d1 * d2 + l2) * p1) / (3 * d1 * (d1 + d2))
        c2 = (l3 * p1 - l2 * p3 + (2 * l3 + 3 * d3 * d2 + l2) * p2) / (3 * d3 * (d3 + d2))
    # Overflow on absurd inputs: fall back to straight segments.
    bad = ~(np.isfinite(c1).all(axis=1) & np.isfinite(c2).all(axis=1))
    c1[bad], c2[bad] = p1[bad], p2[bad]
    return c1, c2


def smooth_path(stroke: np.ndarray, digits: int = 2) -> str:
    """SVG path data for one stroke, as smooth cubic Bézier curves.

    `stroke` is (k, 2) in the path's own coordinates (no flipping here).
    One distinct point gives a dot (a tiny segment drawn with a round cap),
    two give a straight line, more give a centripetal Catmull-Rom spline
    through every point. Non-finite points are dropped; an empty stroke
    gives "". Numbers are written with `digits` decimals.
    """
    p = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
    p = _dedupe(p[np.isfinite(p).all(axis=1)])
    if len(p) == 0:
        return ""
    f = lambda v: _num(v, digits)  # noqa: E731
    x0, y0 = p[0]
    if len(p) == 1:
        return f"M{f(x0)} {f(y0)}h{_num(DOT_LENGTH, max(digits, 2))}"
    if len(p) == 2:
        return f"M{f(x0)} {f(y0)}L{f(p[1, 0])} {f(p[1, 1])}"
    c1, c2 = bezier_controls(p)
    parts = [f"M{f(x0)} {f(y0)}C"]
    segs = np.concatenate([c1, c2, p[1:]], axis=1)
    parts.append(" ".join(" ".join(f(v) for v in row) for row in segs))
    return "".join(parts)


MAX_PIECES = 1000  # most pieces one Bézier segment is cut into by `bezier_polyline`


def bezier_polyline(stroke: np.ndarray, max_step: float) -> np.ndarray:
    """The curve `smooth_path` draws for `stroke`, as a (n, 2) polyline.

    Each cubic segment of `bezier_controls` is cut at even steps of its
    parameter into enough pieces (at most MAX_PIECES) that none is longer
    than `max_step`: the curve's speed is at most 3 times its control
    polygon's longest leg. Every input point is kept exactly. As in
    `smooth_path`, non-finite and repeated points are dropped, one point
    becomes a segment DOT_LENGTH long (plotter software skips a lone point)
    and two stay a straight line; an empty stroke gives (0, 2).
    """
    if not max_step > 0:
        raise ValueError(f"max_step must be positive, not {max_step}")
    p = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
    p = _dedupe(p[np.isfinite(p).all(axis=1)])
    if len(p) == 1:
        return np.concatenate([p, p + [DOT_LENGTH, 0.0]])
    if len(p) <= 2:
        return p
    c1, c2 = bezier_controls(p)
    p0, p3 = p[:-1], p[1:]
    with np.errstate(over="ignore", invalid="ignore"):
        leg = np.max([np.hypot(*(b - a).T) for a, b in ((p0, c1), (c1, c2), (c2, p3))], axis=0)
        n = np.ceil(np.nan_to_num(3 * leg / max_step, nan=1.0, posinf=MAX_PIECES))
    n = np.clip(n, 1, MAX_PIECES).astype(np.int64)  # (k-1,) pieces per segment
    seg = np.repeat(np.arange(len(n)), n)
    t = ((np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 1) / np.repeat(n, n))[:, None]
    s = 1.0 - t  # t = 1 ends each segment exactly on its input point
    with np.errstate(over="ignore", invalid="ignore"):
        pts = s**3 * p0[seg] + 3 * s * s * t * c1[seg] + 3 * s * t * t * c2[seg] + t**3 * p3[seg]
    pts = np.concatenate([p[:1], pts])
    return pts[np.isfinite(pts).all(axis=1)]  # absurd coordinates can overflow between kept points
