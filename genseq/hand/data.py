"""Batches of pen-stroke sequences for the handwriting models.

Which lines go together, and the data position, are strokes.batches' (shared
with the reader); here a batch of lines becomes the model's tensors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..strokes.batches import affine, affine_maps
from ..strokes.clean import MAX_TEXT_CHARS
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


def normalise(points: np.ndarray, config: HandwritingConfig, scale: float = 1.0) -> np.ndarray:
    """(N, 3) data-unit offsets -> (N, 3) as the model sees them."""
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :2] = (out[:, :2] * scale - np.asarray(config.norm_mean, np.float32)) / np.asarray(config.norm_std, np.float32)
    return out


def usable(split, config: HandwritingConfig, max_points: int | None) -> np.ndarray:
    """Indices of sequences the model can train on: 2+ points, text in its alphabet, not too long."""
    allowed = set(config.alphabet)
    lengths = split.lengths
    keep = []
    for i, (n, text) in enumerate(zip(lengths, split.texts)):
        if n < 2 or (max_points and n > max_points):
            continue
        if config.kind == "synthesis" and (not text or len(text) > MAX_TEXT_CHARS or not set(text) <= allowed):
            continue  # (a text over MAX_TEXT_CHARS: a small file that would take gigabytes as one-hot windows)
        keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def augment_maps(rng: np.random.Generator, n: int, strength: float) -> np.ndarray:
    """n random maps (n, 2, 2) of pen offsets for training a handwriting model, one per line.

    Slant, rotation and the two stretches are drawn uniformly within strength
    times ±0.15, ±2° and ±10% (log). A line keeps its letters but not its
    writer's exact geometry, so the few examples of a rare character (each
    digit is written 36-227 times in IAM-OnDB's training lines) are harder to
    memorise. Strength 0 is the identity."""
    u = rng.uniform(-1.0, 1.0, (n, 4)) * strength
    return affine_maps(np.exp(0.1 * u[:, 2]), np.exp(0.1 * u[:, 3]), 0.15 * u[:, 0], math.radians(2.0) * u[:, 1])


def make_batch(split, index: list[int], config: HandwritingConfig, scale: float = 1.0,
               maps: np.ndarray | None = None) -> Batch:
    """maps: optional (B, 2, 2) affine maps of each line's offsets (augment_maps)."""
    samples = [split[i] for i in index]
    T = max(len(s.points) for s in samples) - 1
    B = len(samples)
    x = np.zeros((B, T, 3), np.float32)
    y = np.zeros((B, T, 3), np.float32)
    mask = np.zeros((B, T), np.float32)
    for b, s in enumerate(samples):
        p = normalise(s.points if maps is None else affine(s.points, maps[b]), config, scale)
        n = len(p) - 1
        x[b, :n], y[b, :n], mask[b, :n] = p[:-1], p[1:], 1.0
    if config.kind == "synthesis":
        ids = [encode_text(s.text, config.alphabet) for s in samples]
        U = max(len(i) for i in ids)
        text = torch.zeros(B, U, dtype=torch.long)
        for b, i in enumerate(ids):
            text[b, :len(i)] = i
    else:
        text = torch.zeros(B, 1, dtype=torch.long)
    return Batch(torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(mask), text,
                 (text > 0).float(), list(index))
