"""The state behind the capture page: which prompt comes next, and the JSONL file.

Every finished line is appended at once (one write, then fsync), so closing
the browser or stopping the server loses at most the line being drawn. The
file is only ever appended to, except by `undo`, which removes the line this
session wrote last and rewrites the file atomically. No HTTP here (server.py).
"""
from __future__ import annotations

import json
import math
import os
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_open
from ..errors import GenseqError
from ..strokes.jsonl import jsonl_line


class BadLine(GenseqError):
    """A submitted line that cannot be saved (HTTP 400); the page keeps the drawing."""


class Stale(GenseqError):
    """The page acted on a prompt or line that is no longer current (HTTP 409)."""


@dataclass(frozen=True)
class Limits:
    """What one submitted line may hold; far above any real line of handwriting."""

    max_strokes: int = 2_000
    max_points: int = 200_000
    max_abs_coord: float = 1e6  # screen pixels


def check_strokes(strokes, limits: Limits = Limits()) -> list[list[list[float]]]:
    """Strokes as sent by the page -> list of strokes of [x, y(, t(, pressure))] floats.
    Raises BadLine with a message for the user."""
    if not isinstance(strokes, list) or not strokes:
        raise BadLine("empty drawing: write the prompt on the pad, then submit")
    if len(strokes) > limits.max_strokes:
        raise BadLine(f"too many strokes ({len(strokes)} > {limits.max_strokes})")
    out, total = [], 0
    for stroke in strokes:
        if not isinstance(stroke, list) or not stroke:
            raise BadLine("bad stroke: a stroke is a non-empty list of points")
        total += len(stroke)
        if total > limits.max_points:
            raise BadLine(f"too many points (> {limits.max_points})")
        pts = []
        for p in stroke:
            if not isinstance(p, list) or not 2 <= len(p) <= 4:
                raise BadLine("bad point: expected [x, y], [x, y, t] or [x, y, t, pressure]")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p):
                raise BadLine("bad point: non-numeric value")
            if not all(math.isfinite(v) for v in p):
                raise BadLine("bad point: non-finite value")
            if abs(p[0]) > limits.max_abs_coord or abs(p[1]) > limits.max_abs_coord:
                raise BadLine("bad point: coordinate out of range")
            pts.append([float(v) for v in p])
        out.append(pts)
    return out


def _texts(path: Path) -> tuple[Counter, int]:
    """Texts already in `path` (counted) and its number of non-blank lines; bad lines count as lines."""
    counts: Counter = Counter()
    n = 0
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return counts, 0
    with fh:
        for line in fh:
            if not line.strip():
                continue
            n += 1
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                counts[obj["text"]] += 1
    return counts, n


class CaptureSession:
    """Prompts to write, the JSONL file `path` (appended to, never truncated),
    and the lines written in this session (for "redo previous line").

    The next prompt is the one written least often so far in the file (so a
    second session goes on where the first stopped), in list order; skipped
    prompts go to the back. Thread-safe.
    """

    def __init__(self, path: str | os.PathLike, prompts: list[str], limits: Limits = Limits()):
        if not prompts:
            raise GenseqError("no prompts")
        self.path = Path(path)
        if self.path.is_dir():
            raise GenseqError(f"{self.path}: is a folder, expected a .jsonl file")
        if not self.path.parent.is_dir():
            raise GenseqError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        try:  # fail now, not at the first line; creates the file if missing, never truncates
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666))
        except PermissionError:
            raise GenseqError(f"no permission to write {self.path}") from None
        self.prompts = list(prompts)
        self.limits = limits
        self._counts, self._file_lines = _texts(self.path)
        self._lock = threading.Lock()
        self._skips: dict[int, int] = {}  # prompt index -> skip serial (later skips go further back)
        self._front: int | None = None  # a prompt given back by undo comes next
        self._mine: list[dict] = []  # lines written by this session: id, index, text, strokes
        self._prefix = time.strftime("cap-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        self._serial = 0

    # -- reading ---------------------------------------------------------------
    def _current(self) -> int:
        if self._front is not None:
            return self._front
        return min(range(len(self.prompts)),
                   key=lambda i: (self._counts[self.prompts[i]], self._skips.get(i, 0), i))

    def state(self) -> dict:
        """What the page shows: the prompt, progress, and the last line saved by this session."""
        with self._lock:
            return self._state()

    def _state(self) -> dict:
        i = self._current()
        last = self._mine[-1] if self._mine else None
        return {
            "prompt": {"index": i, "text": self.prompts[i], "times": self._counts[self.prompts[i]]},
            "prompts": len(self.prompts),
            "covered": sum(1 for p in self.prompts if self._counts[p] > 0),
            "saved": len(self._mine),
            "lines": self._file_lines,
            "file": self.path.name,
            "last": None if last is None else {"id": last["id"], "text": last["text"],
                                               "strokes": [[p[:2] for p in s] for s in last["strokes"]]},
        }

    @property
    def saved(self) -> int:
        """Lines written (and not taken back) by this session."""
        with self._lock:
            return len(self._mine)

    def _check_current(self, index, text=None) -> None:
        cur = self._current()
        if index != cur or (text is not None and text != self.prompts[cur]):
            raise Stale("the prompt changed (another tab or session?); nothing was saved")

    # -- writing ---------------------------------------------------------------
    def submit(self, index: int, text: str, strokes) -> dict:
        """Save a line written for prompt `index` (whose text the page shows as `text`)."""
        with self._lock:
            self._check_current(index, text)
            pts = check_strokes(strokes, self.limits)
            self._serial += 1
            sid = f"{self._prefix}-{self._serial:04d}"
            try:
                line = jsonl_line(text, pts, id=sid)
            except GenseqError as err:
                raise BadLine(f"{err}; please write the line again") from None
            self._append(line.encode("utf-8"))
            self._counts[text] += 1
            self._file_lines += 1
            self._mine.append({"id": sid, "index": index, "text": text, "strokes": pts})
            self._front = None
            self._skips.pop(index, None)
            return self._state()

    def _append(self, data: bytes) -> None:
        # One O_APPEND write of the whole line: other appenders cannot interleave
        # with it; a line left without its newline by a crash gets one first, so
        # that only that broken line is lost (the reader skips it).
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def skip(self, index: int) -> dict:
        """Put prompt `index` at the back of the queue."""
        with self._lock:
            self._check_current(index)
            self._skips[index] = max(self._skips.values(), default=0) + 1
            self._front = None
            return self._state()

    def undo(self, line_id: str) -> dict:
        """Remove the last line this session wrote (it must be `line_id` and still be the
        file's last line) and show its prompt again."""
        with self._lock:
            if not self._mine or self._mine[-1]["id"] != line_id:
                raise Stale("that line is not the last one saved by this session; nothing was removed")
            with open(self.path, "rb") as fh:
                lines = fh.read().splitlines(keepends=True)
            while lines and not lines[-1].strip():
                lines.pop()
            try:
                last_id = json.loads(lines[-1]).get("id") if lines else None
            except (ValueError, AttributeError):
                last_id = None
            if last_id != line_id:
                raise Stale(f"the last line of {self.path.name} is not the one this page saved "
                            "(changed by another program?); nothing was removed")
            with atomic_open(self.path, "wb") as fh:
                fh.write(b"".join(lines[:-1]))
            gone = self._mine.pop()
            self._counts[gone["text"]] -= 1
            self._file_lines -= 1
            self._front = gone["index"]
            return self._state()
