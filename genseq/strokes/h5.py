"""The genseq stroke HDF5 layout: one writer (`write_strokes`), one reader
(`StrokeDataset`). The contract is written down in datasets/README.md.

A sequence is float32 (N, 3): row i = (dx, dy, pen_up) with
(dx, dy) = p_i - p_{i-1} (p_{-1} = p_0, so row 0 is (0, 0, e_0)), y growing
upwards, pen_up = 1 when p_i ends its stroke (Graves 2013 section 4).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Iterator

import h5py
import numpy as np

from ..atomic_h5 import atomic_h5
from ..errors import H5_ERRORS, GenseqError, first_line
from ..h5safe import check_local, check_stored
from .normalise import MAX_SHEAR

FORMAT = "genseq-strokes"
VERSION = 1
SPLITS = ("train", "val", "test")
_STR = h5py.string_dtype(encoding="utf-8")
_CHUNK_ROWS = 4096  # (P, 3) float32 chunks of 48 KiB: reading one line touches 1-2 chunks


@dataclass(frozen=True)
class Sample:
    """One handwritten line: `points` float32 (N, 3) = (dx, dy, pen_up)."""

    id: str
    text: str
    points: np.ndarray = field(repr=False)


def write_strokes(path: str | os.PathLike, splits: dict[str, list[Sample]], *,
                  source: str, terms: str, units: str, resample: str = "none") -> None:
    """Write `splits` (keys among train/val/test; missing ones are written empty)
    atomically to `path` in the layout of datasets/README.md."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise GenseqError(f"unknown split(s) {sorted(unknown)}; expected {list(SPLITS)}")
    with StrokeWriter(path, source=source, terms=terms, units=units, resample=resample) as w:
        for name, samples in splits.items():
            for s in samples:
                w.add(name, s)


class StrokeWriter:
    """Streaming form of `write_strokes` (the same single writer): `add()`
    appends one sample to a split, so converters never hold the whole
    dataset. The file appears at `path` only when the `with` block succeeds."""

    def __init__(self, path: str | os.PathLike, *, source: str, terms: str, units: str,
                 resample: str = "none", writer_shear: float | None = None):
        self.path = path
        self.attrs = {"source": source, "terms": terms, "units": units, "resample": resample}
        if writer_shear is not None:  # one writer's lines stood upright from this shear (strokes.normalise)
            self.attrs["writer_shear"] = float(writer_shear)
        self.counts = {name: 0 for name in SPLITS}

    def __enter__(self) -> "StrokeWriter":
        with contextlib.ExitStack() as stack:  # on an error here, atomic_h5 abandons the file
            self._f = stack.enter_context(atomic_h5(self.path))
            # Datasets stay open while the file is: a dataset whose close
            # writes and fails breaks HDF5 (genseq.atomic_h5).
            self._g, self._points, self._held = {}, {}, []
            for name in SPLITS:
                g = self._f.create_group(name)
                self._points[name] = g.create_dataset(
                    "points", shape=(0, 3), maxshape=(None, 3), dtype=np.float32, chunks=(_CHUNK_ROWS, 3),
                    compression="gzip", compression_opts=4, shuffle=True)
                self._g[name] = g
            self._out = stack.pop_all()  # all went well: the file stays open until __exit__
        self._offsets = {name: [0] for name in SPLITS}
        self._texts = {name: [] for name in SPLITS}
        self._ids = {name: [] for name in SPLITS}
        self._pending: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
        self._flushed = {name: 0 for name in SPLITS}
        self._chars: set[str] = set()
        self._sum = np.zeros(2)  # train sum of (dx, dy)
        self._sumsq = np.zeros(2)
        return self

    def add(self, split: str, s: Sample) -> None:
        if split not in SPLITS:
            raise GenseqError(f"unknown split {split!r}; expected {list(SPLITS)}")
        p = np.asarray(s.points, dtype=np.float32)  # (N, 3)
        if p.ndim != 2 or p.shape[1] != 3:
            raise GenseqError(f"sample {s.id!r}: points must be (N, 3), got {p.shape}")
        off = self._offsets[split]
        off.append(off[-1] + len(p))
        self._pending[split].append(p)
        if off[-1] - self._flushed[split] >= 16 * _CHUNK_ROWS:
            self._flush(split)
        self._texts[split].append(s.text)
        self._ids[split].append(s.id)
        self._chars.update(s.text)
        self.counts[split] += 1
        if split == "train":
            xy = p[:, :2].astype(np.float64)
            self._sum += xy.sum(axis=0)
            self._sumsq += (xy * xy).sum(axis=0)

    def _flush(self, split: str) -> None:
        # Write whole blocks: many small writes into gzip chunks are slow.
        if not self._pending[split]:
            return
        ds, a, b = self._points[split], self._flushed[split], self._offsets[split][-1]
        ds.resize(b, axis=0)
        ds[a:b] = np.concatenate(self._pending[split])
        self._pending[split], self._flushed[split] = [], b

    def __exit__(self, exc_type, exc, tb) -> None:
        """Finish and publish the file; on any failure (in the `with` block, or
        while finishing) abandon it, and raise a failed write as GenseqError."""
        if exc_type is not None:
            self._out.__exit__(exc_type, exc, tb)
            return
        with self._out:
            self._finish()

    def _finish(self) -> None:
        n = self._offsets["train"][-1]
        if n:
            mean = self._sum / n
            std = np.sqrt(np.maximum(self._sumsq / n - mean * mean, 0.0))
            std = np.where(std > 0, std, 1.0)
        else:
            mean, std = np.zeros(2), np.ones(2)
        f = self._f
        f.attrs["format"] = FORMAT
        f.attrs["version"] = VERSION
        f.attrs["alphabet"] = "".join(sorted(self._chars))
        f.attrs["norm_mean"] = mean.astype(np.float64)
        f.attrs["norm_std"] = std.astype(np.float64)
        for key, value in self.attrs.items():
            f.attrs[key] = value
        for name in SPLITS:
            g, off = self._g[name], self._offsets[name]
            self._flush(name)
            self._held += [  # open until the file is flushed: see genseq.atomic_h5
                g.create_dataset("offsets", data=np.asarray(off, dtype=np.int64)),  # (S+1,)
                g.create_dataset("texts", data=self._texts[name], dtype=_STR, shape=(len(off) - 1,)),
                g.create_dataset("ids", data=self._ids[name], dtype=_STR, shape=(len(off) - 1,))]


