"""The one cleaning step every stroke converter uses: absolute pen strokes in,
one (N, 3) sequence of (dx, dy, pen_up) out, or `Skip(reason)`.

Order matters: repeated points are dropped first (so the median step is the
real pen step), jumps are judged on the source sampling (resampling would
stretch every step), and resampling comes last.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Measured on IAM-OnDB (11,236 lines): the median within-stroke step of a line
# is 11-70 tablet units, the longest step is < 12x the line's median in 95% of
# lines and < 30x in all but 11 lines, where it is a sensor glitch (one point
# hundreds to thousands of units away, then back). Scale-free, so it also
# works for screen pixels (JSONL, InkML).
MAX_JUMP_RATIO = 30.0
MAX_ABS_COORD = 1e7  # larger coordinates are corrupt data, and lose precision in float32 offsets
# A second line of writing (`second_line`): a pen-up move back left by over
# NEW_LINE_BACK of the ink's width, then at least NEW_LINE_SHARE of the points,
# centred below nearly all the ink before the move.
NEW_LINE_BACK = 0.5
NEW_LINE_SHARE = 0.05
MAX_NEW_LINES = 50  # moves back left looked at in one line


class Skip(Exception):
    """A line that cannot be used; `str(err)` is the short reason shown in summaries."""


@dataclass(frozen=True)
class CleanOptions:
    """How to clean and (optionally) thin out the points of every line.

    every: keep every n-th point of each stroke (1 = all); min_dist: drop a
    point closer than this (source units) to the last kept point (0 = off).
    Both always keep the first and last point of each stroke, so pen-up
    positions are exact. max_jump_ratio: a step inside a stroke longer than
    this many times the line's median step marks the line as a glitch and
    skips it.
    """

    every: int = 1
    min_dist: float = 0.0
    max_jump_ratio: float = MAX_JUMP_RATIO

    def describe(self) -> str:
        """The `resample` attribute of the HDF5 file."""
        parts = []
        if self.every > 1:
            parts.append(f"every {self.every}th point of each stroke, ends kept")
        if self.min_dist > 0:
            parts.append(f"min distance {self.min_dist:g} source units, ends kept")
        return "; ".join(parts) or "none"


def clean_strokes(strokes, opts: CleanOptions = CleanOptions(), *, y_down: bool) -> np.ndarray:
    """strokes: list of array-likes (n, 2+) of absolute x, y (extra columns such
    as time are ignored). y_down: the source's y grows downwards (tablets,
    screens); it is flipped so y grows upwards. Returns float32 (N, 3)."""
    cleaned = []
    for s in strokes:
        a = np.asarray(s, dtype=np.float64)
        if a.size == 0:
            continue  # empty stroke
        if a.ndim != 2 or a.shape[1] < 2:
            raise Skip("bad point")
        a = a[:, :2]  # (n, 2)
        if not np.all(np.isfinite(a)):
            raise Skip("non-finite coordinate")
        if np.any(np.abs(a) > MAX_ABS_COORD):
            raise Skip("huge coordinate")
        if y_down:
            a = a * np.array([1.0, -1.0])
        keep = np.ones(len(a), dtype=bool)
        keep[1:] = np.any(a[1:] != a[:-1], axis=1)  # drop repeated points
        cleaned.append(a[keep])
    if not cleaned:
        raise Skip("no points")
    if second_line(cleaned):
        raise Skip("more than one line of writing")
    steps = np.concatenate([np.hypot(*np.diff(a, axis=0).T) for a in cleaned])  # within-stroke steps
    if len(steps) and opts.max_jump_ratio > 0:
        median = float(np.median(steps))
        if steps.max() > opts.max_jump_ratio * median:
            raise Skip("absurd jump")
    cleaned = [resample_stroke(a, opts) for a in cleaned]
    return to_offsets(cleaned)


def second_line(strokes: list[np.ndarray]) -> bool:
    """Whether absolute strokes (n, 2), y up, in writing order hold a second line of
    writing below the first (a note of several lines given as one line): a pen-up
    move back left by over NEW_LINE_BACK of the ink's width, with two strokes or
    more before it, and two or more and at least NEW_LINE_SHARE of the points
    after it, their median height below the 5th percentile of the points before
    it. A late i-dot or t-cross goes back left at the line's own height; an
    underline is one stroke; a capital's bars follow one or two strokes.
    The UNIPEN converter, which reads lists of words written one under another,
    keeps its own rule (unipen.is_one_line: a stroke wholly below all the ink
    before it), with which the bundled model's UNIPEN data was built."""
    xy = np.concatenate(strokes)
    width = np.ptp(xy[:, 0])
    starts = np.cumsum([len(a) for a in strokes])[:-1]  # first point of strokes 1 ..
    back = [k for k in range(len(strokes) - 1) if strokes[k + 1][0, 0] - strokes[k][-1, 0] < -NEW_LINE_BACK * width]
    for k in back[:MAX_NEW_LINES]:  # a real note has a few; a zigzag of thousands costs no more than that
        i = starts[k]
        before, after = xy[:i, 1], xy[i:, 1]
        if (k >= 1 and k + 2 < len(strokes) and len(after) >= NEW_LINE_SHARE * len(xy)
                and np.median(after) < np.percentile(before, 5)):
            return True
    return False


def resample_stroke(a: np.ndarray, opts: CleanOptions) -> np.ndarray:
    """a: (n, 2) absolute points of one stroke -> (m, 2), m <= n, ends kept."""
    n = len(a)
    if n <= 2:
        return a
    if opts.every > 1:
        idx = np.arange(0, n, opts.every)
        if idx[-1] != n - 1:
            idx = np.append(idx, n - 1)
        a = a[idx]
    if opts.min_dist > 0 and len(a) > 2:
        kept = [0]
        last = a[0]
        for i in range(1, len(a) - 1):
            if np.hypot(*(a[i] - last)) >= opts.min_dist:
                kept.append(i)
                last = a[i]
        kept.append(len(a) - 1)
        a = a[kept]
    return a


def to_offsets(strokes: list[np.ndarray]) -> np.ndarray:
    """Absolute strokes (y up) -> float32 (N, 3) rows (dx, dy, pen_up), with
    p_{-1} = p_0 and pen_up = 1 on each stroke's last point (Graves 2013 sec. 4)."""
    xy = np.concatenate(strokes)  # (N, 2)
    out = np.zeros((len(xy), 3), dtype=np.float32)
    out[1:, :2] = np.diff(xy, axis=0)
    ends = np.cumsum([len(s) for s in strokes]) - 1
    out[ends, 2] = 1.0
    return out


def to_strokes(points: np.ndarray) -> list[np.ndarray]:
    """Inverse of `to_offsets`: (N, 3) -> list of absolute (n, 2) strokes, y up,
    the first point at the origin."""
    points = np.asarray(points, dtype=np.float64)
    xy = np.cumsum(points[:, :2], axis=0)  # (N, 2)
    ends = np.flatnonzero(points[:, 2] > 0.5) + 1
    if len(ends) == 0 or ends[-1] != len(points):
        ends = np.append(ends, len(points))
    return [s for s in np.split(xy, ends[:-1]) if len(s)]
