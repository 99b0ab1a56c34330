"""The state behind the capture page: which prompt comes next, and the JSONL file.

Every finished line is appended at once (one write, then fsync), so closing
the browser or stopping the server loses at most the line being drawn. The
file is only ever appended to, except by `undo`, which cuts the line this
session wrote last off the end of the file, in place. Appends and undo hold
an exclusive lock on the file (fcntl.flock), and undo cuts only after it has
checked, under that lock, that the file's last line is still the exact line
it wrote: two servers (or any programs that take the same lock) on one file
never lose each other's lines. The file stays where it is: a symlink stays a
symlink and the permissions stay as they were. No HTTP here (server.py).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import secrets
import stat
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..atomic import not_regular
from ..errors import GenseqError
from ..strokes.clean import Skip
from ..strokes.jsonl import jsonl_line, parse_point

# The longest line read back from the file (undo, counting texts at start);
# a line the page saves is under 10 MB (server.MAX_BODY bounds what it gets).
MAX_LINE_BYTES = 64 * 1024 * 1024
_BLOCK = 1 << 16


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


_POINT_SHAPE = "bad point: expected [x, y], [x, y, t] or [x, y, t, pressure]"


def check_strokes(strokes, limits: Limits = Limits()) -> list[list[list[float]]]:
    """Strokes as sent by the page -> list of strokes of [x, y(, t(, pressure))] floats.
    Each point goes through the JSONL reader's own check (genseq.strokes.jsonl.parse_point);
    the page is stricter on top: no empty stroke, every value finite, coordinates
    within `limits`. Raises BadLine with a message for the user."""
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
            try:
                q = parse_point(p)
            except Skip as err:
                raise BadLine(_POINT_SHAPE if str(err) == "bad point" else f"bad point: {err}") from None
            if not all(math.isfinite(v) for v in q):
                raise BadLine("bad point: non-finite value")
            if abs(q[0]) > limits.max_abs_coord or abs(q[1]) > limits.max_abs_coord:
                raise BadLine("bad point: coordinate out of range")
            pts.append(list(q))
        out.append(pts)
    return out


def _read_lines(fh) -> Iterator[bytes]:
    """The lines of binary file `fh`, each at most MAX_LINE_BYTES (a longer one is
    yielded as its first MAX_LINE_BYTES bytes, the rest read and dropped)."""
    while True:
        line = fh.readline(MAX_LINE_BYTES)
        if not line:
            return
        if len(line) == MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # drop the rest of an overlong line, a block at a time
                rest = fh.readline(_BLOCK)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line


def _texts(path: Path) -> tuple[Counter, int]:
    """Texts already in `path` (counted) and its number of non-blank lines; bad lines count as lines."""
    counts: Counter = Counter()
    n = 0
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return counts, 0
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)  # not while another session appends or cuts
        for line in _read_lines(fh):
            if not line.strip():
                continue
            n += 1
            try:
                obj = json.loads(line.decode("utf-8", errors="replace"))
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                counts[obj["text"]] += 1
    return counts, n


def _refuse_foreign(path: Path) -> None:
    """Lines are appended to `path`: refuse a file that already holds something
    other than JSON Lines (a dataset, a model, a picture given as -o by mistake)."""
    try:
        if not path.is_file():
            return
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return  # the open for appending names the problem
    start = head.lstrip()[:1]
    if b"\0" in head or start not in (b"", b"{"):
        raise GenseqError(f"{path} holds something other than JSON Lines of ink; "
                          "give a new file or one that genseq capture wrote")


def _open_regular(path: Path, flags: int) -> int:
    """os.open(path, flags) that refuses anything but a regular file (a device,
    a FIFO: O_NONBLOCK, so that a FIFO without a reader does not hang)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            raise not_regular(path, st.st_mode, "a regular .jsonl file")
    fd = os.open(path, flags | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(path, mode, "a regular .jsonl file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    """The file open for reading and appending (created if missing), under an
    exclusive flock that every session takes around its appends and cuts."""
    fd = _open_regular(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _last_line(fd: int, size: int) -> tuple[int, bytes] | None:
    """(offset, bytes without the newline) of the last non-blank line of the
    file, None if there is none or it is longer than MAX_LINE_BYTES."""
    end = size
    while end > 0:  # skip trailing blank space
        n = min(_BLOCK, end)
        chunk = os.pread(fd, n, end - n)
        kept = chunk.rstrip(b" \t\r\n")
        end -= n - len(kept)
        if kept:
            break
    if end == 0:
        return None
    start, tail = end, b""
    while start > 0:
        n = min(_BLOCK, start)
        chunk = os.pread(fd, n, start - n)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            start -= n - cut - 1
            tail = chunk[cut + 1:] + tail
            break
        start -= n
        tail = chunk + tail
        if len(tail) > MAX_LINE_BYTES:
            return None
    return start, tail


def _digest(line: bytes) -> bytes:
    return hashlib.sha256(line.rstrip(b" \t\r\n")).digest()


class CaptureSession:
    """Prompts to write, the JSONL file `path` (appended to; only `undo` cuts off
    the last line, if it is still the one this session wrote), and the lines
    written in this session (for "redo previous line").

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
        _refuse_foreign(self.path)
        try:  # fail now, not at the first line; creates the file if missing, never truncates
            os.close(_open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT))
        except PermissionError:
            raise GenseqError(f"no permission to write {self.path}") from None
        except OSError as err:
            raise GenseqError(f"cannot write {self.path}: {err.strerror or err}") from None
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
            data = line.encode("utf-8")
            self._append(data)
            self._counts[text] += 1
            self._file_lines += 1
            self._mine.append({"id": sid, "index": index, "text": text, "strokes": pts, "digest": _digest(data)})
            self._front = None
            self._skips.pop(index, None)
            return self._state()

    def _append(self, data: bytes) -> None:
        # One O_APPEND write of the whole line, under the file's lock: other
        # appenders cannot interleave with it, and an undo elsewhere cannot cut
        # it. A line left without its newline by a crash gets one first, so
        # that only that broken line is lost (the reader skips it).
        with _locked(self.path) as fd:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)

    def skip(self, index: int) -> dict:
        """Put prompt `index` at the back of the queue."""
        with self._lock:
            self._check_current(index)
            self._skips[index] = max(self._skips.values(), default=0) + 1
            self._front = None
            return self._state()

    def undo(self, line_id: str) -> dict:
        """Remove the last line this session wrote (it must be `line_id` and still be the
        file's last line, byte for byte) and show its prompt again. The line is cut off
        the end of the file in place, under the file's lock."""
        with self._lock:
            if not self._mine or self._mine[-1]["id"] != line_id:
                raise Stale("that line is not the last one saved by this session; nothing was removed")
            with _locked(self.path) as fd:
                last = _last_line(fd, os.fstat(fd).st_size)
                if last is None or _digest(last[1]) != self._mine[-1]["digest"]:
                    raise Stale(f"the last line of {self.path.name} is not the one this page saved "
                                "(changed by another program?); nothing was removed")
                os.ftruncate(fd, last[0])
                os.fsync(fd)
            gone = self._mine.pop()
            self._counts[gone["text"]] -= 1
            self._file_lines -= 1
            self._front = gone["index"]
            return self._state()
