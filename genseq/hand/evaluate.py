"""Held-out negative log-likelihood of a handwriting model, in data units.

The model's density is over normalised offsets u = (d - mean) / std, so in
data units (the HDF5 file's units, e.g. IAM tablet units after any
resampling) p(d) = p(u) / (std_x * std_y): each predicted point adds
log(std_x) + log(std_y) nats. The end-of-stroke bit is discrete and needs no
correction. Data in other units (screen pixels) is first multiplied by a
scale factor s, which adds -2 log s per point. Each sequence of N points scores its N - 1 predicted points (the
first point has nothing before it). Scores of models with different
normalisations are therefore comparable on the same HDF5 file; models trained
on differently resampled files see different point sets, so compare those on
nll_per_sequence of one file only.

Some classes are written with longer pen steps than others (capitals, larger
and faster strokes), and a longer step costs more nats in data units: in
polar coordinates with the log of the step length,
-log p(dx, dy) = -log p(log r, θ) + 2 log r for a step of length r.
`--by-class` also reports each class's NLL in those coordinates
("size-free": the NLL minus 2 log r per point, over the points where the pen
moved), which compares classes without their step lengths.

Where a character stands matters as much: the first letter of a line costs
more than any other (nothing tells where the pen starts), the first of a word
more than one inside it (where the word starts after the gap). Capitals stand
first far more often than lowercase letters, so each class is also split by
POSITIONS, and compared with lowercase letters at its own positions:
Σ_p w_p (NLL_p - NLL_lower,p), w_p the share of the class's points at position
p ("vs_lower_same_positions").
"""
from __future__ import annotations

import math

import torch

from ..errors import GenseqError
from ..strokes.batches import eval_batches
from ..strokes.split import spread
from .data import make_batch, usable
from .mdn import mdn_nll
from .model import HandwritingModel


CLASSES = ("lower", "upper", "digit", "space", "punct")
POSITIONS = ("line_start", "word_start", "in_word")  # the text's first character, one after a space, any other


def char_class(ch: str) -> str:
    """One of CLASSES: digit, space, capital, other letter (lowercase or caseless), anything else."""
    if ch.isdigit():
        return "digit"
    if ch.isspace():
        return "space"
    return "upper" if ch.isupper() else "lower" if ch.isalpha() else "punct"


def _groups(phi, text, cls, spaces):
    """The class and position of the most attended character at each step, as one
    index class * len(POSITIONS) + position, (B, T) long; and (B, T) bool, whether the
    window attends to anything there. phi (B, T, U), text (B, U) ids; cls (V + 1,)
    id -> class index; spaces (V + 1,) bool, id -> is a space."""
    at = phi.argmax(2)  # (B, T) attended position
    after_space = spaces[text.gather(1, (at - 1).clamp(min=0))]
    pos = torch.where(at == 0, 0, torch.where(after_space, 1, 2))  # (B, T) index into POSITIONS
    return cls[text.gather(1, at)] * len(POSITIONS) + pos, phi.amax(2) > 0


def _class_sums(groups, attends, mask, nll):
    """NLL summed and points counted per class and position (C, P), from `_groups`;
    mask (B, T), nll (B, T). Points where the window attends to nothing are left out."""
    keep = (mask > 0) & attends  # (B, T)
    group = groups[keep].cpu()  # (N,)
    size = len(CLASSES) * len(POSITIONS)
    sums = torch.zeros(size, dtype=torch.float64).index_add_(0, group, nll[keep].double().cpu())
    counts = torch.bincount(group, minlength=size)
    return sums.view(len(CLASSES), -1), counts.view(len(CLASSES), -1)


def _per_point(total: float, n: int, log_std: float) -> float | None:
    return total / n + log_std if n > 0 else None


def _vs_lower(nll, n, k: int) -> float | None:
    """Σ_p w_p (nll[k, p] - nll[lower, p]) over the positions where class k and lowercase
    both have points, w_p the share of class k's points there (of its points at
    those positions); nll, n (C, P). None for lowercase and spaces."""
    low = CLASSES.index("lower")
    both = [p for p in range(len(POSITIONS)) if n[k, p] > 0 and n[low, p] > 0]
    if k in (low, CLASSES.index("space")) or not both:  # a space stands between words, never in one
        return None
    return sum(int(n[k, p]) * (float(nll[k, p]) / int(n[k, p]) - float(nll[low, p]) / int(n[low, p]))
               for p in both) / sum(int(n[k, p]) for p in both)


def step_log_length(y: torch.Tensor, norm_mean, norm_std, scale: float) -> torch.Tensor:
    """log r of each target step in data units, (B, T) from normalised targets y
    (B, T, 3); -inf where the pen did not move (r below 1e-5 of the
    normalisation's |mean| + std: a zero step comes back from float32 far
    below that, a real one far above)."""
    mean = torch.tensor(norm_mean, dtype=torch.float64, device=y.device)
    std = torch.tensor(norm_std, dtype=torch.float64, device=y.device)
    d = (y[..., :2].double() * std + mean) / scale  # (B, T, 2) data units
    r = d.norm(dim=-1)
    tiny = 1e-5 * float((mean.abs() + std).sum()) / scale
    return torch.where(r > tiny, torch.log(r), torch.tensor(-math.inf, dtype=torch.float64, device=y.device))


