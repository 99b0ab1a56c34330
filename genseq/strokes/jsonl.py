"""Your own handwriting as JSON Lines (format: datasets/jsonl/README.md).

One object per line: {"text": str, "strokes": [[[x, y(, t(, pressure))], ...], ...],
"id": optional str, "y_up": optional bool}. y grows DOWNWARDS (screen
convention) unless "y_up" is true.
"""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import GenseqError
from .build import ImportOptions, Report, write_grouped
from .clean import CleanOptions, Skip, check_text, clean_strokes, safe_id
from .h5 import Sample
from .normalise import InkTarget, RawLine, normalise_lines

SOURCE = "genseq JSONL handwriting"
UNITS = "source units of the JSONL file (screen pixels for the capture page), y flipped to grow upwards"


JsonlOptions = ImportOptions  # the shared importer options (genseq.strokes.build)
TERMS = "the writer's own handwriting; terms set by the writer"


def parse_point(p) -> tuple[float, ...]:
    """One point of a line, as JSON gives it: [x, y], [x, y, t] or [x, y, t, pressure]
    of numbers -> a tuple of floats. The one point check of the format: the
    reader and the capture page (genseq.capture.session) both use it, so a line
    the page saves is a line the reader accepts. Raises Skip: `bad point`,
    `non-numeric coordinate`, `huge coordinate` (a number beyond a float, such
    as a 400-digit integer), `non-finite coordinate` (x or y NaN or infinite;
    a non-finite t only makes the line untimed)."""
    if not isinstance(p, list) or not 2 <= len(p) <= 4:
        raise Skip("bad point")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p):
        raise Skip("non-numeric coordinate")
    try:
        q = tuple(float(v) for v in p)  # an int too large for a float raises OverflowError
    except OverflowError:
        raise Skip("huge coordinate") from None
    if not (math.isfinite(q[0]) and math.isfinite(q[1])):
        raise Skip("non-finite coordinate")
    return q


def _parse_line(line: str, where: str, opts: CleanOptions) -> tuple[Sample, int]:
    sample, n, _ = _parse_raw(line, where, opts)
    return sample, n


def _parse_raw(line: str, where: str, opts: CleanOptions) -> tuple[Sample, int, RawLine]:
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError, and an integer of over 4,300 digits
        raise Skip("invalid JSON") from None
    if not isinstance(obj, dict):
        raise Skip("not a JSON object")
    text, strokes = obj.get("text"), obj.get("strokes")
    if not isinstance(text, str):
        raise Skip("missing or non-string text")
    if not text.strip():
        raise Skip("empty text")
    check_text(text)
    if not isinstance(strokes, list):
        raise Skip("missing or non-list strokes")
    if len(strokes) > MAX_STROKES:
        raise Skip(f"more than {MAX_STROKES:,} strokes")
    sid = obj.get("id", where)
    if not isinstance(sid, str) or not sid:
        raise Skip("non-string id")
    sid = safe_id(sid)
    y_up = obj.get("y_up", False)
    if not isinstance(y_up, bool):
        raise Skip("y_up must be true or false")
    xy, times = [], []  # per stroke: (n, 2) x, y and (n,) t, NaN where a point has none
    for stroke in strokes:
        if not isinstance(stroke, list):
            raise Skip("bad stroke")
        a = _plain_stroke(stroke)
        if a is None:  # point by point: the one point check, shared with the capture page, says why
            a = np.full((len(stroke), 3), np.nan)
            for i, p in enumerate(parse_point(p) for p in stroke):
                a[i, : min(len(p), 3)] = p[:3]
        xy.append(a[:, :2])
        times.append(a[:, 2] if a.shape[1] > 2 else np.full(len(a), np.nan))
    # json.loads turns 1e999 into inf (caught above); huge finite values are caught in clean_strokes
    points = clean_strokes(xy, opts, y_down=not y_up)
    flip = 1.0 if y_up else -1.0
    timed = all(np.isfinite(ts).all() for ts in times)  # a non-finite t only makes the line untimed
    raw = RawLine(text, [s * [1.0, flip] for s in xy], times if timed else None)
    return Sample(sid, text, points), sum(len(s) for s in xy), raw


_NUMBERS = {int, float}


