"""Small dependency-free SVG charts: training curves and the attention window.

svgwrite only (no matplotlib, no torch). Both functions write atomically and
return the SVG text as well.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
import svgwrite

from ..atomic import write_text
from ..errors import GenseqError

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round numbers (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], first
    while t <= hi + step * 1e-9:
        ticks.append(0.0 if abs(t) < step * 1e-9 else t)
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.2g}"
    return f"{v:.6g}"


def _series(records: Sequence[dict], key: str, x: str) -> np.ndarray:
    """(n, 2) finite (x, value) pairs of one metric; records without it are skipped."""
    pts = []
    for i, r in enumerate(records):
        if not isinstance(r, dict) or key not in r:
            continue
        try:
            xv = float(r.get(x, i))
            yv = float(r[key])
        except (TypeError, ValueError):
            continue
        if math.isfinite(xv) and math.isfinite(yv):
            pts.append((xv, yv))
    return np.array(pts, dtype=np.float64).reshape(-1, 2)


def loss_curve_svg(records: Sequence[dict], path: str | os.PathLike | None,
                   keys: Sequence[str] = ("train_loss", "val_loss"), x: str = "step",
                   title: str = "", width: int = 640, height: int = 360) -> str:
    """A line chart of metrics against `x` (records missing a key are skipped
    for that key; non-finite values are skipped; a record without `x` uses
    its index). Writes to `path` (atomically) unless it is None; returns the
    SVG. With no data at all it still draws empty axes saying "no data"."""
    series = {k: _series(records, k, x) for k in keys}
    series = {k: v for k, v in series.items() if len(v)}
    left, right, top, bottom = 64, 16, 28 if title else 14, 40
    pw, ph = width - left - right, height - top - bottom
    dwg = svgwrite.Drawing(size=(width, height), profile="full", debug=False)
    dwg.viewbox(0, 0, width, height)
    dwg.add(dwg.rect((0, 0), (width, height), fill="white"))
    font = dict(font_family="sans-serif", font_size=11, fill="#333333")
    if title:
        dwg.add(dwg.text(title, insert=(width / 2, 18), text_anchor="middle", font_weight="bold", **font))
    dwg.add(dwg.rect((left, top), (pw, ph), fill="none", stroke="#999999"))
    if not series:
        dwg.add(dwg.text("no data", insert=(left + pw / 2, top + ph / 2), text_anchor="middle", **font))
    else:
        allp = np.concatenate(list(series.values()))
        x0, x1 = float(allp[:, 0].min()), float(allp[:, 0].max())
        y0, y1 = float(allp[:, 1].min()), float(allp[:, 1].max())
        if x1 <= x0:
            x0, x1 = x0 - 1, x1 + 1
        pad = (y1 - y0) * 0.05 if y1 > y0 else max(abs(y0) * 0.1, 1.0)
        y0, y1 = y0 - pad, y1 + pad
        sx = lambda v: left + (v - x0) / (x1 - x0) * pw  # noqa: E731
        sy = lambda v: top + ph - (v - y0) / (y1 - y0) * ph  # noqa: E731
        for t in nice_ticks(x0, x1, 6):
            dwg.add(dwg.line((sx(t), top + ph), (sx(t), top + ph + 4), stroke="#999999"))
            dwg.add(dwg.text(_fmt(t), insert=(sx(t), top + ph + 16), text_anchor="middle", **font))
        for t in nice_ticks(y0, y1, 5):
            dwg.add(dwg.line((left, sy(t)), (left + pw, sy(t)), stroke="#eeeeee"))
            dwg.add(dwg.text(_fmt(t), insert=(left - 6, sy(t) + 4), text_anchor="end", **font))
        for i, (k, pts) in enumerate(series.items()):
            colour = PALETTE[i % len(PALETTE)]
            xy = [(round(sx(a), 2), round(sy(b), 2)) for a, b in pts]
            if len(xy) == 1:
                dwg.add(dwg.circle(xy[0], r=2.5, fill=colour))
            else:
                dwg.add(dwg.polyline(xy, fill="none", stroke=colour, stroke_width=1.5,
                                     stroke_linejoin="round"))
            ly = top + 14 + 15 * i  # legend, top right inside the plot
            dwg.add(dwg.line((left + pw - 110, ly - 4), (left + pw - 90, ly - 4), stroke=colour, stroke_width=2))
            dwg.add(dwg.text(k, insert=(left + pw - 86, ly), **font))
    dwg.add(dwg.text(x, insert=(left + pw / 2, height - 6), text_anchor="middle", **font))
    doc = dwg.tostring()
    if path is not None:
        write_text(path, doc)
    return doc


def heatmap_svg(matrix: np.ndarray, path: str | os.PathLike | None, x_labels: str = "",
                title: str = "attention window", cell: float | None = None) -> str:
    """The attention window as a heat map: matrix (T, U), time T down the
    rows, characters U across the columns (labelled with `x_labels`, one
    character per column, when its length is U). Values are shown relative to
    the matrix's finite maximum (white = 0, dark = max). Writes to `path`
    unless None; returns the SVG."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        raise GenseqError(f"heat map needs a non-empty (T, U) matrix, got shape {m.shape}")
    T, U = m.shape
    m = np.where(np.isfinite(m), m, 0.0)
    top_v = float(m.max())
    norm = m / top_v if top_v > 0 else np.zeros_like(m)
    norm = np.clip(norm, 0.0, 1.0)
    k = max(1, math.ceil(T / 480))  # long sequences: one row per k time steps (their max)
    if k > 1:
        pad = (-T) % k
        norm = np.concatenate([norm, np.zeros((pad, U))]).reshape(-1, k, U).max(axis=1)
    cw = cell or max(6.0, min(24.0, 720.0 / U))  # column width
    rh = min(cw, 480.0 / norm.shape[0])  # row height
    R = norm.shape[0]  # rows drawn
    left, top, bottom = 48, 30 if title else 10, 26
    width, height = left + U * cw + 10, top + R * rh + bottom
    dwg = svgwrite.Drawing(size=(round(width, 2), round(height, 2)), profile="full", debug=False)
    dwg.viewbox(0, 0, round(width, 2), round(height, 2))
    dwg.add(dwg.rect((0, 0), (width, height), fill="white"))
    font = dict(font_family="sans-serif", font_size=11, fill="#333333")
    if title:
        dwg.add(dwg.text(title, insert=(width / 2, 18), text_anchor="middle", font_weight="bold", **font))
    cells = dwg.g(shape_rendering="crispEdges")
    for t in range(R):
        for u in range(U):
            v = norm[t, u]
            if v < 0.01:
                continue  # the white background already shows it
            shade = int(round(255 * (1 - v)))
            cells.add(dwg.rect((round(left + u * cw, 2), round(top + t * rh, 2)),
                               (round(cw, 2) , round(rh, 2)), fill=f"rgb({shade},{shade},255)"))
    dwg.add(cells)
    dwg.add(dwg.rect((left, top), (U * cw, R * rh), fill="none", stroke="#999999"))
    if len(x_labels) == U:
        for u, ch in enumerate(x_labels):
            dwg.add(dwg.text(ch if ch != " " else "\u2423", insert=(left + (u + 0.5) * cw, top + R * rh + 14),
                             text_anchor="middle", **{**font, "font_family": "monospace"}))
    for t in nice_ticks(0, T - 1, 5):
        dwg.add(dwg.text(_fmt(t), insert=(left - 6, top + (t / k + 0.5) * rh + 4), text_anchor="end", **font))
    dwg.add(dwg.text("t", insert=(12, top + R * rh / 2), **font))
    doc = dwg.tostring()
    if path is not None:
        write_text(path, doc)
    return doc
