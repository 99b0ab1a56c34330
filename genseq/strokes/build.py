"""Shared tail of every converter: count what was kept and skipped, split by
group, write the HDF5 file, and print a summary."""
from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field

from ..errors import GenseqError
from .clean import CleanOptions, Skip
from .h5 import SPLITS, Sample, StrokeWriter
from .normalise import UPRIGHT, InkTarget, normalise_lines, stand_upright
from .split import auto_val_frac, group_fraction, split_of


@dataclass
class Report:
    """What a converter did. `details` holds (file or line, reason) per skip."""

    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    details: list = field(default_factory=list)
    chars: int = 0
    source_points: int = 0  # points in the source files of kept lines
    points: int = 0  # points written
    writer_shear: float | None = None  # the writer's slant the lines were stood upright from (ImportOptions.upright)
    upright: bool = False  # standing the lines upright was asked for
    split_counts: dict = field(default_factory=dict)

    def skip(self, where: str, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n
        self.details.append((where, reason))

    def keep(self, sample: Sample, source_points: int) -> None:
        self.kept += 1
        self.chars += len(sample.text)
        self.source_points += source_points
        self.points += len(sample.points)

    def reasons(self) -> str:
        """The skips by reason, e.g. `bad point 2, too large 1`."""
        return ", ".join(f"{r} {n}" for r, n in sorted(self.skipped.items()))

    def summary(self, verbose: bool = False) -> str:
        lines = []
        if verbose:
            lines += [f"skipped {where}: {reason}" for where, reason in self.details]
        total = sum(self.skipped.values())
        lines.append(f"kept {self.kept} lines, skipped {total}"
                     + (f": {self.reasons()}" if total else ""))
        if self.split_counts:
            lines.append("splits: " + ", ".join(f"{k} {self.split_counts.get(k, 0)}" for k in SPLITS))
        if self.chars:
            lines.append(f"points per character: {self.source_points / self.chars:.2f} in the source, "
                         f"{self.points / self.chars:.2f} written")
        if self.writer_shear is not None:
            lines.append(f"slant: {_degrees(self.writer_shear):.1f} degrees, stood upright to {UPRIGHT}")
        elif self.upright:
            lines.append("slant: not measurable, the lines kept as written")
        return "\n".join(lines)


class Builder:
    """Stream kept samples into a stroke file, each to the split of its group:

        with Builder(out, ...) as b:
            b.add(group, sample, source_points) / b.report.skip(where, reason)

    Raises GenseqError (and leaves no file) when nothing was kept."""

    def __init__(self, out: str | os.PathLike, *, val_frac: float, test_frac: float, seed: int,
                 source: str, terms: str, units: str, resample: str, fixed: dict[str, str] | None = None,
                 writer_shear: float | None = None):
        split_of("", val_frac, test_frac)  # check the fractions before any work
        self.fracs = (val_frac, test_frac, seed)
        self.report = Report()
        self._writer = StrokeWriter(out, source=source, terms=terms, units=units, resample=resample,
                                    writer_shear=writer_shear)
        self._split: dict[str, str] = dict(fixed or {})  # group -> split, where not split_of's

    def __enter__(self) -> "Builder":
        self._writer.__enter__()
        return self

    def add(self, group: str, sample: Sample, source_points: int) -> None:
        if group not in self._split:
            self._split[group] = split_of(group, *self.fracs)
        self._writer.add(self._split[group], sample)
        self.report.keep(sample, source_points)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self.report.kept:
            err = GenseqError("no usable lines: " + (self.report.summary() if self.report.skipped
                                                      else "the input holds none"))
            self._writer.__exit__(GenseqError, err, None)
            raise err
        self._writer.__exit__(exc_type, exc, tb)
        self.report.split_counts = dict(self._writer.counts)


@dataclass(frozen=True)
class ImportOptions:
    """Options of the JSONL and InkML importers. val_frac None = 5% once there
    are >= 20 distinct texts, else 0; terms None = the importer's default.
    target: bring all lines, as one writer's, to a model's ink (size, density,
    level baseline; genseq.strokes.normalise), whose data units are
    `target_units`; None keeps the source units and points."""

    val_frac: float | None = None
    test_frac: float = 0.0
    seed: int = 0
    clean: CleanOptions = CleanOptions()
    terms: str | None = None
    target: InkTarget | None = None
    target_units: str = ""
    upright: bool = False  # with target: stand the writer's lines upright (strokes.normalise.stand_upright)


def _degrees(k: float) -> float:
    """A shear x += k·y as the angle from the vertical it leans by."""
    return math.degrees(math.atan(k))


def one_val_group(groups: list[str], val_frac: float, test_frac: float, seed: int) -> dict[str, str]:
    """{group: "val"} for the training group nearest the val share when a val share
    is asked for but no group falls in it (a few dozen lines at 5% often get none,
    and training needs validation lines); else {}. Needs 2 or more training groups."""
    if val_frac <= 0:
        return {}
    splits = {g: split_of(g, val_frac, test_frac, seed) for g in dict.fromkeys(groups)}
    train = [g for g, s in splits.items() if s == "train"]
    if "val" in splits.values() or len(train) < 2:
        return {}
    return {min(train, key=lambda g: group_fraction(g, seed)): "val"}


def write_grouped(items: list, out, opts: ImportOptions, report: Report, *, source: str, units: str,
                  terms: str) -> Report:
    """Write (group, sample, source points, raw line) items, split by group; the
    shared tail of the importers. With opts.target the raw lines are normalised
    together first."""
    val = opts.val_frac if opts.val_frac is not None else auto_val_frac(len({it[0] for it in items}))
    resample = opts.clean.describe()
    if opts.target is not None and items:
        try:
            points = normalise_lines([it[3] for it in items], opts.target)
        except Skip as err:
            raise GenseqError(f"cannot normalise the ink ({err})") from None
        resample = f"the writer's ink {opts.target.describe()}"
        if opts.upright:
            report.upright = True
            points, report.writer_shear = stand_upright([(p, it[1].text) for p, it in zip(points, items)])
            if report.writer_shear is not None:
                resample += (f", sheared from a slant of {_degrees(report.writer_shear):.1f} degrees "
                             f"to {UPRIGHT}")
        items = [(g, Sample(s.id, s.text, p), n, raw) for (g, s, n, raw), p in zip(items, points)]
        units = f"{opts.target_units} (the writer's ink {opts.target.describe()})"
    builder = Builder(out, val_frac=val, test_frac=opts.test_frac, seed=opts.seed, source=source,
                      terms=opts.terms or terms, units=units, resample=resample,
                      fixed=one_val_group([it[0] for it in items], val, opts.test_frac, opts.seed),
                      writer_shear=report.writer_shear)
    builder.report = report
    with builder:
        for group, sample, n, _ in items:
            builder.add(group, sample, n)
    return report
