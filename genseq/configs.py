"""Config dataclasses read back from model files: one check for all three.

A model file's config is a dict that anyone could have written. Before a
config class sees it, every key must be one of its fields and every value of
its field's type: a whole number for an `int`, a number for a `float`, true or
false for a `bool`, a string for a `str`, and 2 finite numbers for a
`tuple[float, float]` (positive where the caller says so). A bad value is a
GenseqError naming the key, never a TypeError or a numpy broadcasting error
later."""
from __future__ import annotations

import dataclasses
import numbers

from .errors import GenseqError, shown


def _whole(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


# A (dx, dy) pair of a config (the data's mean and spread, in data units), and a model file's
# meta.scale (checkpoint.py), stay within this factor of 1, so that float32 arithmetic on
# them cannot overflow or vanish.
PAIR_MAX = 1e6


def _real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _type_name(t) -> str:
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def checked_config(cls, d: dict, what: str, positive: tuple[str, ...] = ()):
    """cls(**d) once d's keys and value types fit cls's fields ("what": the
    model kind named in messages; `positive`: pair fields that must be > 0)."""
    if not isinstance(d, dict):
        raise GenseqError(f"{what} config must be a mapping, not {shown(d)}")
    types = {f.name: _type_name(f.type) for f in dataclasses.fields(cls)}
    unknown = [k for k in d if k not in types]
    if unknown:
        raise GenseqError(f"unknown {what} config keys: [{', '.join(sorted(shown(k) for k in unknown)[:8])}]")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in d
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise GenseqError(f"{what} config is missing {', '.join(missing)}")
    for key, v in d.items():
        t, bad = types[key], None
        if t == "int" and not _whole(v):
            bad = "a whole number"
        elif t == "float" and not _real(v):
            bad = "a number"
        elif t == "bool" and not isinstance(v, bool):
            bad = "true or false"
        elif t == "str" and not isinstance(v, str):
            bad = "a string"
        elif t.startswith("tuple[float") and not (
                isinstance(v, (list, tuple)) and len(v) == 2 and all(_real(x) and abs(x) <= PAIR_MAX for x in v)
                and (key not in positive or min(v) >= 1 / PAIR_MAX)):
            bad = (f"2 positive numbers (dx, dy) from {1 / PAIR_MAX:g} to {PAIR_MAX:g}" if key in positive
                   else f"2 numbers (dx, dy) of at most {PAIR_MAX:g} in size")
        if bad:
            raise GenseqError(f"{what} config {key} must be {bad}, not {shown(v)}")
    return cls(**d)
