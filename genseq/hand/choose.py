"""Best of K: write each line K times and keep the version a reader reads best.

The synthesis network writes the right letters most of the time, but not
always (a 'y' that reads as 'p', a missing 'x'). The attention checks of
sample.py catch a window that stalls, skips or runs on, not a letter drawn
wrong. A recognizer (recognize.py) scores each candidate by
log p(text | strokes); the candidate with the highest score is kept. Lines
that passed the attention checks come first, whatever their score.
"""
from __future__ import annotations

import numpy as np
import torch

from .recognize import Recognizer
from .sample import HandLine


def _inputs(points: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Written lines -> recognizer input x (B, T, 3), lengths (B,).

    points: (N, 3) offsets normalised the way the synthesis model sees them;
    the recognizer was trained on offsets divided by its data's spread, the
    same normalisation, so they go in unchanged."""
    x = torch.zeros(len(points), max(len(p) for p in points), 3)  # (B, T, 3)
    for b, p in enumerate(points):
        x[b, : len(p)] = torch.from_numpy(np.asarray(p, np.float32))
    # A written line starts with the pen's jump from the priming text; data lines start at (0, 0).
    x[:, 0, :2] = 0
    return x, torch.tensor([len(p) for p in points])


def read_scores(recognizer: Recognizer, points: list[np.ndarray], texts: list[str]) -> np.ndarray:
    """log p(text | strokes) per line (B,), nats; -inf where the text cannot align."""
    from .model import pad_texts
    x, n = _inputs(points)
    ids, mask = pad_texts(texts, recognizer.config.alphabet)  # (B, U)
    with torch.no_grad():
        nll = recognizer.nll(x, n, ids, mask.sum(1).long())
    return (-nll).numpy()


def read_lines(recognizer: Recognizer, points: list[np.ndarray]) -> list[str]:
    """What the recognizer reads in written lines (best path)."""
    from .recognize import frames, greedy_decode
    x, n = _inputs(points)
    with torch.no_grad():
        logp = recognizer(x, n)
    return greedy_decode(logp, frames(n, recognizer.config.stride), recognizer.config.alphabet)


def choose(candidates: list[HandLine], k: int, recognizer: Recognizer) -> list[HandLine]:
    """candidates: k versions of each line, grouped (line 0's k, then line 1's, ...) -> one per line."""
    known = set(recognizer.config.alphabet)
    readable = [i for i, c in enumerate(candidates) if set(c.text) <= known and len(c.points) > 0]
    scores = np.zeros(len(candidates))  # a text the reader cannot spell: keep the first good draw
    if readable:
        scores[readable] = read_scores(recognizer, [candidates[i].points for i in readable],
                                       [candidates[i].text for i in readable])
    out = []
    for start in range(0, len(candidates), k):
        group = range(start, start + k)
        best = max(group, key=lambda i: (candidates[i].status == "ok", scores[i]))
        out.append(candidates[best])
    return out
