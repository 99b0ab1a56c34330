"""Word spacing of a written line (numpy): where the model left too little room
between two words, the words after them move right.

Each stroke belongs to the word whose characters the attention window φ
(Graves 2013 eq. 46) was on while it was drawn (the median most attended
character of its points, spaces left out). Two words are `min_gap` average
character widths apart at least (the line's width over its characters): a
gap below that is widened by moving every later word right, so a phone
number's groups or a digit and the word after it no longer run together.
Only the pen-up moves between strokes change; the strokes keep their shapes
and the line its number of points.
"""
from __future__ import annotations

import numpy as np

from .lines import attended, stroke_spans


def stroke_words(points: np.ndarray, phi: np.ndarray, text: str) -> np.ndarray:
    """(S,) int: the word of `text` each stroke of `points` belongs to, -1 for a
    stroke drawn only while the window was on spaces. points (N, 3) offsets;
    phi (N, len(text)) the window over the line's own characters."""
    top = attended(phi)  # (N,)
    word_of = np.cumsum([c == " " for c in text])  # (U,) char -> word index
    letter = np.array([c != " " for c in text])  # (U,)
    strokes = stroke_spans(points)
    out = np.full(len(strokes.starts), -1)
    for k, (s, e) in enumerate(zip(strokes.starts, strokes.ends)):
        on = top[s : e + 1]
        on = on[letter[on]]
        if len(on):
            out[k] = word_of[int(np.median(on))]
    return out


def widen_word_gaps(points: np.ndarray, phi: np.ndarray | None, text: str, min_gap: float) -> np.ndarray:
    """`points` (N, 3) offsets with every gap between two words at least `min_gap`
    average character widths; the same points when nothing is too close, when
    min_gap is 0, or without φ."""
    if min_gap <= 0 or phi is None or " " not in text.strip() or len(points) == 0:
        return points
    xy = np.cumsum(points[:, :2].astype(np.float64), 0)  # (N, 2) pen positions
    pitch = np.ptp(xy[:, 0]) / len(text)  # average character width
    strokes = stroke_spans(points)
    words = stroke_words(points, phi, text)  # (S,)
    ids = np.unique(words[words >= 0])
    if len(ids) < 2 or pitch <= 0:
        return points
    lo = np.array([xy[s : e + 1, 0].min() for s, e in zip(strokes.starts, strokes.ends)])  # (S,)
    hi = np.array([xy[s : e + 1, 0].max() for s, e in zip(strokes.starts, strokes.ends)])  # (S,)
    shift, moved = {ids[0]: 0.0}, 0.0
    for left, right in zip(ids, ids[1:]):
        gap = lo[words == right].min() - hi[words == left].max()
        moved += max(0.0, min_gap * pitch - gap)
        shift[right] = moved
    if moved == 0:
        return points
    dx = np.zeros(len(points))  # (N,) how far each point moves right
    last = 0.0
    for s, e, w in zip(strokes.starts, strokes.ends, words):
        last = shift[w] if w >= 0 else last  # a stroke on spaces alone goes with the word before it
        dx[s : e + 1] = last
    out = points.copy()
    out[:, 0] += np.diff(dx, prepend=0.0).astype(points.dtype)  # only the moves into a shifted stroke change
    return out
