"""Atomic file output: write to a temporary file beside the target, flush,
fsync, then rename over the target, so a crash or `kill -9` at any moment
leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import GenseqError


def _explain(err: OSError, path: Path) -> GenseqError:
    if err.errno == errno.ENOSPC:
        return GenseqError(f"no space left on device while writing {path}; the previous file is unchanged")
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return GenseqError(f"no permission to write {path}")
    if err.errno == errno.ENOENT:
        return GenseqError(f"cannot write {path}: folder {path.parent} does not exist")
    return GenseqError(f"cannot write {path}: {err.strerror or err}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`.

    For writers that want a file name (h5py, torch.save to a name). On any
    exception the temporary file is removed and the target is untouched.
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
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        if err.filename not in (None, str(tmp_path), str(path)):
            raise  # about another file (e.g. an input that vanished): not a write error
        raise _explain(err, path) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


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
