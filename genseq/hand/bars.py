"""A shape check beside the reader: does each capital E have its top bar, and is
each t crossed to the right of its stem?

The synthesis network often draws a capital E as its stem and bottom bar in
one stroke, then the middle bar, and leaves the top bar out: what remains is
a `t` (a stem, a bar across it and a foot). It also crosses many a t only on
the left of its stem, or not at all, and the t reads as an `l`. The reader,
which reads the pen's path, still reads both as written. Of 184 first-drawn
E's (8 lines, seeds 1-8, `-k 1`), 65 had no top bar by the rule below, and
of 221 t's (the 60 everyday lines, seeds 1-3), 46 no bar right of the stem;
of 20 such E's among lines chosen without the check, 17 had, seen by eye, no
top bar or only a tick (docs/writing.md). Where a bar is drawn, it is drawn
before the word ends (all but 2 of the 221 t's), so a word can be checked as
soon as it is written.

For each E and t, the stem is the tallest steep run (|dx| < STEEP |dy|) of
the strokes drawn while the attention window was mostly on it (the median
of their most attended positions); its bar is the line's near-horizontal ink
(|dy| < |dx|, any stroke: a bar is often a stroke of its own, drawn once the
window has moved on) within the character's band of heights and reach
(BARS), and the bar's arm how far right of the stem it reaches, over the
stem's height. An arm shorter than the character's `least` is a missing
bar. No torch here.
"""
from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from .lines import attended, stroke_bounds
from .shape import shared_prefix


class Bar(NamedTuple):
    """Where a character's bar must reach, in shares of its stem's height h."""

    band: tuple[float, float]  # the bar's height: from band[0] h to band[1] h above the stem's foot
    side: tuple[float, float]  # ink searched from side[0] h left of the stem to side[1] h right of it
    least: float  # the bar reaches at least this far right of the stem, or it is missing


# The top bar of an E; the bar of a t, which must cross to the right of its stem.
BARS = {"E": Bar((0.75, 1.25), (0.15, 0.9), 0.3), "t": Bar((0.2, 0.75), (0.45, 0.45), 0.08)}
BARRED = "Et"  # the characters checked
STEEP = 0.6  # a stem segment moves sideways under this share of its drop
LOOKBACK = 120  # points before the candidates parted still searched for a character's strokes (about 10
                # characters of the bundled ink; an E or t takes far fewer)


def _stem(xy: np.ndarray, strokes: list[tuple[int, int]]) -> tuple[float, float, float] | None:
    """(height, x, foot y) of the tallest steep run of pen positions xy (N, 2) in the
    given strokes (first and last point), or None."""
    best = None
    for s, e in strokes:
        d = np.diff(xy[s : e + 1], axis=0)  # (n, 2)
        steep = np.abs(d[:, 0]) < STEEP * np.abs(d[:, 1])
        # runs of steep segments: [i, j) in segment indices
        edges = np.flatnonzero(np.diff(np.concatenate([[0], steep.astype(int), [0]])))
        for i, j in zip(edges[::2], edges[1::2]):
            run = xy[s + i : s + j + 1]
            h = float(np.ptp(run[:, 1]))
            if h > 0 and (best is None or h > best[0]):
                best = (h, float(np.median(run[:, 0])), float(run[:, 1].min()))
    return best


def bar_arms(points: np.ndarray, phi: np.ndarray, text: str, norm, since: int = 0) -> dict[int, float]:
    """{index j of each BARRED character of `text` drawn (at least in part) from point
    `since` on: how far right of its stem its bar reaches (share of the stem's height;
    nan when no stem is found)}.

    points (N, 3) offsets (dx, dy, pen-up), normalised by norm = (mean, std), y up;
    phi (N, len(text)) the window over the text's characters."""
    out: dict[int, float] = {}
    want = [j for j, c in enumerate(text) if c in BARRED]
    if not want or len(points) < 2 or phi is None or len(phi) != len(points):
        return out
    mean, std = (np.asarray(v, np.float64) for v in norm)
    p = np.asarray(points, np.float64)
    xy = np.cumsum(p[:, :2] * std + mean, axis=0)  # (N, 2) pen positions
    down = p[:-1, 2] < 0.5  # (N-1,) segment i joins points i and i + 1
    d = np.diff(xy, axis=0)
    flat = down & (np.abs(d[:, 1]) < np.abs(d[:, 0]))  # near-horizontal pen-down segments
    ends = np.concatenate([xy[:-1][flat], xy[1:][flat]])  # (M, 2)
    first, last = stroke_bounds(p)  # (S,), (S,)
    recent = last >= since - LOOKBACK  # the strokes of a character drawn in part since `since` (bounded time)
    top = attended(phi)
    strokes = [(int(s), int(e), int(np.median(top[s : e + 1]))) for s, e in zip(first[recent], last[recent])]
    for j in want:
        mine = [(s, e) for s, e, o in strokes if o == j]
        if not mine or mine[-1][1] < since:
            continue
        stem = _stem(xy, mine)
        if stem is None:
            out[j] = float("nan")
            continue
        h, x, foot = stem
        bar = BARS[text[j]]
        inside = ((ends[:, 1] >= foot + bar.band[0] * h) & (ends[:, 1] <= foot + bar.band[1] * h)
                  & (ends[:, 0] >= x - bar.side[0] * h) & (ends[:, 0] <= x + bar.side[1] * h))
        out[j] = float(max(0.0, ends[inside, 0].max() - x) / h) if inside.any() else 0.0
    return out


def missing_bars(points: np.ndarray, phi: np.ndarray, text: str, norm, since: int = 0) -> int:
    """How many BARRED characters drawn from point `since` on lack their bar."""
    arms = bar_arms(points, phi, text, norm, since)
    return sum(1 for j, a in arms.items() if a < BARS[text[j]].least)


def bar_penalty(points: list[np.ndarray], phis: list, texts: list[str], norm, nats: float) -> np.ndarray:
    """(R,) <= 0: -nats per E or t drawn since the candidates of a group (runs of
    equal texts) parted that lacks its bar, beyond the fewest such in the group;
    0 for texts without an E or t and for rows without φ."""
    out = np.zeros(len(texts))
    for text, run in itertools.groupby(range(len(texts)), key=texts.__getitem__):
        rows = list(run)
        if len(rows) < 2 or not set(BARRED) & set(text) or any(phis[r] is None for r in rows):
            continue
        k = max(shared_prefix([points[r] for r in rows]) - 1, 0)
        if k > 0 and not set(BARRED) & set(text.split()[-1]):
            continue  # candidates that parted where their newest word began answer for its own only
        got = np.array([missing_bars(points[r], phis[r], text, norm, k) for r in rows])
        out[rows] = -nats * (got - got.min())
    return out
