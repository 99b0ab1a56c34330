"""Training lines from one stroke file or several mixed by shares: the data
side of the handwriting and reader tasks (hand.task, reader.task).

Each file keeps its own data position (a LineSource: epoch, position), its
scale to the model's units, and its own validation split; a Mixer draws the
file of each batch from (seed, draw number) alone, so that a resumed run, and
every process of a data-parallel run, draw the same files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import GenseqError
from .batches import LineStream
from .h5 import StrokeDataset

# pick(split, max_points) -> indices of the lines a model can learn from
Pick = Callable[..., np.ndarray]


class LineSource(LineStream):
    """One stroke file's training lines as a stream of its own. `scale` brings
    the file's offsets to the model's units (batches.data_scale); `salt` (the
    file's number) makes its random numbers differ from the other files'."""

    def __init__(self, path: str | Path, data: StrokeDataset, pick: Pick, *, batch: int, seed: int,
                 max_points: int | None, scale: float, salt: int = 0,
                 oversample: tuple[str, int] | None = None):
        self.path, self.data, self.scale, self.salt = Path(path), data, scale, salt
        self.train_split, self.val_split = data.split("train"), data.split("val")
        self.batch, self.seed = batch, seed
        self.indices = pick(self.train_split, max_points)
        if len(self.indices) == 0:
            raise GenseqError(f"{path}: no training line fits the model (alphabet, length <= {max_points} points)")
        if len(pick(self.val_split, None)) == 0:
            raise GenseqError(f"{path} has no usable validation lines; rebuild it with a val split")
        self._start(oversample)


class Mixer:
    """Which file each batch of a mixed run comes from: file k with probability
    shares[k], drawn from (seed, draw number) alone."""

    def __init__(self, shares, seed: int):
        s = np.asarray(shares, dtype=np.float64)
        if s.ndim != 1 or len(s) == 0 or not np.all(np.isfinite(s)) or np.any(s < 0) or s.sum() <= 0:
            raise GenseqError(f"--mix must be non-negative numbers with a positive sum, got {list(shares)}")
        self.shares = s / s.sum()  # (F,)
        self.seed, self.draws = seed, 0

    def next(self) -> int:
        u = np.random.default_rng([self.seed, 7919, self.draws]).random()
        self.draws += 1
        return int(min(np.searchsorted(np.cumsum(self.shares), u, side="right"), len(self.shares) - 1))


def paths_of(data) -> list[Path]:
    return [Path(p) for p in (data if isinstance(data, (list, tuple)) else [data])]


class MixedLines:
    """The data position of a task on one or more stroke files (see the module
    docstring). A task calls `_open` in its constructor; `next_index()` gives a
    batch's line numbers in `self.last`, the file it was drawn from."""

    def _open(self, data, pick: Pick, *, scale, mix: list[float] | None, batch: int, seed: int,
              max_points: int | None, oversample: tuple[str, int] | None) -> None:
        paths = paths_of(data)
        scales = list(scale) if isinstance(scale, (list, tuple)) else [scale] * len(paths)
        if len(scales) != len(paths):
            raise GenseqError(f"{len(paths)} files but {len(scales)} scales")
        if len({p.resolve() for p in paths}) != len(paths):
            raise GenseqError("the same stroke file is given twice; use --mix to weight it")
        if mix is not None and len(mix) != len(paths):
            raise GenseqError(f"--mix has {len(mix)} shares for {len(paths)} files")
        self.batch, self.seed = batch, seed
        self.sources = [LineSource(p, StrokeDataset(p), pick, batch=batch, seed=seed, max_points=max_points,
                                   scale=s, salt=k, oversample=oversample)
                        for k, (p, s) in enumerate(zip(paths, scales))]
        if self.sources[0].oversample and not any(s.oversampled_lines for s in self.sources):
            raise GenseqError(f"--oversample: no training line holds any of {self.sources[0].oversample[0]!r}")
        self.mixer = Mixer(mix if mix is not None else [len(s.indices) for s in self.sources], seed)
        self.last = self.sources[0]
        names = [p.name for p in paths]  # in metrics and meta: the files' names, as given if two share one
        self.labels = names if len(set(names)) == len(names) else [str(p) for p in paths]

    # The first file's view, for callers that know one file.
    @property
    def path(self) -> Path:
        return self.sources[0].path

    @property
    def data(self) -> StrokeDataset:
        return self.sources[0].data

    @property
    def train_split(self):
        return self.sources[0].train_split

    @property
    def val_split(self):
        return self.sources[0].val_split

    @property
    def scale(self) -> float:
        return self.sources[0].scale

    @property
    def indices(self) -> np.ndarray:
        return self.sources[0].indices

    def files_meta(self) -> dict:
        """What a model file records of its data; per file with several."""
        first = self.data
        out = {"data": self.path.name, "source": first.source, "terms": first.terms, "units": first.units,
               "resample": first.resample, "scale": self.scale, "oversample": self.sources[0]._oversample_list()}
        if len(self.sources) > 1:
            ds = [s.data for s in self.sources]
            out.update(data=" + ".join(self.labels), source=" + ".join(d.source for d in ds),
                       terms=" ".join(dict.fromkeys(d.terms for d in ds)),
                       files=[{"data": name, "source": s.data.source, "units": s.data.units,
                               "resample": s.data.resample, "scale": s.scale}
                              for name, s in zip(self.labels, self.sources)],
                       mix=self.mixer.shares.tolist())
        return out

    def state_dict(self) -> dict:
        if len(self.sources) == 1:
            return self.sources[0].state_dict()
        return {"sources": [s.state_dict() for s in self.sources], "draws": self.mixer.draws,
                "mix": self.mixer.shares.tolist()}

    def load_state_dict(self, st: dict) -> None:
        saved = st.get("sources", [st])
        if len(saved) != len(self.sources):
            raise GenseqError(f"cannot resume: the run read {len(saved)} stroke file(s), now {len(self.sources)}")
        if "mix" in st and not np.allclose(st["mix"], self.mixer.shares):
            raise GenseqError(f"cannot resume: --mix was {st['mix']}, now {self.mixer.shares.tolist()}")
        for src, s in zip(self.sources, saved):
            src.load_state_dict(s)
        self.mixer.draws = int(st.get("draws", 0))

    def shard(self, rank: int, world: int) -> None:
        for s in self.sources:
            s.shard(rank, world)

    def next_index(self) -> list[int]:
        """The next batch's line numbers, in the file the mixer drew (`self.last`)."""
        self.last = self.sources[self.mixer.next() if len(self.sources) > 1 else 0]
        return self.last.next_index()

    def batch_rng(self) -> np.random.Generator:
        """Random numbers for the batch next_index() just gave (LineStream.batch_rng)."""
        return self.last.batch_rng()


def data_alphabet(data) -> str:
    """The characters of one stroke file, or the union of several (first file first)."""
    out: dict[str, None] = {}
    for p in paths_of(data):
        with StrokeDataset(p) as ds:
            out.update(dict.fromkeys(ds.alphabet))
    return "".join(out)
