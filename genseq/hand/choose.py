"""Best of C: write each line C times (its candidates) and keep the version a reader reads best
(and, with `cross`, whose strokes cross where an x, X, + or # needs them: shape.py).

The synthesis network writes the right letters most of the time, but not
always (a 'y' that reads as 'p', a missing 'x'). The attention checks of
sample.py catch a window that stalls, skips or runs on, not a letter drawn
wrong. A recognizer (genseq.reader) scores each candidate by
log p(text | strokes); the candidate with the highest score is kept. Lines
that passed the attention checks come first, whatever their score.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from ..reader.model import Recognizer, ctc_nll, encode_texts, greedy_decode, out_frames
from ..reader.substitute import substitution_scores
from .bars import bar_penalty
from .lines import dotless_end
from .sample import HandLine
from .shape import crossing_penalty, shared_prefix


def _inputs(recognizer: Recognizer, points: list[np.ndarray], norm) -> tuple[torch.Tensor, torch.Tensor]:
    """Written lines -> recognizer input x (B, T, 3), lengths (B,), on the recognizer's device.

    points: (N, 3) offsets normalised the way the synthesis model sees them;
    norm: that model's (mean, std), to bring them to data units and then to
    the recognizer's normalisation (identical for the bundled pair)."""
    x = torch.zeros(len(points), max(len(p) for p in points), 3)  # (B, T, 3)
    for b, p in enumerate(points):
        x[b, : len(p)] = torch.from_numpy(np.asarray(p, np.float32))
    if norm is not None and (any(norm[0]) or tuple(norm[1]) != tuple(recognizer.config.norm_std)):
        mean, std = (torch.tensor(v, dtype=torch.float32) for v in norm)
        x[:, :, :2] = (x[:, :, :2] * std + mean) / torch.tensor(recognizer.config.norm_std, dtype=torch.float32)
    # A written line starts with the pen's jump from the priming text; data lines start at (0, 0).
    x[:, 0, :2] = 0
    device = next(recognizer.parameters()).device
    return x.to(device), torch.tensor([len(p) for p in points], device=device)


def _log_probs(recognizer: Recognizer, points: list[np.ndarray], norm) -> tuple[torch.Tensor, torch.Tensor]:
    """The reader's log-probs (B, T', V+1) of written lines and their frames (B,)."""
    x, n = _inputs(recognizer, points, norm)
    with torch.no_grad():
        return recognizer(x, n), out_frames(recognizer.config, x, n)


def _ctc_scores(logp: torch.Tensor, nf: torch.Tensor, texts: list[str], alphabet: str) -> np.ndarray:
    ids, lengths = encode_texts(texts, alphabet)  # (B, U), (B,)
    with torch.no_grad():
        nll = ctc_nll(logp, nf, ids.to(logp.device), lengths.to(logp.device))
    return np.nan_to_num((-nll).float().cpu().numpy(), nan=-np.inf)


def read_scores(recognizer: Recognizer, points: list[np.ndarray], texts: list[str], norm=None) -> np.ndarray:
    """log p(text | strokes) per line (B,), nats; -inf where the text cannot align."""
    return _ctc_scores(*_log_probs(recognizer, points, norm), texts, recognizer.config.alphabet)


MARGIN_CHARS = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ#")  # characters whose margin is checked
ALTERNATIVES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Characters written alike, whose margins say nothing of how well one was drawn: 0 and O,
# 1 and l, and capitals whose lowercase is the same shape smaller.
ALIKE = ["0Oo", "1lI", "Cc", "Oo", "Pp", "Ss", "Uu", "Vv", "Ww", "Xx", "Zz"]
MARGIN_AT = 5.0  # nats: a margin below this costs (margin_penalty)


def _rivals(c: str) -> str:
    """The characters a margin of c is taken against: every other letter and digit
    but those written alike."""
    alike = "".join(g for g in ALIKE if c in g)
    return "".join(a for a in ALTERNATIVES if a != c and a not in alike)


def margin_penalty(logp: torch.Tensor, nf: torch.Tensor, texts: list[str], alphabet: str,
                   nats: float, at: float = MARGIN_AT) -> np.ndarray:
    """(B,) <= 0: for each digit, capital or # of a text's last word, its margin m
    (log p(text) less the best log p of the text with that character replaced by
    another letter or digit: reader.substitute), and -nats * (at - m) where m < at."""
    index = {ch: i + 1 for i, ch in enumerate(alphabet)}
    rivals = {c: [index[a] for a in _rivals(c) if a in index] for c in MARGIN_CHARS if c in index}
    rivals = {c: r for c, r in rivals.items() if r}  # a reader of few characters may know no rival
    out = np.zeros(len(texts))
    groups: dict[str, list[int]] = {}
    for b, t in enumerate(texts):
        if any(ch in rivals for ch in t[t.rstrip().rfind(" ") + 1:]):
            groups.setdefault(t, []).append(b)
    if not groups:
        return out
    lp, n = logp.float().cpu().numpy(), nf.cpu().numpy()
    for t, rows in groups.items():
        first = t.rstrip().rfind(" ") + 1
        pos = [j for j in range(first, len(t)) if t[j] in rivals]
        ids = np.array([index[ch] for ch in t])
        sub = substitution_scores(lp[rows], n[rows], ids, pos)  # (G, J, V+1)
        own = sub[:, np.arange(len(pos)), ids[pos]]  # (G, J)
        best = np.stack([sub[:, k, rivals[t[j]]].max(1) for k, j in enumerate(pos)], 1)  # (G, J)
        m = np.where(np.isfinite(own), own - best, -np.inf)
        out[rows] = -nats * np.clip(at - m, 0.0, None).sum(1)
    return np.nan_to_num(out, nan=0.0, neginf=-1e9)


