"""Choosing word by word: C candidates of a line, pruned at every word's end.

Best of C over whole lines (choose.py) needs every word of one draw to come
out right at once; a line of seven words with one slip in ten words is right
about half the time, whatever C. Here the C candidates of a line are written
side by side. A candidate pauses at the end of a word: at the first pen lift
after its window reaches the space before the next word (or, should the pen
not lift, once the window is on the next word's second character). Its state
and pen stay put while the batch steps on for the others. (The window does
not always run ahead of the pen: it may reach the next word's first letter
after the pen has started it, so "the window reached the next word" would
cut inside that letter.) Once all C have paused, a reader scores each on the
line so far, log p(text up to that word | its strokes up to the pause), and
all C carry on from the best one: its LSTM state, window position κ, last
point and strokes are copied into the other C - 1 rows. Their random draws
differ from there on, so the next word again gets C tries. This is
sequential Monte Carlo with greedy resampling (keep the best particle C
times); the hand stays one continuous sample of the network.

A candidate whose attention went wrong on the way (a character never the most
attended one, or one held for `patience` steps: lines.attention_ok) is only
kept when every candidate did. A candidate whose window stalls never
reaches the next word: once the first candidate of a line has paused, the
others get `patience` more steps, then the best of those that made it is kept.

When even the best of the C scores REDO_BELOW nats or more below the line
so far (the reader finds no candidate of that word right), the C go back to
where the word began and write it again with fresh draws, at most REDOS
times per line; after that the best of the last C is kept.

The last word is not chosen here: the C finished lines, which share all but
their last word, go to `choose.choose` like any candidates.

Letters: B rows = G lines x C candidates, row b is candidate b % C of line
b // C; T steps; U+1 window positions (the characters and one past the end).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import torch

from .lines import attention_ok, own_start
from .model import HandState

# (points: list of (N, 3) float32 normalised offsets, texts: list of str,
#  phis: list of (N, len(text)) window weights over each text) -> (B,) scores, higher better
Scorer = Callable[[list, list, list], np.ndarray]
REDOS = 3  # words a line may write again
REDO_BELOW = 6.0  # nats below the line so far that send a word back (a misread by the reader)
NEVER = 1 << 30  # a target position no window reaches: the line's last word is not chosen here


def word_starts(text: str) -> list[int]:
    """Indices of the first character of every word after the first ("ab  cd e" -> [4, 7])."""
    return [i for i in range(1, len(text)) if text[i] != " " and text[i - 1] == " "]


class WordChoice:
    """Book-keeping for one batch of C candidates per line (rows grouped by line).

    texts: the B = G·C row texts (each line's text C times in a row); P:
    characters of priming text before every row's own text (its window
    positions are P + index); reachable: (B, U+1) bool, the positions a row's
    window can attend (its characters and the one past the end); T: steps of
    the history; score: the reader; start: the state and last point (B, 3)
    before the first step.

    `rows` holds what each candidate is doing (`_Rows`, tensors: `advance`
    runs every step), `lines` what has been chosen of each line (`_Line`,
    touched only when a line's candidates are ready).
    """

    def __init__(self, texts: list[str], C: int, P: int, reachable: torch.Tensor, T: int,
                 score: Scorer, patience: int, start: tuple[HandState, torch.Tensor],
                 on_word: Callable[[dict[int, np.ndarray]], None] | None = None):
        if len(texts) % C or any(len(set(texts[g:g + C])) > 1 for g in range(0, len(texts), C)):
            raise ValueError("rows must come in groups of C copies of one text")
        self.C, self.P, self.reachable, self.score, self.patience = C, P, reachable, score, patience
        self.on_word = on_word  # ({line g: its strokes up to the word just chosen}): for a page that shows it live
        self.lines = [_Line(t, word_starts(t), REDOS, (_RowCopy.of(*start, g * C), 0))
                      for g, t in enumerate(texts[::C])]
        target = torch.tensor([line.target(P) for line in self.lines for _ in range(C)], device=reachable.device)
        self.rows = _Rows.start(target, T)

    def advance(self, t: int, state: HandState, new: HandState, x: torch.Tensor, x_new: torch.Tensor,
                phi: torch.Tensor) -> tuple[HandState, torch.Tensor]:
        """Step t of the batch: rows not paused take `new` and `x_new`, paused ones keep theirs.
        A row whose window has reached its target (the space) pauses after this
        step if its pen lifts now, or if its window is two positions past it."""
        rows = self.rows
        active = ~rows.paused  # (B,)
        rows.live[:, t] = active
        a2, a3 = active.unsqueeze(1), active.view(1, -1, 1)
        state = HandState(torch.where(a3, new.h, state.h), torch.where(a3, new.c, state.c),
                          torch.where(a2, new.kappa, state.kappa), torch.where(a2, new.window, state.window))
        at = torch.where(self.reachable, phi, -1.0).argmax(1)  # (B,) most attended position
        rows.spaced |= active & (at >= rows.target)
        reached = active & rows.spaced & ((x_new[:, 2] > 0.5) | (at >= rows.target + 2))
        rows.paused |= reached
        rows.crossed = torch.where(reached, t, rows.crossed)
        return state, torch.where(a2, x_new, x)

    def check(self, t1: int, points: torch.Tensor, phis: torch.Tensor, state: HandState, x: torch.Tensor,
              finished: torch.Tensor) -> None:
        """After step t1 - 1: choose for every line whose candidates are ready.
        points (B, T, 3), phis (B, T, U+1), state, x and finished are updated in place."""
        crossed, done = self.rows.crossed.cpu().numpy(), finished.cpu().numpy()
        ready = []
        for g in range(len(self.lines)):
            c, d = crossed[self._rows_of(g)], done[self._rows_of(g)]
            if (c < 0).all():
                continue
            if not ((c < 0) & ~d).any() or t1 - 1 - c[c >= 0].min() >= self.patience:
                ready.append(g)
        if ready:
            self._choose(ready, crossed, t1, points, phis, state, x, finished)

    def _rows_of(self, g: int) -> slice:
        return slice(g * self.C, (g + 1) * self.C)

    def _piece(self, pts: np.ndarray, phi: np.ndarray, live: np.ndarray, crossed: int, lo: int, hi: int):
        """One row's strokes of the line so far, its window over the line's own
        characters at those points, and whether its attention was healthy.

        pts (t1, 3), phi (t1, U+1), live (t1,): its history; crossed: the step it
        paused at; the piece ends at the last pen lift up to that step (the
        pause's own, unless the window ran on); lo..hi-1: positions to check."""
        keep = np.flatnonzero(live[: crossed + 1])
        pts, phi = pts[keep], phi[keep]
        lifts = np.flatnonzero(pts[:, 2] > 0.5)
        stop = int(lifts[-1]) + 1 if len(lifts) else len(pts)
        start = own_start(phi[:stop], pts[:stop], self.P) if self.P else 0
        span = slice(start, stop) if stop > start else slice(0, 1)
        return pts[span], phi[span, self.P:], attention_ok(phi, lo, hi, self.patience)

    def _choose(self, groups, crossed, t1, points, phis, state, x, finished) -> None:
        C = self.C
        rows = [g * C + j for g in groups for j in range(C) if crossed[g * C + j] >= 0]
        pts = points[rows, :t1].float().cpu().numpy()  # (R, t1, 3)
        phi = phis[rows, :t1].cpu().numpy()  # (R, t1, U+1)
        live = self.rows.live[rows, :t1].cpu().numpy()
        pieces, windows, texts, healthy, piece_of = [], [], [], [], {}
        for n, b in enumerate(rows):
            line = self.lines[b // C]
            nxt = line.starts[line.chosen]
            piece, window, ok = self._piece(pts[n], phi[n], live[n], int(crossed[b]), self.P, self.P + nxt - 1)
            pieces.append(piece)
            windows.append(window)
            piece_of[b] = piece
            healthy.append(ok)
            texts.append(line.text[:nxt].rstrip())
        scores = np.asarray(self.score(pieces, texts, windows), dtype=np.float64)  # (R,)
        best: dict[int, tuple] = {}
        for b, s, ok in zip(rows, scores, healthy):
            key = (ok, s)  # healthy attention first, then the reader's score
            if b // C not in best or key > best[b // C][0]:
                best[b // C] = (key, b)
        chosen = {}
        for g in groups:
            (ok, top), src = best[g]
            line, dst = self.lines[g], self._rows_of(g)
            self.rows.resume(dst)
            if top < line.score - REDO_BELOW and line.redos_left > 0:
                line.redos_left -= 1  # no candidate wrote this word: all C write it again
                self._restore(g, state, x, t1)
                continue
            row = _RowCopy.of(state, x, src)
            row.put(state, x, dst)
            finished[dst] = finished[src].clone()
            for t in (points, phis, self.rows.live):  # (B, T, ...)
                t[dst, :t1] = t[src, :t1].clone()
            line.score = top
            line.chosen += 1
            self.rows.target[dst] = line.target(self.P)
            line.word_start = (row, t1)
            chosen[g] = piece_of[src]
        if chosen and self.on_word is not None:
            self.on_word(chosen)

    def _restore(self, g: int, state: HandState, x: torch.Tensor, t1: int) -> None:
        """Put line g's C rows back where its current word began; the steps since are not its line."""
        row, t0 = self.lines[g].word_start
        dst = self._rows_of(g)
        row.put(state, x, dst)
        self.rows.live[dst, t0:t1] = False


@dataclass
class _Rows:
    """What each of the B candidates is doing in its current word, as tensors
    (`WordChoice.advance` updates them every step, with no loop over rows)."""

    target: torch.Tensor  # (B,) full-text position whose reaching pauses the row: the space before the next word
    spaced: torch.Tensor  # (B,) bool: its window has reached the target
    paused: torch.Tensor  # (B,) bool: it has ended the word and waits for the line's other candidates
    crossed: torch.Tensor  # (B,) long: the step it paused at, -1 while it writes
    live: torch.Tensor  # (B, T) bool: the steps it took (a paused row takes none)

    @classmethod
    def start(cls, target: torch.Tensor, T: int) -> "_Rows":
        B, device = len(target), target.device
        return cls(target, torch.zeros(B, dtype=torch.bool, device=device),
                   torch.zeros(B, dtype=torch.bool, device=device),
                   torch.full((B,), -1, dtype=torch.long, device=device),
                   torch.zeros(B, T, dtype=torch.bool, device=device))

    def resume(self, dst: slice) -> None:
        """The rows dst start the next word (or the same one again)."""
        self.paused[dst] = False
        self.spaced[dst] = False
        self.crossed[dst] = -1


class _RowCopy(NamedTuple):
    """One row of the state and its last point, copied."""

    h: torch.Tensor  # (L, H)
    c: torch.Tensor  # (L, H)
    kappa: torch.Tensor  # (M,)
    window: torch.Tensor  # (V,)
    x: torch.Tensor  # (3,)

    @classmethod
    def of(cls, state: HandState, x: torch.Tensor, b: int) -> "_RowCopy":
        return cls(state.h[:, b].clone(), state.c[:, b].clone(), state.kappa[b].clone(),
                   state.window[b].clone(), x[b].clone())

    def put(self, state: HandState, x: torch.Tensor, dst: slice) -> None:
        """Write this row into the rows dst of state and x, in place."""
        state.h[:, dst], state.c[:, dst] = self.h.unsqueeze(1), self.c.unsqueeze(1)
        state.kappa[dst], state.window[dst], x[dst] = self.kappa, self.window, self.x


@dataclass
class _Line:
    """What has been chosen of one line, and where its current word began."""

    text: str
    starts: list[int]  # where each word after the first begins (word_starts)
    redos_left: int  # words that may still be written again
    word_start: tuple[_RowCopy, int]  # (the line's state and point, step) where its current word began
    chosen: int = 0  # words chosen so far
    score: float = 0.0  # the reader's score of the line so far

    def target(self, P: int) -> int:
        """The window position whose reaching ends the current word: the space before the
        next word (its last one, if several); NEVER for the last word."""
        if self.chosen < len(self.starts):
            return P + self.starts[self.chosen] - 1
        return NEVER