def evaluate_split(model: HandwritingModel, split, device, batch: int = 32, scale: float = 1.0,
                   max_sequences: int | None = None, by_class: bool = False) -> dict:
    """by_class (synthesis): also the NLL per point of the points written while
    the window attends most to a character of each class (CLASSES), under
    "classes": a character class the model fits on the training lines but
    scores worse on held-out ones is one it memorised. Points where the window
    attends to nothing at all (possible only far past the text) are in no class.
    Each class also gets its size-free NLL per point over the points where the
    pen moved, both by POSITIONS, and its difference from lowercase letters at
    its own positions (the module's docstring)."""
    config = model.config
    if by_class and config.kind != "synthesis":
        raise GenseqError("--by-class needs a synthesis model (it reads the attention window)")
    idx = spread(usable(split, config, None), max_sequences)  # a file ordered by writer: every writer a share
    log_std = math.log(config.norm_std[0]) + math.log(config.norm_std[1]) - 2 * math.log(scale)
    total, points = 0.0, 0
    # (V + 1,) character id -> class index; id 0 (padding) is never attended
    cls = torch.tensor([0] + [CLASSES.index(char_class(c)) for c in config.alphabet], device=device)
    spaces = torch.tensor([False] + [c.isspace() for c in config.alphabet], device=device)
    cls_nll = torch.zeros(len(CLASSES), len(POSITIONS), dtype=torch.float64)
    cls_n = torch.zeros(len(CLASSES), len(POSITIONS), dtype=torch.long)
    free_nll, free_n = torch.zeros_like(cls_nll), torch.zeros_like(cls_n)  # the same where the pen moved, size-free
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for chunk in eval_batches(split.lengths, idx, batch):
                b = make_batch(split, list(chunk), config, scale).to(device)
                params, _, extras = model(b.x, b.text, b.text_mask)
                nll = mdn_nll(params, b.y, b.mask)                 # (B, T), normalised units
                n = float(b.mask.sum())
                total += float(nll.sum()) + n * log_std
                points += int(n)
                if by_class:
                    groups, attends = _groups(extras["phi"], b.text, cls, spaces)
                    sums, counts = _class_sums(groups, attends, b.mask, nll)
                    cls_nll += sums
                    cls_n += counts
                    log_r = step_log_length(b.y, config.norm_mean, config.norm_std, scale)  # (B, T)
                    moved = b.mask * torch.isfinite(log_r)
                    sums, counts = _class_sums(groups, attends, moved,
                                               nll.double() - 2 * torch.nan_to_num(log_r, neginf=0.0))
                    free_nll += sums
                    free_n += counts
    finally:
        model.train(was_training)
    sequences = len(idx)
    out = {"nll_per_point": total / max(points, 1), "nll_per_sequence": total / max(sequences, 1),
           "points": points, "sequences": sequences}
    if by_class:
        out["classes"] = {}
        for k, name in enumerate(CLASSES):
            if cls_n[k].sum() == 0:
                continue
            at = {pos: {"nll_per_point": _per_point(float(cls_nll[k, p]), int(cls_n[k, p]), log_std),
                        "points": int(cls_n[k, p]),
                        "size_free_nll_per_point": _per_point(float(free_nll[k, p]), int(free_n[k, p]), log_std),
                        "moving_points": int(free_n[k, p])}
                  for p, pos in enumerate(POSITIONS) if cls_n[k, p] > 0}
            out["classes"][name] = {
                "nll_per_point": _per_point(float(cls_nll[k].sum()), int(cls_n[k].sum()), log_std),
                "points": int(cls_n[k].sum()),
                "size_free_nll_per_point": _per_point(float(free_nll[k].sum()), int(free_n[k].sum()), log_std),
                "moving_points": int(free_n[k].sum()),
                "positions": at,
                "vs_lower_same_positions": _vs_lower(cls_nll, cls_n, k),
                "size_free_vs_lower_same_positions": _vs_lower(free_nll, free_n, k)}
    return out


def evaluate_file(hm, data, split: str = "val", by_class: bool = False, max_sequences: int | None = None) -> dict:
    """`genseq eval handwriting`: score a loaded model (write.HandModel) on a split of a stroke file."""
    from ..strokes import StrokeDataset
    from ..strokes.batches import data_scale
    scale = data_scale(hm.config, data, hm.meta)
    with StrokeDataset(data) as ds:
        r = evaluate_split(hm.model, ds.split(split), next(hm.model.parameters()).device, scale=scale,
                           by_class=by_class, max_sequences=max_sequences)
    if r["sequences"] == 0:
        raise GenseqError(f"{data}: no {split} sequence the model can score")
    if not math.isfinite(r["nll_per_point"]):
        raise GenseqError(f"{data}: the {split} score is not a number: its lines hold non-finite offsets, "
                          "or the model's normalisation is broken")
    return r