def _spelled(recognizer: Recognizer, points: list[np.ndarray], texts: list[str], norm, fill: float,
             margin: float = 0.0) -> np.ndarray:
    """read_scores (B,) of the texts the reader can spell (with margin > 0, plus
    margin_penalty); `fill` for the others."""
    alphabet = recognizer.config.alphabet
    known = set(alphabet)
    out = np.full(len(texts), fill)
    ok = [i for i, t in enumerate(texts) if set(t) <= known]
    if ok:
        logp, nf = _log_probs(recognizer, [points[i] for i in ok], norm)  # one reading for both
        mine = [texts[i] for i in ok]
        out[ok] = _ctc_scores(logp, nf, mine, alphabet)
        if margin > 0:
            out[ok] += margin_penalty(logp, nf, mine, alphabet, margin)
    return out


PLAIN_WORD = set("abcdefghijklmnopqrstuvwxyz,.")  # words the pen reader reads well alone


def newest_word_scores(picture: Recognizer, points: list[np.ndarray], texts: list[str], norm=None) -> np.ndarray:
    """(B,) log p(newest word | its picture) under a reader of pictures: each run of
    rows with one text (a line's candidates) shares its strokes up to where the newest
    word began (shape.shared_prefix), so only what follows is drawn and read, against
    the text's last word, less the run's best (so the best candidate's score is the
    pen reader's alone, and words.py's redo rule stays the pen reader's); 0 for a run
    of one row, a plain word (of PLAIN_WORD only: lowercase letters, commas and full
    stops) or one the reader cannot spell; about -1e9 for one it cannot align."""
    out = np.zeros(len(texts))
    runs, crops, words = [], [], []  # every run's newest words, read in one batch
    for text, run in itertools.groupby(range(len(texts)), key=texts.__getitem__):
        run, split = list(run), text.split()
        if len(run) < 2 or not split or set(split[-1]) <= PLAIN_WORD:
            continue
        group = [points[r] for r in run]
        k = max(shared_prefix(group) - 1, 0)  # the newest word's first offset starts on a shared point
        runs.append(run)
        crops += [p[k:] for p in group]
        words += [split[-1]] * len(run)
    if runs:
        rows = [r for run in runs for r in run]
        out[rows] = np.nan_to_num(_spelled(picture, crops, words, norm, 0.0), neginf=-1e9)
        for run in runs:  # relative to the run's best: ranks its candidates, never lowers the best
            out[run] -= out[run].max()
    return out


def scorer(recognizer: Recognizer, norm=None, cross: float = 0.0, margin: float = 0.0,
           picture: Recognizer | None = None, bars: float = 0.0):
    """read_scores as a words.Scorer; texts the reader cannot spell all score 0 (a tie).
    cross > 0: plus shape.crossing_penalty at `cross` nats per missing crossing;
    margin > 0: plus margin_penalty at `margin` nats per nat short; picture: plus
    newest_word_scores under that reader of pictures; bars > 0: plus
    bars.bar_penalty at `bars` nats per E or t without its bar (needs the φs)."""
    def score(points: list[np.ndarray], texts: list[str], phis: list | None = None) -> np.ndarray:
        out = _spelled(recognizer, points, texts, norm, 0.0, margin)
        unit = norm if norm is not None else ((0, 0), (1, 1))
        if cross > 0:
            out += crossing_penalty(points, texts, unit, cross)
        if bars > 0 and phis is not None:
            out += bar_penalty(points, phis, texts, unit, bars)
        if picture is not None:
            out += newest_word_scores(picture, points, texts, norm)
        return out
    return score


def legibility(recognizer: Recognizer, points: list[np.ndarray], texts: list[str], norm=None) -> np.ndarray:
    """How plainly each line spells its text to the reader: log p(text | strokes)
    per character (B,), nats; -inf for a text it cannot spell or align, or an
    empty one. points and norm as for read_scores."""
    chars = np.array([len(t) for t in texts], dtype=np.float64)
    whole = _spelled(recognizer, points, texts, norm, -np.inf)
    return np.where(chars > 0, whole / np.maximum(chars, 1), -np.inf)


def read_lines(recognizer: Recognizer, points: list[np.ndarray], norm=None) -> list[str]:
    """What the recognizer reads in written lines (best path)."""
    return greedy_decode(*_log_probs(recognizer, points, norm), recognizer.config.alphabet)


def choose(candidates: list[HandLine], C: int, recognizer: Recognizer, norm=None,
           cross: float = 0.0, margin: float = 0.0, picture: Recognizer | None = None,
           dots: float = 0.0, bars: float = 0.0) -> list[HandLine]:
    """candidates: C versions of each line, grouped (line 0's C, then line 1's, ...) -> one per line.
    norm: the synthesis model's (mean, std), see `_inputs`; cross, margin, picture, bars: see
    `scorer`; dots: nats a line loses when its closing '!' or '?' has no dot (lines.dotless_end)."""
    drawn = [i for i, c in enumerate(candidates) if len(c.points) > 0]
    scores = np.full(len(candidates), -np.inf)  # an empty line never wins
    if drawn:
        scores[drawn] = scorer(recognizer, norm, cross, margin, picture, bars)(
            [candidates[i].points for i in drawn], [candidates[i].text for i in drawn],
            [candidates[i].phi for i in drawn])
    if dots > 0:
        scores[drawn] -= dots * np.array([candidates[i].phi is not None and
                                          dotless_end(candidates[i].points, candidates[i].phi, candidates[i].text)
                                          for i in drawn], dtype=float)
    out = []
    for start in range(0, len(candidates), C):
        group = range(start, start + C)
        best = max(group, key=lambda i: (candidates[i].status == "ok", scores[i]))
        out.append(candidates[best])
    return out
