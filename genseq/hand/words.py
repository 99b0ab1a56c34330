"""Choosing word by word: K candidates of a line, pruned at every word's end.

Best of K over whole lines (choose.py) needs every word of one draw to come
out right at once; a line of seven words with one slip in ten words is right
about half the time, whatever K. Here the K candidates of a line are written
side by side. A candidate pauses at the end of a word: at the first pen lift
after its window reaches the space before the next word (or, should the pen
not lift, once the window is on the next word's second character). Its state
and pen stay put while the batch steps on for the others. (The window does
not always run ahead of the pen: it may reach the next word's first letter
after the pen has started it, so "the window reached the next word" would
cut inside that letter.) Once all K have paused, a reader scores each on the
line so far, log p(text up to that word | its strokes up to the pause), and
all K carry on from the best one: its LSTM state, window position κ, last
point and strokes are copied into the other K - 1 rows. Their random draws
differ from there on, so the next word again gets K tries. This is
sequential Monte Carlo with greedy resampling (keep the best particle K
times); the hand stays one continuous sample of the network.

A candidate whose attention went wrong on the way (a character never the most
attended one, or one held for `patience` steps: the checks of sample._status)
is only kept when every candidate did. A candidate whose window stalls never
reaches the next word: once the first candidate of a line has paused, the
others get `patience` more steps, then the best of those that made it is kept.

When even the best of the K scores `redo_below` nats or more below the line
so far (the reader finds no candidate of that word right: in "genseq. It" at
the default seed all 8 `It` scored 11 to 34 nats down), the K go back to
where the word began and write it again with fresh draws, at most `redos`
times per line; after that the best of the last K is kept.

The last word is not chosen here: the K finished lines, which share all but
their last word, go to `choose.choose` like any candidates.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .lines import attention_ok, own_start
from .model import HandState

# (points: list of (N, 3) float32 normalised offsets, texts: list of str) -> (B,) scores, higher better
Scorer = Callable[[list, list], np.ndarray]
NEVER = 1 << 30  # a target position no window reaches: the line's last word is not chosen here


def word_starts(text: str) -> list[int]:
    """Indices of the first character of every word after the first ("ab  cd e" -> [4, 7])."""
    return [i for i in range(1, len(text)) if text[i] != " " and text[i - 1] == " "]


class WordChoice:
    """Book-keeping for one batch of K candidates per line (rows grouped by line).

    texts: the B = G * K row texts (each line's text K times in a row); P:
    characters of priming text before every row's own text (its window
    positions are P + index); counts: (B, U+1) bool, the positions a row's
    window can attend (its characters and the one past the end); T: steps of
    the history; score: the reader; start: the state and last point (B, 3)
    before the first step.
    """

    def __init__(self, texts: list[str], k: int, P: int, counts: torch.Tensor, T: int,
                 score: Scorer, patience: int, start: tuple[HandState, torch.Tensor],
                 redos: int = 3, redo_below: float = 6.0, on_word: Callable[[int, np.ndarray], None] | None = None):
        if len(texts) % k or any(len(set(texts[g:g + k])) > 1 for g in range(0, len(texts), k)):
            raise ValueError("rows must come in groups of k copies of one text")
        device = counts.device
        self.k, self.P, self.counts, self.score, self.patience = k, P, counts, score, patience
        self.texts = texts[::k]  # (G,) one per line
        self.starts = [word_starts(t) for t in self.texts]  # per line: where each next word begins
        self.seg = np.zeros(len(self.texts), int)  # (G,) words chosen so far
        self.target = torch.tensor([self._target(g) for g in range(len(self.texts)) for _ in range(k)],
                                   device=device)  # (B,) full-text position whose reaching pauses the row
        self.paused = torch.zeros(len(texts), dtype=torch.bool, device=device)  # (B,)
        self.spaced = torch.zeros(len(texts), dtype=torch.bool, device=device)  # (B,) window reached the space
        self.crossed = torch.full((len(texts),), -1, dtype=torch.long, device=device)  # (B,) step it paused at
        self.live = torch.zeros(len(texts), T, dtype=torch.bool, device=device)  # (B, T) steps a row took
        self.redos, self.redo_below = redos, redo_below
        self.on_word = on_word  # (line g, its strokes up to the word just chosen): for a page that shows it live
        self.redos_left = np.full(len(self.texts), redos)  # (G,) words that may still be written again
        self.base = np.zeros(len(self.texts))  # (G,) the reader's score of the line so far
        # g -> (its row of the state and x, step) where the line's current word began
        self.snap = {g: (self._row(*start, g * k), 0) for g in range(len(self.texts))}

    def _target(self, g: int) -> int:
        s = self.starts[g]  # the space before the next word (its last one, if several)
        return self.P + s[self.seg[g]] - 1 if self.seg[g] < len(s) else NEVER

    def advance(self, t: int, state: HandState, new: HandState, x: torch.Tensor, x_new: torch.Tensor,
                phi: torch.Tensor) -> tuple[HandState, torch.Tensor]:
        """Step t of the batch: rows not paused take `new` and `x_new`, paused ones keep theirs.
        A row whose window has reached its target (the space) pauses after this
        step if its pen lifts now, or if its window is two positions past it."""
        active = ~self.paused  # (B,)
        self.live[:, t] = active
        a2, a3 = active.unsqueeze(1), active.view(1, -1, 1)
        state = HandState(torch.where(a3, new.h, state.h), torch.where(a3, new.c, state.c),
                          torch.where(a2, new.kappa, state.kappa), torch.where(a2, new.window, state.window))
        at = torch.where(self.counts, phi, -1.0).argmax(1)  # (B,) most attended position
        self.spaced |= active & (at >= self.target)
        reached = active & self.spaced & ((x_new[:, 2] > 0.5) | (at >= self.target + 2))
        self.paused |= reached
        self.crossed = torch.where(reached, t, self.crossed)
        return state, torch.where(a2, x_new, x)

    def check(self, t1: int, points: torch.Tensor, phis: torch.Tensor, state: HandState, x: torch.Tensor,
              finished: torch.Tensor) -> None:
        """After step t1 - 1: choose for every line whose candidates are ready.
        points (B, T, 3), phis (B, T, U+1), state, x and finished are updated in place."""
        crossed, done = self.crossed.cpu().numpy(), finished.cpu().numpy()
        ready = []
        for g in range(len(self.texts)):
            c, d = crossed[g * self.k:(g + 1) * self.k], done[g * self.k:(g + 1) * self.k]
            if (c < 0).all():
                continue
            if not ((c < 0) & ~d).any() or t1 - 1 - c[c >= 0].min() >= self.patience:
                ready.append(g)
        if ready:
            self._choose(ready, crossed, t1, points, phis, state, x, finished)

    def _piece(self, pts: np.ndarray, phi: np.ndarray, live: np.ndarray, crossed: int, lo: int, hi: int):
        """One row's strokes of the line so far and whether its attention was healthy.

        pts (t1, 3), phi (t1, U+1), live (t1,): its history; crossed: the step it
        paused at; the piece ends at the last pen lift up to that step (the
        pause's own, unless the window ran on); lo..hi-1: positions to check."""
        keep = np.flatnonzero(live[: crossed + 1])
        pts, phi = pts[keep], phi[keep]
        lifts = np.flatnonzero(pts[:, 2] > 0.5)
        stop = int(lifts[-1]) + 1 if len(lifts) else len(pts)
        start = own_start(phi[:stop], pts[:stop], self.P) if self.P else 0
        piece = pts[start:stop] if stop > start else pts[:1]
        return piece, attention_ok(phi, lo, hi, self.patience)

    def _choose(self, groups, crossed, t1, points, phis, state, x, finished) -> None:
        rows = [g * self.k + j for g in groups for j in range(self.k) if crossed[g * self.k + j] >= 0]
        pts = points[rows, :t1].float().cpu().numpy()  # (R, t1, 3)
        phi = phis[rows, :t1].cpu().numpy()  # (R, t1, U+1)
        live = self.live[rows, :t1].cpu().numpy()
        pieces, texts, healthy, piece_of = [], [], [], {}
        for n, b in enumerate(rows):
            g = b // self.k
            nxt = self.starts[g][self.seg[g]]
            piece, ok = self._piece(pts[n], phi[n], live[n], int(crossed[b]), self.P, self.P + nxt - 1)
            pieces.append(piece)
            piece_of[b] = piece
            healthy.append(ok)
            texts.append(self.texts[g][:nxt].rstrip())
        scores = np.asarray(self.score(pieces, texts), dtype=np.float64)  # (R,)
        best: dict[int, tuple] = {}
        for b, s, ok in zip(rows, scores, healthy):
            key = (ok, s)  # healthy attention first, then the reader's score
            if b // self.k not in best or key > best[b // self.k][0]:
                best[b // self.k] = (key, b)
        for g in groups:
            (ok, top), src = best[g]
            dst = slice(g * self.k, (g + 1) * self.k)
            self.paused[dst] = False
            self.spaced[dst] = False
            self.crossed[dst] = -1
            if top < self.base[g] - self.redo_below and self.redos_left[g] > 0:
                self.redos_left[g] -= 1  # no candidate wrote this word: all K write it again
                self._restore(g, state, x, t1)
                continue
            row = self._row(state, x, src)
            self._put(state, x, dst, row)
            finished[dst] = finished[src].clone()
            for t in (points, phis, self.live):  # (B, T, ...)
                t[dst, :t1] = t[src, :t1].clone()
            self.base[g] = top
            self.seg[g] += 1
            self.target[dst] = self._target(g)
            self.snap[g] = (row, t1)
            if self.on_word is not None:
                self.on_word(g, piece_of[src])

    @staticmethod
    def _row(state: HandState, x: torch.Tensor, b: int) -> tuple:
        """Row b of the state and last point, copied: (h (L, H), c (L, H), κ, w, x)."""
        return (state.h[:, b].clone(), state.c[:, b].clone(), state.kappa[b].clone(),
                state.window[b].clone(), x[b].clone())

    @staticmethod
    def _put(state: HandState, x: torch.Tensor, dst: slice, row: tuple) -> None:
        h, c, kappa, window, x0 = row
        state.h[:, dst], state.c[:, dst] = h.unsqueeze(1), c.unsqueeze(1)
        state.kappa[dst], state.window[dst], x[dst] = kappa, window, x0

    def _restore(self, g: int, state: HandState, x: torch.Tensor, t1: int) -> None:
        """Put line g's K rows back where its current word began; the steps since are not its line."""
        row, t0 = self.snap[g]
        dst = slice(g * self.k, (g + 1) * self.k)
        self._put(state, x, dst, row)
        self.live[dst, t0:t1] = False
