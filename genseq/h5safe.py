"""Reading an HDF5 dataset that genseq may not have written: before anything is
read, it must keep its values inside the file, and no more than a bounded
factor fewer bytes than its shape claims.

A chunked dataset that was never written stores nothing, and a compressed one
of constant values almost nothing, yet its shape may claim terabytes that a
read would allocate: a 20 KB file could take the machine's memory (as a zip
bomb would). The stroke files genseq writes compress 1.4-7 times (gzip of pen
offsets; about 19 when nine offsets in ten are zero) and text corpora not at
all, far below MAX_RATIO. A dataset with external
storage, a virtual one, or one behind an external link reads another file of
the machine as its values, so it is refused too.
"""
from __future__ import annotations

import h5py

from .errors import GenseqError

MAX_RATIO = 100  # claimed bytes per stored byte, for a dataset over SMALL bytes
SMALL = 16 << 20


def check_local(group: h5py.Group, name: str, where: str) -> None:
    """GenseqError if `name` in `group` is an external link: checked before the link is
    followed, since following it opens (and may block on) another file of the machine."""
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        raise GenseqError(f"{where} links to another file ({link.filename}); "
                          "genseq reads only datasets stored inside the file")


def check_stored(ds: h5py.Dataset, where: str, file: h5py.File) -> None:
    """GenseqError unless `ds` lies in `file` (not behind an external link), stores its
    own values and about as many bytes as it claims."""
    if ds.file.filename != file.filename:
        raise GenseqError(f"{where} links to another file ({ds.file.filename}); "
                          "genseq reads only datasets stored inside the file")
    if ds.external or ds.is_virtual:
        raise GenseqError(f"{where} keeps its values in another file (external storage or a virtual dataset); "
                          "genseq reads only datasets stored inside the file")
    claimed = int(ds.size) * ds.dtype.itemsize
    if claimed > SMALL and claimed > MAX_RATIO * ds.id.get_storage_size():
        raise GenseqError(f"{where} claims {claimed:,} bytes but stores {ds.id.get_storage_size():,}: "
                          "not a file genseq wrote")
