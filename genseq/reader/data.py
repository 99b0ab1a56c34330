"""The reader's lines: which a reader can learn from, the random distortion of
training lines, and lines as the reader's tensors."""
from __future__ import annotations

import numpy as np
import torch

from ..strokes.batches import affine, affine_maps
from ..strokes.clean import MAX_TEXT_CHARS
from .model import RecognizerConfig, encode_texts, frames


def ctc_fits(n_points: int, text: str, stride: int) -> bool:
    """CTC needs a frame per character plus one blank between equal neighbours."""
    repeats = sum(a == b for a, b in zip(text, text[1:]))
    return len(text) > 0 and int(frames(torch.tensor(n_points), stride)) >= len(text) + repeats


def readable(split, config: RecognizerConfig, max_points: int | None) -> np.ndarray:
    """Indices of lines the recognizer can learn from: text in its alphabet, alignable
    (a pen reader's; an image reader's width is known once drawn), not too long."""
    allowed = set(config.alphabet)
    keep = [i for i, (n, text) in enumerate(zip(split.lengths, split.texts))
            if (not max_points or n <= max_points) and len(text) <= MAX_TEXT_CHARS and set(text) <= allowed
            and text and (config.input == "image" or ctc_fits(int(n), text, config.stride))]
    return np.asarray(keep, dtype=np.int64)


def distort(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3) offsets -> the same strokes under a random scale, slant and rotation."""
    sx = np.exp(rng.uniform(-0.15, 0.15))
    sy = sx * np.exp(rng.uniform(-0.1, 0.1))
    slant, angle = rng.uniform(-0.3, 0.3), rng.uniform(-0.05, 0.05)
    return affine(points, affine_maps(sx, sy, slant, angle))


def line_batch(points: list[np.ndarray], texts: list[str], config: RecognizerConfig, scale: float = 1.0):
    """Data-unit lines -> x (B, T, 3) normalised, lengths (B,), ids (B, U), text lengths (B,).
    scale: data units -> the model's units (strokes.batches.data_scale)."""
    B, T = len(points), max(len(p) for p in points)
    x = np.zeros((B, T, 3), np.float32)
    std = np.asarray(config.norm_std, np.float32) / np.float32(scale)
    for b, p in enumerate(points):
        x[b, : len(p), :2] = p[:, :2] / std
        x[b, : len(p), 2] = p[:, 2]
    text, text_lengths = encode_texts(texts, config.alphabet)  # (B, U), (B,)
    return torch.from_numpy(x), torch.tensor([len(p) for p in points]), text, text_lengths