class StrokeSplit:
    """Read-only view of one split; `split[i]` reads only sequence i."""

    def __init__(self, name: str, group: h5py.Group):
        self.name = name
        self._points = group["points"]
        self.offsets = group["offsets"][()]  # (S+1,) int64
        self.texts: list[str] = [t.decode("utf-8") if isinstance(t, bytes) else t
                                 for t in group["texts"][()]]
        self.ids: list[str] = [t.decode("utf-8") if isinstance(t, bytes) else t
                               for t in group["ids"][()]]
        self.lengths = np.diff(self.offsets).astype(np.int64)  # (S,)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> Sample:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{self.name}: index {i} out of range for {n} sequences")
        i %= n
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        try:
            points = self._points[a:b]  # (N, 3) float32
        except H5_ERRORS as err:
            raise GenseqError(f"/{self.name}/points is damaged at sequence {i} ({first_line(err)})") from None
        if not np.isin(points[:, 2], (0.0, 1.0)).all():
            raise GenseqError(f"/{self.name}/points: sequence {i} has pen values other than 0 and 1 "
                              "(not a file genseq wrote)")
        return Sample(self.ids[i], self.texts[i], points)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]


class StrokeDataset:
    """Open a genseq stroke file read-only and validate its layout."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        if not os.path.exists(self.path):
            raise GenseqError(f"{self.path}: no such file")
        if os.path.isdir(self.path):
            raise GenseqError(f"{self.path}: is a folder, expected a stroke file (.h5)")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError:
            raise GenseqError(f"{self.path}: not an HDF5 file") from None
        try:
            self._validate()
            a = self._f.attrs
            self.alphabet: str = _s(a["alphabet"])
            self.norm_mean = np.asarray(a["norm_mean"], dtype=np.float64)  # (2,)
            self.norm_std = np.asarray(a["norm_std"], dtype=np.float64)  # (2,)
            self.source: str = _s(a["source"])
            self.terms: str = _s(a["terms"])
            self.units: str = _s(a["units"])
            self.resample: str = _s(a["resample"])
            self.version = int(a["version"])
            # One writer's lines, stood upright (strokes.normalise.stand_upright) from this shear; None: as written.
            self.writer_shear: float | None = float(a["writer_shear"]) if "writer_shear" in a else None
            self._splits = {name: StrokeSplit(name, self._f[name]) for name in SPLITS}
        except H5_ERRORS as err:  # a damaged file fails inside h5py in many ways
            self._f.close()
            raise GenseqError(f"{self.path}: damaged file ({first_line(err)})") from None
        except BaseException:
            self._f.close()
            raise

    def _validate(self) -> None:
        f, p = self._f, self.path
        if _s(f.attrs.get("format", "")) != FORMAT:
            raise GenseqError(f"{p}: not a genseq stroke file (attribute format != {FORMAT!r})")
        if not _is_int(f.attrs.get("version", -1)) or int(f.attrs.get("version", -1)) != VERSION:
            raise GenseqError(f"{p}: stroke file version {f.attrs.get('version')} is not supported "
                              f"(this genseq reads version {VERSION}); rebuild it with `genseq data`")
        for key in ("alphabet", "norm_mean", "norm_std", "source", "terms", "units", "resample"):
            if key not in f.attrs:
                raise GenseqError(f"{p}: attribute {key!r} is missing")
        for key in ("norm_mean", "norm_std"):
            value = f.attrs[key]
            if np.shape(value) != (2,) or np.asarray(value).dtype.kind not in "iuf" \
                    or not np.all(np.isfinite(value)):
                raise GenseqError(f"{p}: attribute {key!r} must be 2 finite numbers")
        if not np.all(np.asarray(f.attrs["norm_std"]) > 0):
            raise GenseqError(f"{p}: attribute 'norm_std' must be positive")
        if "writer_shear" in f.attrs:
            value = f.attrs["writer_shear"]
            if (np.shape(value) != () or np.asarray(value).dtype.kind not in "iuf"
                    or not abs(float(value)) <= MAX_SHEAR):
                raise GenseqError(f"{p}: attribute 'writer_shear' must be a number between "
                                  f"-{MAX_SHEAR} and {MAX_SHEAR}")
        for name in SPLITS:
            check_local(f, name, f"{p}: /{name}")
            g = f.get(name)
            if not isinstance(g, h5py.Group):
                raise GenseqError(f"{p}: group /{name} is missing")
            for key in ("points", "offsets", "texts", "ids"):
                check_local(g, key, f"{p}: /{name}/{key}")
            _check(g, "points", p, lambda d: d.ndim == 2 and d.shape[1] == 3 and d.dtype == np.float32,
                   "float32 (P, 3)")
            _check(g, "offsets", p, lambda d: d.ndim == 1 and d.dtype.kind in "iu", "int64 (S+1,)")
            for key in ("texts", "ids"):
                _check(g, key, p, lambda d: d.ndim == 1 and h5py.check_string_dtype(d.dtype) is not None,
                       "strings (S,)")
            for key in ("points", "offsets", "texts", "ids"):
                check_stored(g[key], f"{p}: /{name}/{key}", f)
            off = g["offsets"][()].astype(np.int64)  # unsigned differences would wrap round
            s = len(off) - 1
            if (s < 0 or off[0] != 0 or off[-1] != g["points"].shape[0]
                    or np.any(np.diff(off) < 0)):
                raise GenseqError(f"{p}: /{name}/offsets are inconsistent with /{name}/points")
            if g["texts"].shape[0] != s or g["ids"].shape[0] != s:
                raise GenseqError(f"{p}: /{name}: offsets, texts and ids disagree on the count")

    def split(self, name: str) -> StrokeSplit:
        if name not in self._splits:
            raise GenseqError(f"no split {name!r}; expected one of {list(SPLITS)}")
        return self._splits[name]

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "StrokeDataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _s(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _check(g: h5py.Group, key: str, path: str, ok, want: str) -> None:
    d = g.get(key)
    if not isinstance(d, h5py.Dataset) or not ok(d):
        raise GenseqError(f"{path}: /{g.name.strip('/')}/{key} is missing or not {want}")
