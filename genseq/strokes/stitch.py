"""Isolated characters stitched into lines of text.

UNIPEN's categories 1a-1d hold digits, capitals, lowercase letters and
symbols, each written alone. Trained on one at a time, a model would learn
that a line ends after one character, and nothing of how characters follow
each other. So each writer's characters are set side by side into lines of a
few words, the way printed digits and capitals are written anyway: one after
another, the pen lifted in between, on a common baseline.

Placement is by each character's bounding box, in units where the writer's
median digit or capital is `height` tall (y up):
- most characters stand on the baseline (bottom at 0);
- brackets are centred on half the height, so they reach below it;
- quotes, `^` and the backtick hang from the top (top at `height`);
- `+ - = * ~` are centred at half the height;
- characters below the baseline with no agreed extent (`, ; g j p q y`) are
  not stitched.
Letters in a word are a small gap apart, words a larger one (fractions of the
height, drawn per gap), and each character moves up or down a little, as a
hand does. No torch.
"""
from __future__ import annotations

import numpy as np

BELOW = set(",;gjpqy")  # no baseline rule: left out
CENTRED = set("()[]{}+-=*~")
TOP = set("'\"`^")
LETTER_GAP = (0.10, 0.30)  # x height, uniform
WORD_GAP = (0.50, 0.90)
JITTER = 0.04  # baseline wobble, x height
WORDS_PER_LINE = (2, 5)
WORD_LEN = (1, 6)


def stitchable(ch: str) -> bool:
    """Whether an isolated character has a placement rule."""
    return len(ch) == 1 and ch not in BELOW and " " < ch <= "~"


def in_proportion(ch: str, strokes: list[np.ndarray], height: float) -> bool:
    """Whether a character's height fits its writer's digit and capital
    `height`: digits and capitals 0.5-2x, lowercase 0.2-2x, symbols up to 3x
    (a dot or a dash may be flat). Some contributors mix units between ink
    files (a digit 70 times its writer's others): those are left out."""
    h = float(np.ptp(np.concatenate(strokes)[:, 1])) / height
    if ch.isdigit() or ch.isupper():
        return 0.5 <= h <= 2.0
    return 0.2 <= h <= 2.0 if ch.islower() else h <= 3.0


def sizing_height(chars: list[tuple[str, list[np.ndarray]]]) -> float | None:
    """The median height of a writer's digits and capitals (the size every
    hand writes them at), None without any."""
    hs = [np.ptp(np.concatenate(s)[:, 1]) for ch, s in chars if ch.isdigit() or ch.isupper()]
    hs = [h for h in hs if h > 0]
    return float(np.median(hs)) if hs else None


def _place(ch: str, strokes: list[np.ndarray], x: float, height: float, rng) -> tuple[list[np.ndarray], float]:
    """One character's strokes moved to start at x on the line; returns them and
    its right edge."""
    xy = np.concatenate(strokes)
    lo, hi = xy.min(0), xy.max(0)
    if ch in CENTRED:
        y = 0.5 * height - 0.5 * (lo[1] + hi[1])
    elif ch in TOP:
        y = height - hi[1]
    else:
        y = -lo[1]
    y += rng.uniform(-JITTER, JITTER) * height
    shift = np.array([x - lo[0], y])
    return [s + shift for s in strokes], x + (hi[0] - lo[0])


def _words(n: int, rng) -> list[list[int]]:
    """Word lengths for n characters, grouped into lines: [[len, ...], ...]."""
    lines, line, left = [], [], n
    per_line = rng.integers(WORDS_PER_LINE[0], WORDS_PER_LINE[1] + 1)
    while left > 0:
        k = min(int(rng.integers(WORD_LEN[0], WORD_LEN[1] + 1)), left)
        line.append(k)
        left -= k
        if len(line) == per_line:
            lines.append(line)
            line, per_line = [], rng.integers(WORDS_PER_LINE[0], WORDS_PER_LINE[1] + 1)
    if line:
        lines.append(line)
    return lines


def _order(chars: list[tuple[str, list[np.ndarray]]], rng) -> list[int]:
    """An order of the characters in which words mostly keep to one kind
    (digits, capitals, lowercase, symbols), as in "1994", "NASA", "#12": each
    kind shuffled, then runs of 1-6 of a kind interleaved at random."""
    kinds: dict[str, list[int]] = {}
    for i, (ch, _) in enumerate(chars):
        k = "d" if ch.isdigit() else "u" if ch.isupper() else "l" if ch.islower() else "s"
        kinds.setdefault(k, []).append(i)
    pools = [list(rng.permutation(v)) for v in kinds.values()]
    out: list[int] = []
    while pools:
        sizes = np.array([len(p) for p in pools], float)
        p = pools[rng.choice(len(pools), p=sizes / sizes.sum())]
        run = int(rng.integers(1, 7))
        out.extend(int(i) for i in p[:run])
        del p[:run]
        pools = [q for q in pools if q]
    return out


def stitch(chars: list[tuple[str, list[np.ndarray]]], height: float, rng) -> list[tuple[str, list, list[int]]]:
    """One writer's isolated, stitchable characters [(char, strokes (n, 2), y
    up)], sized so that `height` is their digits' and capitals' height ->
    lines [(text, strokes, indices of the characters used)], every character
    used once, in a random order and grouping (rng: numpy Generator)."""
    order = _order(chars, rng)
    lines, at = [], 0
    for words in _words(len(order), rng):
        x, text, strokes, used = 0.0, [], [], order[at:at + sum(words)]
        for w, k in enumerate(words):
            if w:
                x += rng.uniform(*WORD_GAP) * height
                text.append(" ")
            for j in range(k):
                ch, s = chars[order[at]]
                at += 1
                if j:
                    x += rng.uniform(*LETTER_GAP) * height
                placed, x = _place(ch, s, x, height, rng)
                strokes.extend(placed)
                text.append(ch)
        lines.append(("".join(text), strokes, used))
    return lines
