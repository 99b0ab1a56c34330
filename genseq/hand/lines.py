"""Whether a written line is done and sound, from its attention window φ and
its points alone (numpy): the per-line checks that sampling (sample.py) and
the word-by-word choice among candidates (words.py) share.

φ is (T, U) for a line of U characters written in T points (Graves 2013 eq.
46); a line is "ok" when every character got the window in turn, once, and
the window moved past the end.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

DOT_EXTENT = 0.3  # a period's stroke spans under this fraction of the line's median stroke, a letter's over it


def attended(phi: np.ndarray) -> np.ndarray:
    """Most attended position per step, (N,) int; a step where φ is zero everywhere
    (the window between characters, every Gaussian's weight floored to exactly 0,
    see recurrent.window_exp) keeps the previous step's position."""
    live = phi.max(1) > 0
    if not live.any():
        return np.zeros(len(phi), int)
    # Index of the last live step at or before each step (steps before any live one use the first).
    last = np.maximum.accumulate(np.where(live, np.arange(len(phi)), -1))
    return phi.argmax(1)[np.where(last >= 0, last, np.argmax(live))]


def extra_dots(points: np.ndarray, top: np.ndarray, text: str, P: int) -> np.ndarray:
    """Points (N,) bool of the extra dots after each '.' of `text`, to drop.

    The window often stays on a '.' (and on the space after it) for a few more
    points, and the network then puts a second dot. For each '.', of the
    dot-sized strokes begun while the window is on it (or on the space or end
    just after it, or a closing bracket just before it), one is the period;
    the others are extra (`_extra_periods`). After '!' and '?' followed by a
    space or the end, dot-sized strokes clearly to the right of the mark (its
    bar or hook and its own dot) are extra (`_stray_dots`). points (N, 3)
    normalised (y up); top (N,) the most attended position per step (the text
    starts at position P). A stroke's size is the width plus the height of its
    pen-down path, against the median over the line's strokes.
    """
    drop = np.zeros(len(points), dtype=bool)
    if not set(".!?") & set(text) or len(points) == 0:
        return drop
    strokes = stroke_spans(points)
    scale = np.median(strokes.size)
    dot = strokes.size < DOT_EXTENT * scale  # (S,)
    begun_on = top[strokes.starts]  # (S,) the attended position at each stroke's first point
    for j, ch in _lone_marks(text):
        ends = j + 1 == len(text) or text[j + 1] == " "  # nothing but a space or the end after it
        here = np.flatnonzero(dot & np.isin(begun_on, _mark_positions(text, j, P, ends)))
        if len(here) < 2:
            continue
        if ch == ".":
            extra = _extra_periods(strokes, here, scale, ends)
        else:
            extra = _stray_dots(strokes, here, np.flatnonzero(~dot & (begun_on == P + j)), scale, ends)
        for k in extra:
            drop[strokes.starts[k] : strokes.ends[k] + 1] = True
    return drop


def dotless_end(points: np.ndarray, phi: np.ndarray, text: str) -> bool:
    """Whether a line that ends in '!' or '?' drew that mark without its dot: of the
    strokes begun while the window was on it (points (N, 3), phi (N, len(text))),
    one or more are its bar or hook and none is dot-sized (DOT_EXTENT)."""
    if not text or text[-1] not in "!?" or len(points) == 0:
        return False
    strokes = stroke_spans(points)
    on = attended(phi)[strokes.starts] == len(text) - 1  # (S,) begun on the mark
    dot = strokes.size < DOT_EXTENT * np.median(strokes.size)  # (S,)
    return bool((on & ~dot).any() and not (on & dot).any())


class StrokeSpans(NamedTuple):
    """A line's S strokes: stroke k is points starts[k] .. ends[k]."""

    starts: np.ndarray  # (S,) first point
    ends: np.ndarray  # (S,) last point: a pen lift, or the line's last point
    size: np.ndarray  # (S,) width + height of its pen-down path
    centre: np.ndarray  # (S, 2) mean pen position (x, y)


