"""Batches of pen-stroke sequences for the handwriting models.

Sequences are bucketed by length (sorted, cut into batches, batch order
shuffled per epoch) so that little work is spent on padding; the order is a
function of (seed, epoch), so the data position is two integers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import GenseqError
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


def affine(points: np.ndarray, A: np.ndarray) -> np.ndarray:
    """(N, 3) offsets with their (dx, dy) mapped by A (2, 2); pen bits unchanged."""
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :2] = out[:, :2] @ np.asarray(A, np.float32).T
    return out


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


def affine_maps(sx, sy, slant, angle) -> np.ndarray:
    """(n,) stretches, slants and rotations (radians) -> (n, 2, 2) maps of pen
    offsets (scalars: one (2, 2) map), R(angle) @ [[sx, slant·sy], [0, sy]].
    Pen positions are mapped linearly, so their differences map the same way."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (n, 2, 2)
    M = np.stack([np.stack([sx, slant * sy], -1), np.stack([np.zeros_like(sy), sy], -1)], -2)  # (n, 2, 2)
    return R @ M


def augment_maps(rng: np.random.Generator, n: int, strength: float) -> np.ndarray:
    """n random maps (n, 2, 2) of pen offsets for training a handwriting model, one per line.

    Slant, rotation and the two stretches are drawn uniformly within strength
    times ±0.15, ±2° and ±10% (log). A line keeps its letters but not its
    writer's exact geometry, so the few examples of a rare character (each
    digit is written 36-227 times in IAM-OnDB's training lines) are harder to
    memorise. Strength 0 is the identity."""
    u = rng.uniform(-1.0, 1.0, (n, 4)) * strength
    return affine_maps(np.exp(0.1 * u[:, 2]), np.exp(0.1 * u[:, 3]), 0.15 * u[:, 0], math.radians(2.0) * u[:, 1])


def make_batch(split, index: list[int], cfg: HandwritingConfig, scale: float = 1.0,
               maps: np.ndarray | None = None) -> Batch:
    """maps: optional (B, 2, 2) affine maps of each line's offsets (augment_maps)."""
    samples = [split[i] for i in index]
    T = max(len(s.points) for s in samples) - 1
    B = len(samples)
    x = np.zeros((B, T, 3), np.float32)
    y = np.zeros((B, T, 3), np.float32)
    mask = np.zeros((B, T), np.float32)
    for b, s in enumerate(samples):
        p = normalise(s.points if maps is None else affine(s.points, maps[b]), cfg, scale)
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