def _plain_stroke(stroke: list) -> np.ndarray | None:
    """A stroke whose points all pass parse_point and have the same length k
    (2-4), as a float64 (n, k) array in one conversion: a tablet's line holds
    thousands of points, too many to check one by one in Python. None when any
    point is unusual (the caller then checks them one by one and raises
    parse_point's reason)."""
    if not stroke or type(stroke[0]) is not list or not 2 <= (k := len(stroke[0])) <= 4:
        return None
    if any(type(p) is not list or len(p) != k for p in stroke):
        return None
    if not {type(v) for p in stroke for v in p} <= _NUMBERS:  # exact types: a bool is no number here
        return None
    try:
        a = np.array(stroke, dtype=np.float64)
    except OverflowError:  # an int too large for a float
        return None
    return a if np.isfinite(a[:, :2]).all() else None


MAX_STROKES = 10_000  # pen strokes in one line: a line of handwriting has a few hundred
# One JSONL line: over MAX_SAMPLE_POINTS (100,000) points with times and pressure, far above a
# page of ink at a tablet's full rate; parsed, a line takes 6 to 16 times its bytes in memory.
MAX_LINE_BYTES = 8 * 2**20
TOO_LONG = b"\0too long"  # what _lines yields for a longer line (never valid JSON)


def _lines(fh) -> Iterator[bytes]:
    """The lines of a binary file, split at LF, CRLF or a lone CR (old Mac files);
    a line over MAX_LINE_BYTES is read past in pieces and yields TOO_LONG."""
    while True:
        chunk = fh.readline(MAX_LINE_BYTES + 1)  # up to each LF, bounded
        if not chunk:
            return
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):
                chunk = fh.readline(MAX_LINE_BYTES)
            yield TOO_LONG
            continue
        yield from chunk.splitlines() or [b""]


def iter_jsonl(path: str | os.PathLike, opts: CleanOptions, report: Report):
    """Yield (group, sample, source_points) per usable line; skips go to `report`."""
    path = Path(path)
    if path.exists() and not path.is_dir() and not stat.S_ISREG(os.stat(path).st_mode):
        raise GenseqError(f"{path}: not a regular file, expected a .jsonl file")
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
            if raw is TOO_LONG:
                report.skip(where, f"line longer than {MAX_LINE_BYTES // 2**20} MiB")
                continue
            try:
                line = raw.decode("utf-8", errors="strict")
            except UnicodeDecodeError:
                raise GenseqError(f"{where}: not UTF-8 text") from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark
            if not line.strip():
                continue
            try:
                sample, n, raw = _parse_raw(line, where, opts)
            except Skip as err:
                report.skip(where, str(err))
                continue
            yield sample.text.strip().casefold(), sample, n, raw


def read_jsonl(path: str | os.PathLike, opts: CleanOptions = CleanOptions(),
               target: InkTarget | None = None, *, max_lines: int | None = None,
               max_chars: int | None = None) -> list[Sample]:
    """All usable samples of a JSONL file, cleaned (e.g. to prime a model with
    a user's style); with `target`, normalised together to that model's ink
    (genseq.strokes.normalise). Only the first `max_lines` usable lines are read,
    and lines whose text is longer than `max_chars` are skipped. Raises
    GenseqError when none is usable."""
    report = Report()
    return collect_samples(iter_jsonl(path, opts, report), path, report, target,
                           max_lines=max_lines, max_chars=max_chars)


def collect_samples(found, path, report: Report, target: InkTarget | None = None, *,
                    max_lines: int | None = None, max_chars: int | None = None) -> list[Sample]:
    """The samples of `found` ((group, sample, source points, raw line) items of
    the file `path`), as read_jsonl returns them."""
    items = []
    for item in found:
        if max_chars is not None and len(item[1].text) > max_chars:
            report.skip(item[1].id, f"text longer than {max_chars} characters")
            continue
        items.append(item)
        if max_lines is not None and len(items) >= max_lines:
            break
    if not items:
        raise GenseqError(f"{path}: no usable lines" + (f" ({report.summary()})" if report.skipped else ""))
    if target is None:
        return [s for _, s, _, _ in items]
    try:
        points = normalise_lines([raw for *_, raw in items], target)
    except Skip as err:
        raise GenseqError(f"{path}: cannot normalise the ink ({err})") from None
    return [Sample(s.id, s.text, p) for (_, s, _, _), p in zip(items, points)]


def jsonl_line(text: str, strokes, *, id: str | None = None, y_up: bool = False) -> str:
    """One JSONL line (with the newline) for `strokes`: list of strokes, each a
    list of [x, y] / [x, y, t] / [x, y, t, pressure]. Validates like the reader."""
    try:
        obj = {"text": text, "strokes": [[[float(v) for v in p] for p in s] for s in strokes]}
    except OverflowError:  # an integer too large for a float; the line is then checked by the reader
        raise GenseqError("unusable sample: huge coordinate") from None
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
