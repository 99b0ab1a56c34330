"""Batches of pen-stroke sequences for the handwriting models.

Sequences are bucketed by length (sorted, cut into batches, batch order
shuffled per epoch) so that little work is spent on padding; the order is a
function of (seed, epoch), so the data position is two integers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..strokes import StrokeDataset
from .model import HandwritingConfig, encode_text


@dataclass
class Batch:
    x: torch.Tensor          # (B, T, 3) normalised inputs: points 0..T-1
    y: torch.Tensor          # (B, T, 3) normalised targets: points 1..T
    mask: torch.Tensor       # (B, T) 1 for real targets
    text: torch.Tensor       # (B, U) character ids, 0 = padding
    text_mask: torch.Tensor  # (B, U)
    index: list[int]         # sequence numbers in the split

    def to(self, device) -> "Batch":
        return Batch(self.x.to(device), self.y.to(device), self.mask.to(device), self.text.to(device),
                     self.text_mask.to(device), self.index)


def normalise(points: np.ndarray, cfg: HandwritingConfig, scale: float = 1.0) -> np.ndarray:
    """(N, 3) data-unit offsets -> (N, 3) as the model sees them."""
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :2] = (out[:, :2] * scale - np.asarray(cfg.norm_mean, np.float32)) / np.asarray(cfg.norm_std, np.float32)
    return out


def usable(split, cfg: HandwritingConfig, max_points: int | None) -> np.ndarray:
    """Indices of sequences the model can train on: 2+ points, text in its alphabet, not too long."""
    allowed = set(cfg.alphabet)
    lengths = split.lengths
    keep = []
    for i, (n, text) in enumerate(zip(lengths, split.texts)):
        if n < 2 or (max_points and n > max_points):
            continue
        if cfg.kind == "synthesis" and (not text or not set(text) <= allowed):
            continue
        keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def make_batch(split, index: list[int], cfg: HandwritingConfig, scale: float = 1.0) -> Batch:
    samples = [split[i] for i in index]
    T = max(len(s.points) for s in samples) - 1
    B = len(samples)
    x = np.zeros((B, T, 3), np.float32)
    y = np.zeros((B, T, 3), np.float32)
    mask = np.zeros((B, T), np.float32)
    for b, s in enumerate(samples):
        p = normalise(s.points, cfg, scale)
        n = len(p) - 1
        x[b, :n], y[b, :n], mask[b, :n] = p[:-1], p[1:], 1.0
    if cfg.kind == "synthesis":
        ids = [encode_text(s.text, cfg.alphabet) for s in samples]
        U = max(len(i) for i in ids)
        text = torch.zeros(B, U, dtype=torch.long)
        for b, i in enumerate(ids):
            text[b, :len(i)] = i
    else:
        text = torch.zeros(B, 1, dtype=torch.long)
    return Batch(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask), text,
                 (text > 0).float(), list(index))


def epoch_batches(lengths: np.ndarray, indices: np.ndarray, batch: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Length-bucketed batches for one epoch, in a shuffled order fixed by (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    # Jitter the lengths a little so batches differ between epochs.
    keyed = lengths[indices] * rng.uniform(0.9, 1.1, len(indices))
    order = indices[np.argsort(keyed, kind="stable")]
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(batches)
    return batches


def eval_batches(lengths: np.ndarray, indices: np.ndarray, batch: int) -> list[np.ndarray]:
    order = indices[np.argsort(lengths[indices], kind="stable")]
    return [order[i:i + batch] for i in range(0, len(order), batch)]


def open_dataset(path) -> StrokeDataset:
    return StrokeDataset(path)