def stroke_bounds(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first points (S,), last points (S,)) of the strokes of points (N, 3) offsets,
    pen-up 1 on a stroke's last point; the points after the last lift are a stroke
    too (the line's end closes it)."""
    ends = np.union1d(np.flatnonzero(points[:, 2] > 0.5), [len(points) - 1])
    return np.concatenate(([0], ends[:-1] + 1)), ends


def stroke_spans(points: np.ndarray) -> StrokeSpans:
    """The strokes of points (N, 3) offsets, with their sizes and centres."""
    starts, ends = stroke_bounds(points)
    xy = np.cumsum(points[:, :2], 0)  # pen positions
    size = np.array([np.ptp(xy[s : e + 1], 0).sum() for s, e in zip(starts, ends)])
    centre = np.array([xy[s : e + 1].mean(0) for s, e in zip(starts, ends)])
    return StrokeSpans(starts, ends, size, centre)


def _lone_marks(text: str):
    """(index, mark) of each '.', '!' and '?' not in "...", "!!", "?!": the window may
    lag inside such a run, and dots begun on one mark belong to the next."""
    for j, ch in enumerate(text):
        if ch in ".!?" and not set(".!?") & set(text[j - 1 : j] + text[j + 1 : j + 2]):
            yield j, ch


def _mark_positions(text: str, j: int, P: int, ends: bool) -> list[int]:
    """Window positions on which the dots of the mark text[j] are begun: the mark, the
    space or end after it (when `ends`), and a closing bracket before it (the window
    may still be there; a bracket has no dots of its own)."""
    after = [P + j + 1] if ends else []
    before = [P + j - 1] if text[j - 1 : j] in (")", "]") else []
    return [P + j] + after + before


def _extra_periods(strokes: StrokeSpans, here: np.ndarray, scale: float, ends: bool) -> np.ndarray:
    """Of the dot-sized strokes `here` (indices, two or more) begun on a '.', the extra ones.

    The period: of the dots at the lowest dots' height, the rightmost of the
    roundest (under a third of DOT_EXTENT: a second mark is often a short
    dash, and a first dot sometimes a blip at the end of the last letter).
    The others at that height go, and higher ones to its right if nothing but
    a space follows (higher ones to its left are an i's dot or a t's cross
    put in late)."""
    x, y = strokes.centre[here, 0], strokes.centre[here, 1]
    low = y - y.min() < DOT_EXTENT * scale
    pool = here[low]
    roundest = strokes.size[pool] < DOT_EXTENT / 3 * scale
    if roundest.any():
        pool = pool[roundest]
    period = pool[np.argmax(strokes.centre[pool, 0])]
    right = x > strokes.centre[period, 0]
    return here[(low | (right & ends)) & (here != period)]


def _stray_dots(strokes: StrokeSpans, here: np.ndarray, body: np.ndarray, scale: float, ends: bool) -> np.ndarray:
    """Of the dot-sized strokes `here` begun on a '!' or '?', the stray ones: those
    clearly right of the mark, when nothing but a space follows.

    The mark is its bar or hook (`body`: the strokes begun on it that are not
    dot-sized) and its own dot, the dot nearest under it; without a bar or
    hook to go by (a dot-sized one), nothing is dropped."""
    if not ends or len(body) == 0:
        return here[:0]
    x = strokes.centre[here, 0]
    bar_x = strokes.centre[body, 0].max()
    own = here[np.argmin(np.abs(x - bar_x))]
    right_edge = max(bar_x, strokes.centre[own, 0]) + DOT_EXTENT * scale
    return here[x > right_edge]


def without(points: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """points (N, 3) without the rows in drop; the next kept point carries their
    offsets, so every later stroke stays where it was."""
    keep = ~drop
    out = points[keep].copy()
    if drop.any():
        dropped = np.cumsum(np.where(drop[:, None], points[:, :2], 0.0), 0)  # (N, 2) float64
        out[:, :2] += np.diff(dropped[keep], axis=0, prepend=np.zeros((1, 2)))
    return out


def own_start(phi: np.ndarray, points: np.ndarray, P: int) -> int:
    """First point of the stroke in which the window first reaches the line's own text.

    After priming, the window starts inside the priming text (positions < P)
    and the network may first finish its last letters; those strokes belong
    to the style sample, not to the line.
    """
    own = np.flatnonzero(attended(phi) >= P) if len(phi) else np.zeros(0, int)
    if len(own) == 0:
        return 0
    ends = np.flatnonzero(points[: own[0], 2] > 0.5)  # pen lifts before that point
    return int(ends[-1]) + 1 if len(ends) else 0


def longest_run(top: np.ndarray) -> int:
    """Most steps in a row on one position, top: (N,) attended positions."""
    change = np.flatnonzero(np.diff(top)) + 1
    return int(np.diff(np.concatenate(([0], change, [len(top)]))).max())


def attention_ok(phi: np.ndarray, lo: int, hi: int, stall_steps: int) -> bool:
    """A history up to position hi (φ: (N, ≥ hi + 1)): every position lo .. hi - 1
    was the most attended one at some step, and none held it stall_steps steps."""
    if len(phi) == 0:
        return False
    top = attended(phi[:, : hi + 1])
    return longest_run(top) < stall_steps and bool(np.isin(np.arange(lo, hi), top).all())


def line_status(phi: np.ndarray, P: int, U: int, ended: bool, stall_steps: int) -> str:
    # phi: (N, U+1...) φ history of one line over all positions of its full text.
    if len(phi) == 0:
        return "ok" if ended else "ran_on"
    top = attended(phi[:, : P + U + 1])  # most attended position per step (end position included)
    if longest_run(top) >= stall_steps:
        return "stalled"
    if not ended:
        return "ran_on"
    seen = np.zeros(P + U + 1, dtype=bool)
    seen[top] = True
    if not seen[P : P + U].all():
        return "skipped"
    return "ok"
