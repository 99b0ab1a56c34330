"""Training lines of a stroke file, shared by the handwriting models and the
reader: length-bucketed batches, a resumable data position, the affine maps
that distort lines for training, and the scale that brings a file's offsets to
a model's units.

Sequences are bucketed by length (sorted, cut into batches, batch order
shuffled per epoch) so that little work is spent on padding; the order is a
function of (seed, epoch), so the data position is two integers.
"""
from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np

from ..errors import GenseqError
from .h5 import StrokeDataset


def affine(points: np.ndarray, A: np.ndarray) -> np.ndarray:
    """(N, 3) offsets with their (dx, dy) mapped by A (2, 2); pen bits unchanged."""
    out = np.array(points, dtype=np.float32, copy=True)
    out[:, :2] = out[:, :2] @ np.asarray(A, np.float32).T
    return out


def affine_maps(sx, sy, slant, angle) -> np.ndarray:
    """(n,) stretches, slants and rotations (radians) -> (n, 2, 2) maps of pen
    offsets (scalars: one (2, 2) map), R(angle) @ [[sx, slant·sy], [0, sy]].
    Pen positions are mapped linearly, so their differences map the same way."""
    c, s = np.cos(angle), np.sin(angle)
    R = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (n, 2, 2)
    M = np.stack([np.stack([sx, slant * sy], -1), np.stack([np.zeros_like(sy), sy], -1)], -2)  # (n, 2, 2)
    return R @ M


def check_oversample(oversample) -> tuple[str, int]:
    """(characters, factor) as given from Python -> the same, checked (a GenseqError otherwise)."""
    ok = isinstance(oversample, (tuple, list)) and len(oversample) == 2
    chars, factor = oversample if ok else (None, None)
    if not (ok and isinstance(chars, str) and chars and isinstance(factor, numbers.Integral) and not isinstance(factor, bool)
            and factor >= 1):
        raise GenseqError(f"oversample must be (characters, factor), e.g. ('xz', 4), with a factor of 1 or more; "
                          f"got {oversample!r}")
    return chars, int(factor)


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
    salt: int = 0  # a file's number in a mix (mixed.LineSource): its own random numbers

    def _start(self, oversample: tuple[str, int] | None = None) -> None:
        """oversample: (characters, factor), lines with any of them read factor times per pass."""
        if oversample is not None:
            oversample = check_oversample(oversample)
        self.oversampled_lines = 0  # training lines holding one of the oversampled characters
        if oversample is not None and oversample[1] != 1:  # factor 1: every line once, as without
            oversample = ("".join(sorted(set(oversample[0]))), oversample[1])
            before = len(self.indices)
            self.indices = oversampled(self.indices, self.train_split.texts, *oversample)
            self.oversampled_lines = (len(self.indices) - before) // (oversample[1] - 1)
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
                               ("sequences", "the number of training lines", len(self.indices))):
            if st.get(key, now) != now:
                why = " (another stroke file, or another --max-points)" if key == "sequences" else ""
                raise GenseqError(f"cannot resume: {flag} was {st[key]}, now {now}{why}")
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


def data_scale(config, data: str | Path, meta: dict | None = None) -> float:
    """Factor that brings `data`'s offsets to a model's units (config: any config
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
    return float(np.mean(config.norm_std)) / spread if spread > 0 else 1.0
