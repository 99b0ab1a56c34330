"""A shape check beside the reader: do the strokes of x, X, t, f, + and # cross?

The reader (genseq.reader) reads the pen path, and it reads an `x` whose
second stroke landed beside the first (`ı\\`, `ʌ`) about as well as one whose
strokes cross: on the 60 everyday lines it scored such a `boxes` 0.1 nats
above three well-written ones. Where the letters of a word need strokes that
cross (each x, X, t, f and + one pair, # four), this module counts the pairs
of different pen-down strokes that cross in each candidate's newest word, and
a candidate with fewer such crossings than the best of its group loses
`nats` per missing pair (at most as many as the word needs). Candidates the
reader scores well apart keep their order; near-ties go to the one whose
strokes cross.

The candidates of one line share their strokes up to where the word being
chosen began (words.py copies the chosen row into the others), so the newest
word is what follows their longest shared prefix (from its last point on).
Rows come grouped: runs of consecutive rows with the same text. No torch here.
"""
from __future__ import annotations

import itertools

import numpy as np

NEEDS = {"x": 1, "X": 1, "t": 1, "f": 1, "+": 1, "#": 4}  # pairs of strokes that cross, per character
CHECKED = set("xX#+")  # a word is checked only when it holds one of these
MAX_SEGMENTS = 400  # the last segments tested (about 35 characters of the bundled ink): bounded time and memory


def crossings(points: np.ndarray, norm, start: int = 0) -> int:
    """Pairs of different pen-down strokes that properly cross, counting only
    segments from point `start` on (at most the last MAX_SEGMENTS of them).

    points (N, 3) offsets (dx, dy, pen-up) normalised by norm = (mean, std),
    pen-up 1 on a stroke's last point; a segment joins point i to i + 1 when
    i is not a stroke's last point."""
    mean, std = (np.asarray(v, np.float64) for v in norm)
    p = np.asarray(points, np.float64)
    if len(p) < 2:
        return 0
    xy = np.cumsum(p[:, :2] * std + mean, axis=0)  # (N, 2) pen positions
    up = p[:, 2] > 0.5
    stroke = np.concatenate([[0], np.cumsum(up[:-1])])  # (N,) stroke number of each point
    seg = np.arange(max(0, start), len(p) - 1)
    seg = seg[~up[seg]][-MAX_SEGMENTS:]
    if len(seg) < 2:
        return 0
    a, b, s = xy[seg], xy[seg + 1], stroke[seg]  # (M, 2), (M, 2), (M,)

    def side(p1, p2, q):  # sign of the turn p1 -> p2 -> q
        return (q[..., 1] - p1[..., 1]) * (p2[..., 0] - p1[..., 0]) - (p2[..., 1] - p1[..., 1]) * (q[..., 0] - p1[..., 0])
    a1, a2, b1, b2 = a[:, None], b[:, None], a[None], b[None]
    cross = ((side(a1, a2, b1) * side(a1, a2, b2) < 0) & (side(b1, b2, a1) * side(b1, b2, a2) < 0)
             & (s[:, None] < s[None, :]))  # (M, M), each pair of strokes once
    u, v = np.nonzero(cross)
    return len(set(zip(s[u].tolist(), s[v].tolist())))


def shared_prefix(points: list[np.ndarray]) -> int:
    """How many leading points all of `points` have in common."""
    n = min(len(p) for p in points)
    first = np.asarray(points[0])[:n]
    k = n
    for p in points[1:]:
        differ = np.flatnonzero(np.any(np.asarray(p)[:n] != first, axis=1))
        if len(differ):
            k = min(k, int(differ[0]))
    return k


def crossing_penalty(points: list[np.ndarray], texts: list[str], norm, nats: float) -> np.ndarray:
    """(R,) <= 0: -nats per crossing a candidate's newest word lacks against the
    best candidate of its group (runs of equal texts), counting at most the
    crossings the word needs; 0 for words without x, X, # or +."""
    out = np.zeros(len(texts))
    for text, run in itertools.groupby(range(len(texts)), key=texts.__getitem__):
        rows = list(run)
        words = text.split()
        if len(rows) > 1 and words and CHECKED & set(words[-1]):
            need = sum(NEEDS.get(c, 0) for c in words[-1])
            group = [points[r] for r in rows]
            k = max(shared_prefix(group) - 1, 0)  # the new word's first segment starts on a shared point
            got = np.array([min(crossings(p, norm, k), need) for p in group])
            out[rows] = -nats * (got.max() - got)
    return out
