"""Atomic file output: write to a temporary file beside the target, flush,
fsync, then rename over the target, so a crash or `kill -9` at any moment
leaves either the old file or the new one, never half of one.

The target is always a regular file. An output that exists and is anything
else (a device such as /dev/null, a FIFO, a socket, a folder) is refused
with one line, never replaced. A symlinked output writes to the link's
target: the temporary file goes beside the target and is renamed over it,
so the link stays a link. A file that is replaced keeps its permission bits
(and, as root, its owner). /dev/stdout is a symlink like any other: when
stdout is redirected to a regular file, that file is replaced; a terminal or
a pipe is not a regular file and is refused.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import GenseqError, first_line


def _explain(err: OSError, path: Path, folder: Path | None = None) -> GenseqError:
    folder = path.parent if folder is None else folder
    if err.errno == errno.ENOSPC:
        return GenseqError(f"no space left on device while writing {path}; the previous file is unchanged")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return GenseqError(f"no permission to write {path}")
    if err.errno == errno.ENOENT and not folder.is_dir():
        return GenseqError(f"cannot write {path}: folder {folder} does not exist")
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


_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What an `st_mode` is, in words: "a regular file", "a folder", "a character device", ..."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def not_regular(path: str | os.PathLike, mode: int, what: str = "a regular file") -> GenseqError:
    """The one-line error for `path` (of st_mode `mode`) where `what` is needed."""
    return GenseqError(f"{path}: is {file_kind(mode)}, not {what}")


def output_target(path: str | os.PathLike) -> tuple[Path, os.stat_result | None]:
    """The file that writing `path` replaces, and its stat (None if it does not
    exist yet): symlinks resolved (a dangling link names the file to create).
    Raises GenseqError when it exists and is not a regular file."""
    path = Path(path)
    try:
        st = os.stat(path)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as err:  # a symlink loop, a file used as a folder, no permission on a folder
        raise _explain(err, path) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise GenseqError(f"{path}: is {file_kind(st.st_mode)}, not a regular file; "
                          "refusing to replace it (write to a file name)")
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    return path, st


def _keep_mode(tmp: Path, old: os.stat_result | None) -> None:
    """Give `tmp` the permission bits of the file it replaces (and, as root, its
    owner), or the usual ones for a new file (mkstemp makes 0600)."""
    if old is None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and (old.st_uid, old.st_gid) != (0, 0):
        try:
            os.chown(tmp, old.st_uid, old.st_gid)
        except OSError:
            pass  # best effort: the content matters more than the owner
    os.chmod(tmp, stat.S_IMODE(old.st_mode) & 0o777)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`.

    For writers that want a file name (h5py, torch.save to a name). On any
    exception the temporary file is removed and the target is untouched; a
    failed write (`write_failure`: a full disk, no permission) becomes a
    one-line GenseqError. An existing `path` that is not a regular file is
    refused; a symlink is followed and its target replaced (`output_target`).
    """
    path = Path(path)
    target, old = output_target(path)
    try:
        # A short prefix: a name near the file system's 255-byte limit still gets a temporary file.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=target.parent or ".")
    except OSError as err:
        raise _explain(err, path, target.parent) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        _keep_mode(tmp_path, old)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # the writer may have closed it without fsync
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        _fsync_dir(target.parent)
    except BaseException as err:
        failed = write_failure(err, tmp_path)  # before the unlink: it may look at the free space
        tmp_path.unlink(missing_ok=True)
        interrupt = err.__context__
        if isinstance(err, RuntimeError) and isinstance(interrupt, BaseException) and not isinstance(
                interrupt, Exception):
            # Ctrl-C inside a writer's write() comes out of torch.save as its RuntimeError
            raise interrupt from None
        if failed is None or failed.filename not in (None, str(tmp_path), str(path), str(target)):
            raise  # not a write error, or about another file (e.g. an input that vanished)
        raise _explain(failed, path, target.parent) from None


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
