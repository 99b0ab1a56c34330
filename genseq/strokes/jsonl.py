"""Your own handwriting as JSON Lines (format: datasets/jsonl/README.md).

One object per line: {"text": str, "strokes": [[[x, y(, t(, pressure))], ...], ...],
"id": optional str, "y_up": optional bool}. y grows DOWNWARDS (screen
convention) unless "y_up" is true.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterator

from ..errors import GenseqError
from .build import ImportOptions, Report, write_grouped
from .clean import CleanOptions, Skip, clean_strokes
from .h5 import Sample

SOURCE = "genseq JSONL handwriting"
UNITS = "source units of the JSONL file (screen pixels for the capture page), y flipped to grow upwards"


JsonlOptions = ImportOptions  # the shared importer options (genseq.strokes.build)
TERMS = "the writer's own handwriting; terms set by the writer"


def _parse_line(line: str, where: str, opts: CleanOptions) -> tuple[Sample, int]:
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        raise Skip("invalid JSON") from None
    if not isinstance(obj, dict):
        raise Skip("not a JSON object")
    text, strokes = obj.get("text"), obj.get("strokes")
    if not isinstance(text, str):
        raise Skip("missing or non-string text")
    if not text.strip():
        raise Skip("empty text")
    if not isinstance(strokes, list):
        raise Skip("missing or non-list strokes")
    sid = obj.get("id", where)
    if not isinstance(sid, str) or not sid:
        raise Skip("non-string id")
    y_up = obj.get("y_up", False)
    if not isinstance(y_up, bool):
        raise Skip("y_up must be true or false")
    xy = []
    for stroke in strokes:
        if not isinstance(stroke, list):
            raise Skip("bad stroke")
        pts = []
        for p in stroke:
            if not isinstance(p, list) or not 2 <= len(p) <= 4:
                raise Skip("bad point")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p):
                raise Skip("non-numeric coordinate")
            if not all(math.isfinite(v) for v in p[:2]):
                raise Skip("non-finite coordinate")
            pts.append((float(p[0]), float(p[1])))
        xy.append(pts)
    # json.loads turns 1e999 into inf (caught above); huge finite values are caught in clean_strokes
    points = clean_strokes(xy, opts, y_down=not y_up)
    return Sample(sid, text, points), sum(len(s) for s in xy)


def _lines(fh) -> Iterator[bytes]:
    """The lines of a binary file, split at LF, CRLF or a lone CR (old Mac files)."""
    for chunk in fh:  # up to each LF
        yield from chunk.splitlines() or [b""]


def iter_jsonl(path: str | os.PathLike, opts: CleanOptions, report: Report):
    """Yield (group, sample, source_points) per usable line; skips go to `report`."""
    path = Path(path)
    try:
        fh = open(path, "rb")  # bytes, decoded line by line: the error names the right line
    except IsADirectoryError:
        raise GenseqError(f"{path}: is a folder, expected a .jsonl file") from None
    except FileNotFoundError:
        raise GenseqError(f"{path}: no such file") from None
    with fh:
        lineno = 0
        for raw in _lines(fh):
            lineno += 1
            where = f"{path.name}:{lineno}"
            try:
                line = raw.decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                raise GenseqError(f"{where}: not UTF-8 text") from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark
            if not line.strip():
                continue
            try:
                sample, n = _parse_line(line, where, opts)
            except Skip as err:
                report.skip(where, str(err))
                continue
            yield sample.text.strip().casefold(), sample, n


def read_jsonl(path: str | os.PathLike, opts: CleanOptions = CleanOptions()) -> list[Sample]:
    """All usable samples of a JSONL file, cleaned (e.g. to prime a model with
    a user's style). Raises GenseqError when none is usable."""
    report = Report()
    samples = [s for _, s, _ in iter_jsonl(path, opts, report)]
    if not samples:
        raise GenseqError(f"{path}: no usable lines" + (f" ({report.summary()})" if report.skipped else ""))
    return samples


def jsonl_line(text: str, strokes, *, id: str | None = None, y_up: bool = False) -> str:
    """One JSONL line (with the newline) for `strokes`: list of strokes, each a
    list of [x, y] / [x, y, t] / [x, y, t, pressure]. Validates like the reader."""
    obj = {"text": text, "strokes": [[[float(v) for v in p] for p in s] for s in strokes]}
    if id is not None:
        obj["id"] = id
    if y_up:
        obj["y_up"] = True
    try:
        line = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise GenseqError("strokes hold non-finite numbers") from None
    try:
        _parse_line(line, id or "new sample", CleanOptions())
    except Skip as err:
        raise GenseqError(f"unusable sample: {err}") from None
    return line + "\n"


def append_jsonl(path: str | os.PathLike, text: str, strokes, *, id: str | None = None,
                 y_up: bool = False) -> None:
    """Append one sample to a JSONL file (created if missing), e.g. from a capture page."""
    line = jsonl_line(text, strokes, id=id, y_up=y_up)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def convert_jsonl(paths, out: str | os.PathLike, opts: JsonlOptions = JsonlOptions()) -> Report:
    """Convert JSONL files to a genseq stroke file; groups are the texts."""
    report = Report()
    items = [it for p in paths for it in iter_jsonl(p, opts.clean, report)]
    return write_grouped(items, out, opts, report, source=SOURCE, units=UNITS, terms=TERMS)
