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
# A second line of writing (`second_line`): a pen-up move back to the first
# NEW_LINE_BACK of the width written so far, then letter-sized strokes holding
# at least NEW_LINE_SHARE of the points, centred NEW_LINE_DROP letters below
# nearly all the ink before.
NEW_LINE_BACK = 0.25
NEW_LINE_SHARE = 0.05
NEW_LINE_DROP = 0.5
MAX_NEW_LINES = 8  # such moves looked at in one line


class Skip(Exception):
    """A line that cannot be used; `str(err)` is the short reason shown in summaries."""


MAX_TEXT_CHARS = 2_000  # one line's transcription: a line of handwriting has at most a few hundred


def check_text(text: str) -> None:
    """Skip unless a line's transcription is one a stroke file can store:
    at most MAX_TEXT_CHARS characters (each becomes about a dozen points when
    the ink is resampled), UTF-8 encodable (no unpaired surrogates), no control
    characters but tabs and line breaks (an HDF5 string cannot hold a NUL,
    and the rest are no handwriting), and line breaks only at its ends (a
    transcription of several lines is no line of writing)."""
    if len(text) > MAX_TEXT_CHARS:
        raise Skip(f"text longer than {MAX_TEXT_CHARS:,} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Skip("text not encodable as UTF-8 (an unpaired surrogate)") from None
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        raise Skip("text with a control character")
    if "\n" in text.strip() or "\r" in text.strip():
        raise Skip("more than one line of writing")


MAX_ID_CHARS = 200


def safe_id(sid: str) -> str:
    """A line's id as a stroke file can store it: characters UTF-8 cannot
    encode (a file name's undecodable bytes) become '?', control characters
    spaces, and at most MAX_ID_CHARS are kept. Ids only name lines."""
    sid = sid[:MAX_ID_CHARS].encode("utf-8", "replace").decode("utf-8")
    return "".join(" " if ord(c) < 32 else c for c in sid)


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
    steps = np.concatenate([np.hypot(*np.diff(a, axis=0).T) for a in cleaned])  # within-stroke steps
    if len(steps) and opts.max_jump_ratio > 0:
        median = float(np.median(steps))
        if steps.max() > opts.max_jump_ratio * median:
            raise Skip("absurd jump")
    if second_line(cleaned):
        raise Skip("more than one line of writing")
    cleaned = [resample_stroke(a, opts) for a in cleaned]
    return to_offsets(cleaned)


def second_line(strokes: list[np.ndarray]) -> bool:
    """Whether absolute strokes (n, 2), y up, in writing order hold a second line of
    writing below the first (a note of several lines given as one entry).

    With L the median height of the strokes that have one (about a letter's):
    a pen-up move back to the first NEW_LINE_BACK of the width written so far,
    once that is at least 2 L wide and holds three strokes at least L/2 tall,
    after which strokes at least L/2 tall hold NEW_LINE_SHARE of the points or
    more, their median height over NEW_LINE_DROP L below the 5th percentile of
    the ink before the move (the descenders' bottoms). Late i-dots, t-crosses,
    cedillas and underlines are not L/2 tall; a late letter goes back at the
    line's own height; a quote mark or a capital's bar is not a line so far.
    Measured: no IAM-OnDB line is taken for two; a second line indented past
    the first quarter, after a first line of one or two strokes, or stacked
    closer than L/2 under the first is missed.
    The UNIPEN converter, which reads lists of words written one under another,
    keeps its own rule (unipen.is_one_line: a stroke wholly below all the ink
    before it), with which the bundled model's UNIPEN data was built."""
    heights = np.array([np.ptp(a[:, 1]) for a in strokes])  # (S,)
    if not (heights > 0).any():
        return False
    L = float(np.median(heights[heights > 0]))
    tall = heights >= 0.5 * L  # (S,)
    tall_so_far = np.cumsum(tall)  # (S,) of strokes 0..k
    sizes = np.array([len(a) for a in strokes])  # (S,)
    left = np.minimum.accumulate([a[:, 0].min() for a in strokes])  # (S,) of strokes 0..k
    width = np.maximum.accumulate([a[:, 0].max() for a in strokes]) - left
    back = [k for k in range(len(strokes) - 1)
            if width[k] >= 2 * L and tall_so_far[k] >= 3
            and strokes[k + 1][0, 0] <= left[k] + NEW_LINE_BACK * width[k]]
    for k in back[:MAX_NEW_LINES]:  # a real note has a few such moves; a zigzag of thousands costs no more
        after = np.flatnonzero(tall[k + 1:]) + k + 1
        if sizes[after].sum() < NEW_LINE_SHARE * sizes.sum():
            continue
        centre = np.median(np.concatenate([strokes[j][:, 1] for j in after]))
        if centre < np.percentile(np.concatenate([a[:, 1] for a in strokes[:k + 1]]), 5) - NEW_LINE_DROP * L:
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
