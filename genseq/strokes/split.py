"""The one split function: every sample of a group goes to the same split.

A group is what must never straddle splits: for IAM-OnDB the text prompt
(`a01-000` from `a01-000u-01`, written by several writers), for your own
handwriting the text itself. The split is a pure function of (seed, group):
SHA-256, not Python's per-process randomised `hash`, so it is the same on
every run and every machine.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..errors import GenseqError


def group_fraction(group: str, seed: int = 0) -> float:
    """A uniform number in [0, 1) determined by (seed, group)."""
    digest = hashlib.sha256(f"{seed}\0{group}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(group: str, val_frac: float, test_frac: float, seed: int = 0) -> str:
    """'val', 'test' or 'train' for this group."""
    if not (0 <= val_frac and 0 <= test_frac and val_frac + test_frac < 1):
        raise GenseqError(f"--val-frac {val_frac} and --test-frac {test_frac} must be >= 0 and sum to < 1")
    u = group_fraction(group, seed)
    if u < val_frac:
        return "val"
    if u < val_frac + test_frac:
        return "test"
    return "train"


def auto_val_frac(n_groups: int) -> float:
    """Default val fraction for small personal collections (JSONL, InkML):
    5% once there are at least 20 groups, else everything is train."""
    return 0.05 if n_groups >= 20 else 0.0


def spread(indices, n: int | None) -> np.ndarray:
    """At most n of `indices`, evenly spread over them (all of them for None): a
    sample of a split that gives every part of it (say every writer) a share."""
    indices = np.asarray(indices)
    if n is None or len(indices) <= n:
        return indices
    return indices[np.unique(np.linspace(0, len(indices) - 1, n).round().astype(np.int64))]
