"""How well a reader reads: character error rate, exact lines, CTC NLL per
character, and which characters of a reference were read right."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..errors import GenseqError
from ..strokes import StrokeDataset
from ..strokes.batches import data_scale, eval_batches
from .data import line_batch, readable
from .model import Recognizer, ctc_nll, greedy_decode, out_frames


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (for character error rates)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_error_rate(refs: list[str], reads: list[str]) -> float:
    """Edits to turn each read into its reference, over all of them, per reference character."""
    return sum(edit_distance(r, h) for r, h in zip(refs, reads)) / sum(len(r) for r in refs)


def read_right(ref: str, hyp: str) -> list[bool]:
    """Per character of ref: read as itself in hyp, on a minimal edit alignment
    (Levenshtein; of the minimal ones, one with the most matches), where
    substitutions and deletions count as misread."""
    n, m = len(ref), len(hyp)
    # D[i][j] = (edits, -matches) aligning ref[:i] with hyp[:j], compared as tuples
    D = [[(i + j, 0) if i * j == 0 else (0, 0) for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            same = ref[i - 1] == hyp[j - 1]
            e, k = D[i - 1][j - 1]
            D[i][j] = min((e + (not same), k - same), (D[i - 1][j][0] + 1, D[i - 1][j][1]),
                          (D[i][j - 1][0] + 1, D[i][j - 1][1]))
    right, i, j = [False] * n, n, m
    while i > 0 and j > 0:  # walk back along that alignment
        same = ref[i - 1] == hyp[j - 1]
        e, k = D[i - 1][j - 1]
        if D[i][j] == (e + (not same), k - same):
            right[i - 1] = same
            i, j = i - 1, j - 1
        elif D[i][j] == (D[i - 1][j][0] + 1, D[i - 1][j][1]):
            i -= 1
        else:
            j -= 1
    return right


def read_split(model: Recognizer, split, indices, device, chars: str = "",
               scale: float = 1.0) -> tuple[dict, list[tuple[str, str]]]:
    """Read lines `indices` of a stroke split: CTC NLL per character, best-path
    error rate and exact lines, and the (reference, best path) pairs; with
    `chars`, also how many of those characters in the references were read
    right (chars_read / chars_seen, see read_right)."""
    total, counted, pairs = 0.0, 0, []
    with torch.no_grad():
        for chunk in eval_batches(split.lengths, np.asarray(indices), 32):
            lines = [split[int(i)] for i in chunk]
            x, n, text, u = (t.to(device) for t in line_batch([s.points for s in lines],
                                                             [s.text for s in lines], model.config, scale))
            logp = model(x, n)
            f = out_frames(model.config, x, n)
            nll = ctc_nll(logp, f, text, u)  # (B,); inf where an image reader's picture is too narrow
            fits = torch.isfinite(nll)
            total += float(nll[fits].sum())
            counted += int(u[fits].sum())
            pairs += list(zip([s.text for s in lines], greedy_decode(logp, f, model.config.alphabet)))
    n = sum(len(r) for r, _ in pairs)
    out = {"cer": char_error_rate(*zip(*pairs)),
           "lines_exact": sum(r == h for r, h in pairs) / len(pairs),
           "nll_per_char": total / counted if counted else math.inf, "chars": n, "lines": len(pairs)}
    if chars:
        hits = [ok for r, h in pairs if set(r) & set(chars) for c, ok in zip(r, read_right(r, h)) if c in chars]
        out.update(chars_seen=len(hits), chars_read=sum(hits),
                   chars_recall=sum(hits) / len(hits) if hits else None)
    return out, pairs


def evaluate_file(model: Recognizer, data: str | Path, split: str = "val", chars: str = "",
                  meta: dict | None = None) -> dict:
    """`genseq eval recognizer`: CTC NLL per character and best-path error rate on a
    split, and with `chars` the share of those characters read right. meta: the
    model file's, for the data scale (strokes.batches.data_scale)."""
    scale = data_scale(model.config, data, meta)
    with StrokeDataset(data) as ds:
        lines = ds.split(split)
        idx = readable(lines, model.config, None)
        if len(idx) == 0:
            raise GenseqError(f"{data}: no {split} line the recognizer can read")
        r = read_split(model, lines, idx, next(model.parameters()).device, chars, scale)[0]
    if not math.isfinite(r["nll_per_char"]):
        raise GenseqError(f"{data}: the {split} score is not a number: its lines hold non-finite offsets, "
                          "or the model's normalisation is broken")
    return r
