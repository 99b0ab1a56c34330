"""Atomic HDF5 output for the dataset writers (stroke files, text corpora).

HDF5 keeps a file whose write failed (a full disk) open, its unwritten data
still in its caches, and tries to write it again on every later close, when
h5py frees a dataset object (the "Exception ignored in ... __dealloc__" noise)
and at interpreter exit, where it can crash the process (a segfault). So a
writer that fails abandons its file: the writes HDF5 still wants to make go to
a throw-away in-memory file, and the file closes cleanly. That works only
while no close of the file or of a dataset in it has failed yet: a writer
keeps its datasets open while it writes and flushes before it closes.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

import h5py

from .atomic import atomic_path


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """An HDF5 file open for writing at a temporary path beside `path`; when the
    block succeeds it is closed (the last writes happen there) and replaces
    `path`. On any failure it is abandoned and removed, `path` is untouched,
    and a failed write is a one-line GenseqError (genseq.atomic.atomic_path)."""
    with atomic_path(path) as tmp:
        f = h5py.File(tmp, "w")
        try:
            yield f
            f.flush()  # the last writes: here a failure can still be abandoned cleanly,
            f.close()  # while a close that fails leaves HDF5 broken (a later segfault)
        except BaseException:
            abandon(f)
            raise


def abandon(f: h5py.File) -> None:
    """Close `f` without writing anything more to its file on disk.

    The descriptor of its file is pointed at an anonymous in-memory file, so
    the writes HDF5 still makes (at most its caches) succeed and are dropped.
    Best effort: the error that made the writer give up is the one to report.
    """
    if not f.id.valid:
        return
    try:
        if f.driver == "sec2":  # h5py's default: a POSIX descriptor we can redirect
            _redirect(f.id.get_vfd_handle())
        f.close()
    except Exception:  # noqa: BLE001  nothing more can be done about a file being thrown away
        pass


def _redirect(fd: int) -> None:
    """Make descriptor `fd` refer to a new, empty, unnamed file in memory
    (a temporary file where memfd_create is missing)."""
    if hasattr(os, "memfd_create"):
        sink = os.memfd_create("genseq-abandoned-h5")
        try:
            os.dup2(sink, fd, inheritable=False)
        finally:
            os.close(sink)
    else:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), fd, inheritable=False)
