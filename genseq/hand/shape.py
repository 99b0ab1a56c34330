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

A pair counts in full when its strokes cross away from their ends, and in
part when they cross near one: strokes that meet at their tips make an
inverted V (`ʌ`) or touch the next letter, not an x. A pair whose crossing
lies a share c of the way along the nearer end of either stroke (0 at an end,
0.5 in the middle) counts min(1, c / CENTRAL). On 150 candidate words with an
x, judged by eye, the plain count told well-formed from broken x with an AUC
of 0.57 and this one with 0.78 (docs/writing.md).

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
CENTRAL = 0.2  # a crossing this far (as a share of the stroke's length) from both strokes' ends counts in full


def crossings(points: np.ndarray, norm, start: int = 0, central: float = CENTRAL) -> float:
    """Pairs of different pen-down strokes that properly cross, counting only
    segments from point `start` on (at most the last MAX_SEGMENTS of them);
    a pair counts min(1, c / central), c its crossing's share of the way from
    the nearer end of either stroke (central 0: every pair counts 1).

    points (N, 3) offsets (dx, dy, pen-up) normalised by norm = (mean, std),
    pen-up 1 on a stroke's last point; a segment joins point i to i + 1 when
    i is not a stroke's last point."""
    mean, std = (np.asarray(v, np.float64) for v in norm)
    p = np.asarray(points, np.float64)
    if len(p) < 2:
        return 0.0
    xy = np.cumsum(p[:, :2] * std + mean, axis=0)  # (N, 2) pen positions
    up = p[:, 2] > 0.5
    stroke = np.concatenate([[0], np.cumsum(up[:-1])])  # (N,) stroke number of each point
    seg = np.arange(max(0, start), len(p) - 1)
    seg = seg[~up[seg]][-MAX_SEGMENTS:]
    if len(seg) < 2:
        return 0.0
    a, b, s = xy[seg], xy[seg + 1], stroke[seg]  # (M, 2), (M, 2), (M,)

    def side(p1, p2, q):  # sign of the turn p1 -> p2 -> q
        return (q[..., 1] - p1[..., 1]) * (p2[..., 0] - p1[..., 0]) - (p2[..., 1] - p1[..., 1]) * (q[..., 0] - p1[..., 0])
    a1, a2, b1, b2 = a[:, None], b[:, None], a[None], b[None]
    cross = ((side(a1, a2, b1) * side(a1, a2, b2) < 0) & (side(b1, b2, a1) * side(b1, b2, a2) < 0)
             & (s[:, None] < s[None, :]))  # (M, M), each pair of strokes once
    u, v = np.nonzero(cross)
    if central <= 0 or len(u) == 0:
        return float(len(set(zip(s[u].tolist(), s[v].tolist()))))
    where = _along(xy, up, stroke)
    best: dict[tuple[int, int], float] = {}
    for i, j in zip(seg[u].tolist(), seg[v].tolist()):
        d1, d2, e = xy[i + 1] - xy[i], xy[j + 1] - xy[j], xy[j] - xy[i]
        den = d1[0] * d2[1] - d1[1] * d2[0]  # not 0: the segments properly cross
        ti, tj = (e[0] * d2[1] - e[1] * d2[0]) / den, (e[0] * d1[1] - e[1] * d1[0]) / den
        fi, fj = where(i, ti), where(j, tj)
        c = min(fi, 1 - fi, fj, 1 - fj)
        key = (int(stroke[i]), int(stroke[j]))
        best[key] = max(best.get(key, 0.0), c)
    return float(sum(min(1.0, c / central) for c in best.values()))


def _along(xy: np.ndarray, up: np.ndarray, stroke: np.ndarray):
    """(segment i, t in [0, 1]) -> the share of its stroke's length (whole stroke) at i + t."""
    length = np.where(up[:-1], 0.0, np.linalg.norm(np.diff(xy, axis=0), axis=1))  # (N-1,) segment lengths
    before = np.concatenate([[0.0], np.cumsum(length)])  # (N,) length drawn before point i
    first = np.flatnonzero(np.concatenate([[True], up[:-1]]))  # each stroke's first point
    last = np.concatenate([first[1:] - 1, [len(xy) - 1]])  # and its last

    def where(i: int, t: float) -> float:
        k = stroke[i]
        total = before[last[k]] - before[first[k]]
        return float((before[i] - before[first[k]] + t * length[i]) / total) if total > 0 else 0.5
    return where


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
