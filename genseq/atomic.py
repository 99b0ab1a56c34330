"""Atomic file output: write to a temporary file beside the target, flush,
fsync, then rename over the target, so a crash or `kill -9` at any moment
leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import GenseqError, first_line


def _explain(err: OSError, path: Path) -> GenseqError:
    if err.errno == errno.ENOSPC:
        return GenseqError(f"no space left on device while writing {path}; the previous file is unchanged")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return GenseqError(f"no permission to write {path}")
    if err.errno == errno.ENOENT and not path.parent.is_dir():
        return GenseqError(f"cannot write {path}: folder {path.parent} does not exist")
    # The errno's own words: a library's strerror may run over lines (HDF5's does).
    reason = os.strerror(err.errno) if err.errno else first_line(err)
    return GenseqError(f"cannot write {path}: {reason}")


# How torch.save reports a failed write to a file it opened itself (its C++
# writer keeps no errno): "unexpected pos 19904 vs 19792" from the zip writer's
# position check, "file write failed", or the stream's "iostream error".
_TORCH_WRITE_FAILED = re.compile(r"unexpected pos \d+ vs \d+|file write failed|iostream error")
_HDF5_ERRNO = re.compile(r"\berrno = (\d+)")  # in HDF5's "file write failed: ..., errno = 28, ..."
_NEARLY_FULL = 1 << 20  # bytes: less free space than this means the disk filled up


def write_failure(err: BaseException, tmp: Path) -> OSError | None:
    """The OSError behind `err` when `err` is a failed write of `tmp`, else None.

    An OSError is itself. Writer libraries wrap their write failures in a
    RuntimeError: torch.save writing to a Python file keeps the file's OSError
    as the context; h5py quotes HDF5's message, which names the errno; torch.save
    writing to a name reports only a failed position check, taken as ENOSPC
    when the disk holding `tmp` is (nearly) full.
    """
    if isinstance(err, OSError):
        return err
    if not isinstance(err, RuntimeError):
        return None
    behind = err.__cause__ or (None if err.__suppress_context__ else err.__context__)
    if isinstance(behind, OSError):
        return behind
    message = str(err)
    found = _HDF5_ERRNO.search(message) if "write failed" in message else None
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code))
    if _TORCH_WRITE_FAILED.search(message) and _free_bytes(tmp.parent) < _NEARLY_FULL:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return None


def _free_bytes(folder: Path) -> int:
    """Bytes that this process may still write in `folder` (a huge number if unknown)."""
    try:
        return shutil.disk_usage(folder or ".").free
    except OSError:
        return 1 << 62


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`.

    For writers that want a file name (h5py, torch.save to a name). On any
    exception the temporary file is removed and the target is untouched; a
    failed write (`write_failure`: a full disk, no permission) becomes a
    one-line GenseqError.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as err:
        raise _explain(err, path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # the writer may have closed it without fsync
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException as err:
        failed = write_failure(err, tmp_path)  # before the unlink: it may look at the free space
        tmp_path.unlink(missing_ok=True)
        interrupt = err.__context__
        if isinstance(err, RuntimeError) and isinstance(interrupt, BaseException) and not isinstance(
                interrupt, Exception):
            # Ctrl-C inside a writer's write() comes out of torch.save as its RuntimeError
            raise interrupt from None
        if failed is None or failed.filename not in (None, str(tmp_path), str(path)):
            raise  # not a write error, or about another file (e.g. an input that vanished)
        raise _explain(failed, path) from None


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator:
    """`open()` for writing, atomically: the file appears complete or not at all."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a whole text file atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform allows opening a folder.
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
