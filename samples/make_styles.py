#!/usr/bin/env python3
"""Make the bundled styles (`genseq write --style N`) from the bundled model's
own handwriting: `python samples/make_styles.py [--model M] [--out F]`.

Priming (Graves 2013 section 5.5) needs a line of strokes and its text. The
bundled styles are lines the model wrote itself, unprimed, at a low bias (so
that they differ in slant, size and spacing) with different seeds; a line is
kept only if the attention check passed. No dataset line is shipped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from genseq.atomic import write_text  # noqa: E402
from genseq.hand.sample import HandSampleOptions, denormalise, sample_synthesis  # noqa: E402
from genseq.hand.api import load_hand_model  # noqa: E402
from genseq.strokes import to_strokes  # noqa: E402
from genseq.strokes.jsonl import jsonl_line  # noqa: E402

TEXT = "a quick brown fox jumps over the lazy dog"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, help="synthesis model (default: the bundled one)")
    ap.add_argument("--out", type=Path, default=HERE.parent / "genseq" / "models" / "styles.jsonl")
    ap.add_argument("--styles", type=int, default=6)
    ap.add_argument("--bias", type=float, default=0.5)
    args = ap.parse_args()
    hm = load_hand_model(args.model)
    config = hm.config
    lines, seed = [], 0
    while len(lines) < args.styles and seed < 20 * args.styles:
        batch = sample_synthesis(hm.model, [TEXT] * 8, HandSampleOptions(bias=args.bias, seed=1000 + seed,
                                                                          resample_bad=0))
        seed += 1
        for ln in batch:
            if ln.status == "ok" and len(lines) < args.styles:
                pts = denormalise(ln.points, config.norm_mean, config.norm_std)
                strokes = [np.round(s, 1).tolist() for s in to_strokes(pts)]
                lines.append(jsonl_line(TEXT, strokes, id=f"style-{len(lines)}", y_up=True))
    if not lines:
        sys.exit("the model wrote no line that passed the attention check; train it longer")
    write_text(args.out, "".join(lines))
    print(f"wrote {len(lines)} styles to {args.out}")


if __name__ == "__main__":
    main()
