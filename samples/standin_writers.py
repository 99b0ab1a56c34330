#!/usr/bin/env python3
"""Stand-in users for "your own handwriting": held-out UNIPEN writers as JSONL.

    python samples/standin_writers.py UNIPEN_ARCHIVE -o ~/standin

Picks writers of the UNIPEN test split (by writer, as `genseq data unipen`
splits them, so no bundled model has seen them), one per contributor (each
contributor recorded with its own tablet), each with 25 or more text lines of
10 or more characters, and writes each writer's lines twice. `--split val
--same-contributor` picks other writers no bundled model was trained on
either (the validation split), to choose settings by, so that the test
writers stay for measuring them:

- `W-tablet.jsonl`: as the tablet recorded them: source units, y up
  (`"y_up": true`), every point, t in seconds from the header's points per
  second;
- `W-capture.jsonl`: as the capture page would: y down, screen pixels at
  96 per inch, events at an uneven rate (60 per second with 30% jitter and 5%
  of events lost), t in milliseconds.

Writer names are not written: W is a hash. The files are derived from UNIPEN
and fall under its terms: keep them out of the project.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from genseq.strokes.split import split_of  # noqa: E402
from genseq.strokes.unipen import UnipenOptions, _number, is_one_line, read_unipen  # noqa: E402


def capture_like(raw: np.ndarray, pps: float, ppi: float, rng: np.random.Generator):
    """One stroke (n, 2) source units, y up, evenly timed -> [[x, y, t_ms]] as a
    capture page records it: 96 px per inch, y down, uneven events."""
    t = np.arange(len(raw)) / pps
    at, now = [], 0.0
    while now <= t[-1]:
        if rng.random() > 0.05 or not at:
            at.append(now)
        now += rng.uniform(0.7, 1.3) / 60.0
    at = np.append(at, t[-1]) if at[-1] < t[-1] else np.asarray(at)
    px = raw / ppi * 96.0
    x = np.interp(at, t, px[:, 0])
    y = -np.interp(at, t, px[:, 1])
    return [[round(float(a), 2), round(float(b), 2), round(float(c) * 1000, 1)] for a, b, c in zip(x, y, at)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("archive", help="UNIPEN train_r01_v07 (.tar.xz or folder)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--min-lines", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=["test", "val"], default="test",
                    help="the writers of this split (val: others, also never trained on, to choose settings by)")
    ap.add_argument("--same-contributor", action="store_true",
                    help="allow several writers of one contributor (one tablet)")
    args = ap.parse_args()
    pieces = read_unipen(args.archive, UnipenOptions(categories=("8",), progress=False), keep_raw=True)
    by_writer = defaultdict(list)
    for p in pieces:
        if split_of(p.group, 0.05, 0.05, 0) == args.split and len(p.text) >= 10 and is_one_line(p.strokes):
            by_writer[p.group].append(p)
    chosen, contribs = [], set()
    for group, ps in sorted(by_writer.items(), key=lambda kv: -len(kv[1])):
        if len(ps) >= args.min_lines and (args.same_contributor or ps[0].contrib not in contribs):
            chosen.append((group, ps))
            contribs.add(ps[0].contrib)
    chosen = chosen[:args.writers]
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for group, ps in chosen:
        h = ps[0].header
        pps = _number(h, ".POINTS_PER_SECOND") or 100.0
        if pps > 1000:  # a baud rate where the rate should be
            pps = 100.0
        ppi = _number(h, ".X_POINTS_PER_INCH") or 25.4 * (_number(h, ".X_POINTS_PER_MM") or 0) or 0
        if not ppi:  # no resolution: size by the ink (letters about 1/6 inch wide)
            w = np.median([np.ptp(np.concatenate(p.raw)[:, 0]) / len(p.text) for p in ps])
            ppi = float(w) * 6.0
        name = f"{ps[0].contrib}-{group[:6]}"
        with open(args.out / f"{name}-tablet.jsonl", "w") as tab, open(args.out / f"{name}-capture.jsonl", "w") as cap:
            for k, p in enumerate(ps):
                strokes = [[[float(x), float(y), round(i / pps, 4)] for i, (x, y) in enumerate(s)] for s in p.raw]
                tab.write(json.dumps({"text": p.text, "id": f"{name}-{k}", "y_up": True, "strokes": strokes}) + "\n")
                cap.write(json.dumps({"text": p.text, "id": f"{name}-{k}",
                                      "strokes": [capture_like(s, pps, ppi, rng) for s in p.raw]}) + "\n")
        pts = sum(len(s) for p in ps for s in p.raw) / sum(len(p.text) for p in ps)
        print(f"{name}: {len(ps)} lines, {pts:.1f} points per character, {pps:g} points/s, {ppi:g} per inch")


if __name__ == "__main__":
    main()