class LineStream:
    """The training-data position of a task that reads whole lines in length-bucketed
    batches: (epoch, position), resumable, and sharded for data parallelism.

    Subclasses set `path`, `train_split`, `indices` (usable lines), `batch`, `seed`
    and call `_start(oversample)`; `next_index()` gives each step's line numbers."""

    oversample: tuple[str, int] | None = None
    salt: int = 0  # a file's number in a mix (hand.mixed.LineSource): its own random numbers

    def _start(self, oversample: tuple[str, int] | None = None) -> None:
        """oversample: (characters, factor), lines with any of them read factor times per pass."""
        if oversample is not None and int(oversample[1]) != 1:  # factor 1: every line once, as without
            oversample = ("".join(sorted(set(oversample[0]))), int(oversample[1]))
            self.indices = oversampled(self.indices, self.train_split.texts, *oversample)
        else:
            oversample = None
        self.oversample = oversample
        self.epoch, self.position = 0, 0
        self.rank, self.world = 0, 1
        self._batches = None

    def _oversample_list(self) -> list | None:
        return list(self.oversample) if self.oversample else None

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "batch": self.batch, "seed": self.seed,
                "sequences": len(self.indices), "oversample": self._oversample_list()}

    def load_state_dict(self, st: dict) -> None:
        now = self._oversample_list()
        if st.get("oversample") != now:  # another mix of lines: the data position would mean other lines
            was, new = (f"{o[0]!r} x{o[1]}" if o else "off" for o in (st.get("oversample"), now))
            raise GenseqError(f"cannot resume: --oversample was {was}, now {new}")
        # The epoch's batch list is a function of these: another value would read other data.
        for key, flag, now in (("batch", "--batch", self.batch), ("seed", "--seed", self.seed),
                               ("sequences", "--max-points (training lines)", len(self.indices))):
            if st.get(key, now) != now:
                raise GenseqError(f"cannot resume: {flag} was {st[key]}, now {now}")
        self.epoch, self.position = int(st["epoch"]), int(st["position"])
        self._batches = None

    def shard(self, rank: int, world: int) -> None:
        """Data parallelism: this process takes every world-th batch of each epoch's list,
        starting at its rank (the list is a function of seed and epoch, the same everywhere)."""
        n = -(-len(self.indices) // self.batch)  # batches per epoch
        if n < world:
            raise GenseqError(f"{self.path}: {n} batches per epoch, fewer than the {world} processes; "
                              "use a smaller --batch or fewer processes")
        self.rank, self.world = rank, world
        self._batches = None

    def _epoch_batches(self) -> list[np.ndarray]:
        batches = epoch_batches(self.train_split.lengths, self.indices, self.batch, self.seed, self.epoch)
        if self.world == 1:
            return batches
        # Every rank gets the same number, so all start the next epoch at the same step.
        return batches[self.rank::self.world][: len(batches) // self.world]

    def next_index(self) -> list[int]:
        """The next batch's line numbers; advances the data position."""
        if self._batches is None:
            self._batches = self._epoch_batches()
        if self.position >= len(self._batches):
            self.epoch, self.position = self.epoch + 1, 0
            self._batches = self._epoch_batches()
        idx = self._batches[self.position]
        self.position += 1
        return [int(i) for i in idx]

    def batch_rng(self) -> np.random.Generator:
        """Random numbers for the batch next_index() just gave: a function of
        (seed, epoch, position, rank) and, past the first file of a mix, the
        file's number, so a resumed run draws the same."""
        return np.random.default_rng([self.seed, self.epoch, self.position, self.rank]
                                     + ([self.salt] if self.salt else []))


def oversampled(indices: np.ndarray, texts, chars: str, factor: int) -> np.ndarray:
    """Training lines with any of `chars` in their text `factor` times, the rest once.

    For letters a model learns badly because they are rare (IAM-OnDB's
    training lines hold `x` 464 times in 290,704 characters, each digit 36-227
    times): epoch_batches jitters lengths by up to 10% before bucketing, so the
    copies of a line mostly land in different batches of an epoch."""
    if factor < 1:
        raise GenseqError("--oversample-factor must be 1 or more")
    wanted = set(chars)
    rare = np.asarray([i for i in indices if wanted & set(texts[i])], dtype=np.int64)
    return np.concatenate([indices] + [rare] * (factor - 1))


def data_scale(cfg: HandwritingConfig, data: str | Path, meta: dict | None = None) -> float:
    """Factor that brings `data`'s offsets to a model's units (cfg: any config
    with norm_std): the model's own (meta["scale"]) for data in the units it was
    trained on, else the ratio of the offset spreads (e.g. screen pixels from
    the capture page against IAM tablet units)."""
    with StrokeDataset(data) as ds:
        # Units that extend the model's own description (a corpus brought to IAM-OnDB's
        # units, "... (how)") are the model's units. Older recognizer files: no "scale", 1.
        if meta is not None and meta.get("units") and (ds.units == meta["units"]
                                                       or ds.units.startswith(meta["units"] + " (")):
            return float(meta.get("scale", 1.0))
        spread = float(np.mean(ds.norm_std))
    return float(np.mean(cfg.norm_std)) / spread if spread > 0 else 1.0


def open_dataset(path) -> StrokeDataset:
    return StrokeDataset(path)
