"""A user's own ink file, JSON Lines (datasets/jsonl) or InkML (datasets/inkml),
read line by line: to prime a model with (`--style-file`) or to choose the
lines a fine-tune carries. The suffix decides the format: `.inkml` is InkML,
anything else JSON Lines."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from ..errors import GenseqError
from .build import Report
from .clean import CleanOptions
from .h5 import Sample
from .inkml import inkml_items
from .jsonl import collect_samples, iter_jsonl
from .normalise import InkTarget

OWN_SUFFIXES = (".jsonl", ".inkml")
MAX_INKML_BYTES = 64 * 2**20  # an InkML file is parsed whole: a bound on the memory it takes


def is_inkml(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == ".inkml"


def iter_ink(path: str | os.PathLike, opts: CleanOptions, report: Report) -> Iterator[tuple]:
    """(group, sample, source points, raw line) per usable line of the file;
    skips go to `report`."""
    path = Path(path)
    if not is_inkml(path):
        yield from iter_jsonl(path, opts, report)
        return
    if path.is_file() and path.stat().st_size > MAX_INKML_BYTES:
        raise GenseqError(f"{path}: {path.stat().st_size / 2**20:,.0f} MiB; an InkML file of your own ink "
                          f"may have at most {MAX_INKML_BYTES // 2**20} MiB")
    yield from inkml_items([path], opts, report)


def read_ink(path: str | os.PathLike, opts: CleanOptions = CleanOptions(), target: InkTarget | None = None, *,
             max_lines: int | None = None, max_chars: int | None = None, report: Report | None = None) -> list[Sample]:
    """All usable lines of a JSON Lines or InkML file, as strokes.jsonl.read_jsonl
    returns them (normalised together to `target` when given); the lines left
    out are counted in `report` when one is given."""
    report = Report() if report is None else report
    return collect_samples(iter_ink(path, opts, report), path, report, target,
                           max_lines=max_lines, max_chars=max_chars)
