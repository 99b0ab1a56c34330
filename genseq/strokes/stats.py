"""`genseq data stats`: what a stroke file holds, from offsets and texts only."""
from __future__ import annotations

import os
from collections import Counter

import numpy as np

from .h5 import SPLITS, StrokeDataset

_PCTS = (5, 50, 95)


def stroke_stats(path: str | os.PathLike) -> dict:
    """Per split: sequences, points and characters (total, p5/p50/p95/max),
    points per character; plus the alphabet with frequencies over all splits."""
    out: dict = {"splits": {}, "alphabet": {}}
    freq: Counter = Counter()
    with StrokeDataset(path) as ds:
        out.update(source=ds.source, units=ds.units, resample=ds.resample, terms=ds.terms,
                   norm_mean=ds.norm_mean.tolist(), norm_std=ds.norm_std.tolist())
        for name in SPLITS:
            sp = ds.split(name)
            chars = np.array([len(t) for t in sp.texts], dtype=np.int64)  # (S,)
            for t in sp.texts:
                freq.update(t)
            out["splits"][name] = {
                "sequences": len(sp),
                "points": _dist(sp.lengths),
                "chars": _dist(chars),
                "points_per_char": float(sp.lengths.sum() / chars.sum()) if chars.sum() else 0.0,
            }
    out["alphabet"] = dict(sorted(freq.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def _dist(a: np.ndarray) -> dict:
    if not len(a):
        return {"total": 0, **{f"p{p}": 0 for p in _PCTS}, "max": 0}
    pct = np.percentile(a, _PCTS)
    return {"total": int(a.sum()), **{f"p{p}": float(v) for p, v in zip(_PCTS, pct)}, "max": int(a.max())}


def format_stats(st: dict) -> str:
    lines = [f"source: {st['source']}", f"units: {st['units']}", f"resample: {st['resample']}",
             f"norm mean (dx, dy): {st['norm_mean'][0]:.3f} {st['norm_mean'][1]:.3f}, "
             f"std: {st['norm_std'][0]:.3f} {st['norm_std'][1]:.3f}"]
    for name, s in st["splits"].items():
        lines.append(f"{name}: {s['sequences']} sequences, points per character {s['points_per_char']:.2f}")
        for key in ("points", "chars"):
            d = s[key]
            lines.append(f"  {key:6s} total {d['total']}, p5 {d['p5']:g}, p50 {d['p50']:g}, "
                         f"p95 {d['p95']:g}, max {d['max']}")
    lines.append(f"alphabet ({len(st['alphabet'])} characters, most frequent first):")
    lines.append("  " + "  ".join(f"{c!r}:{n}" for c, n in st["alphabet"].items()))
    return "\n".join(lines)
