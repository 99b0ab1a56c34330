#!/usr/bin/env python3
"""The 60 everyday lines of samples/lines60.txt in a model's hand:
`python samples/lines60.py [MODEL] -o samples/handwriting-60.svg`.

Writes them with the default options of `genseq write` (seed 1), one line per
text, labelled with a number, and prints what the bundled reader reads in each
(a hint for the judge, not the judge: the lines are judged by eye, letter by
letter; see docs/writing.md). With `--beside OTHER` each line is drawn a
second time, right under the first, in OTHER's hand: two models judged in one
sitting, line against line, which is steadier than two pictures judged apart.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from genseq.cli.hand import parse_char_bias  # noqa: E402
from genseq.hand.choose import read_lines  # noqa: E402
from genseq.hand.api import WriteOptions, load_hand_model, write_handwriting  # noqa: E402
from genseq.reader import load_recognizer  # noqa: E402
from genseq.render import PageOptions, render_pages, save_pages  # noqa: E402
from genseq.hand.sample import denormalise  # noqa: E402


def lines60() -> list[str]:
    return [ln for ln in (HERE / "lines60.txt").read_text(encoding="utf-8").splitlines()
            if ln and not ln.startswith("#")]


def write60(model: str, recognizer: Path | None, char_bias: str | None, seed: int,
            cross_check: float | None = None, candidates: int | None = None, margin_check: float | None = None):
    """The 60 lines in `model`'s hand -> (points in data units per line, what the
    bundled reader reads in each, seconds of writing)."""
    texts = lines60()
    hm = load_hand_model(None if model == "default" else model)
    t0 = time.perf_counter()
    extra = {} if char_bias is None else {"char_bias": parse_char_bias(char_bias)}
    if cross_check is not None:
        extra["cross_check"] = cross_check
    if candidates is not None:
        extra["candidates"] = candidates
    if margin_check is not None:
        extra["margin_check"] = margin_check
    _, written = write_handwriting("\n".join(texts), hm, WriteOptions(seed=seed, max_chars=60,
                                                                      recognizer=recognizer, **extra))
    took = time.perf_counter() - t0
    config = hm.config
    reads = read_lines(load_recognizer("default"), [w.points for w in written], (config.norm_mean, config.norm_std))
    return [denormalise(w.points, config.norm_mean, config.norm_std) for w in written], reads, took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default="default")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--recognizer", type=Path, default=None, help="the reader that chooses (default: bundled)")
    ap.add_argument("--char-bias", default=None, metavar="CHARS=B",
                    help="as genseq write --char-bias ('' for one bias for every character); default: write's")
    ap.add_argument("--cross-check", type=float, default=None, metavar="NATS",
                    help="as genseq write --cross-check (MODEL's lines only); default: write's")
    ap.add_argument("--margin-check", type=float, default=None, metavar="NATS",
                    help="as genseq write --margin-check (MODEL's lines only); default: write's")
    ap.add_argument("-k", "--candidates", type=int, default=None, metavar="N",
                    help="as genseq write --candidates (MODEL's lines only); default: write's")
    ap.add_argument("--beside", default=None, metavar="MODEL",
                    help="also write the lines with this model ('default': the bundled one) and draw each "
                         "under MODEL's same line, so that two models are judged line by line in one picture")
    ap.add_argument("--beside-recognizer", type=Path, default=None, help="the reader that chooses for --beside")
    ap.add_argument("--beside-cross-check", type=float, default=None, metavar="NATS",
                    help="--cross-check for the --beside lines; default: write's")
    ap.add_argument("--beside-margin-check", type=float, default=None, metavar="NATS",
                    help="--margin-check for the --beside lines; default: write's")
    args = ap.parse_args()
    texts = lines60()
    runs = [(args.model, *write60(args.model, args.recognizer, args.char_bias, args.seed, args.cross_check,
                                           args.candidates, args.margin_check))]
    if args.beside is not None:
        runs.append((f"beside: {args.beside}", *write60(args.beside, args.beside_recognizer, args.char_bias,
                                                        args.seed, args.beside_cross_check,
                                                        margin_check=args.beside_margin_check)))
    pts, labels = [], []
    for i, t in enumerate(texts):
        for name, points, _, _ in runs:
            pts.append(points[i])
            labels.append(f"{i + 1}. {t}" + (f"  [{name}]" if len(runs) > 1 else ""))
    save_pages(render_pages(pts, PageOptions(width=1000, background="white"), labels=labels)[:1], args.out)
    for name, _, reads, took in runs:
        exact = sum(r == t for r, t in zip(reads, texts))
        print(f"{name}: 60 lines in {took:.1f} s; the bundled reader reads {exact} exactly")
        for i, (t, r) in enumerate(zip(texts, reads)):
            print(f"{i + 1:2d}. {t}  |  {r}")


if __name__ == "__main__":
    main()
