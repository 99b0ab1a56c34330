#!/usr/bin/env python3
"""Make the bundled styles (`genseq write --style N`): lines of handwriting
that prime the bundled model into lines its reader reads best.

    python samples/make_styles.py --writer iam-only.pt [--replace 0 3 4] [--model M] [--out F]

Priming (Graves 2013 section 5.5) needs a line of strokes and its text. No
dataset line is shipped: the styles are lines a model wrote itself. The
bundled ones were written by the IAM-OnDB model the bundled model was
fine-tuned from (its file: `git show 952d784^:genseq/models/handwriting.pt`).

1. Candidates: the writer model (`--writer`) writes TEXT `--candidates`
   times, unprimed, at a low bias (so that the lines differ in slant, size
   and spacing); a line is kept only if the attention check passed.
2. Screening: each candidate primes the bundled model (`--model`), which
   writes the 40 lines of styles_screen.txt (numbers, names in capitals,
   `x`, `z` and punctuation) with the defaults of `genseq write` at seed 1;
   the bundled reader reads them, and the candidate scores their character
   error rate (CER).
3. The `--finalists` best, and the styles bundled now, write the list again
   at seeds 2 and 3 and are ranked by their CER over those two draws.
4. Without `--replace`, the `--styles` best are written, best first (style 0
   is the one the default seed picks). With `--replace N ...`, the bundled
   styles stay and each style N, the weakest first, is replaced by the best
   finalist not yet used, when that one ranks above it.

The styles differ a lot: the six first bundled primed the model into CER
0.031 to 0.054 on the screening lines (seeds 2-3); `--replace 0 3 4` gave
the three weakest the best three of 32 new lines (0.027-0.030). The reader's CER is a
guide, not the judge: differences of a few thousandths did not show by eye
(docs/writing.md). About 30 minutes on 2 CPU cores (`--screen` takes a
shorter list, for a quick run).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from genseq.atomic import write_text  # noqa: E402
from genseq.hand.api import DEFAULT_BIAS, WriteOptions, bundled_styles, load_hand_model, write_handwriting  # noqa: E402
from genseq.hand.choose import read_lines  # noqa: E402
from genseq.hand.sample import HandSampleOptions, denormalise, sample_synthesis  # noqa: E402
from genseq.reader import load_recognizer  # noqa: E402
from genseq.reader.evaluate import char_error_rate  # noqa: E402
from genseq.strokes import to_strokes  # noqa: E402
from genseq.strokes.clean import to_offsets  # noqa: E402
from genseq.strokes.h5 import Sample  # noqa: E402
from genseq.strokes.jsonl import jsonl_line  # noqa: E402

TEXT = "a quick brown fox jumps over the lazy dog"  # lowercase primes best: digits and capitals in it primed worse
SCREEN = HERE / "styles_screen.txt"


def candidates(writer: str, n: int, bias: float, first_seed: int = 2000) -> list[tuple[str, Sample]]:
    """n lines of TEXT in the writer's hand (seeds from first_seed on), strokes rounded to 0.1 as the
    style file stores them."""
    hm = load_hand_model(writer)
    out, seed = [], 0
    while len(out) < n and seed < 20 * n:
        batch = sample_synthesis(hm.model, [TEXT] * 8, HandSampleOptions(bias=bias, seed=first_seed + seed,
                                                                          resample_bad=0))
        for j, ln in enumerate(batch):
            if ln.status == "ok" and len(out) < n:
                pts = denormalise(ln.points, hm.config.norm_mean, hm.config.norm_std)
                strokes = [np.round(s, 1) for s in to_strokes(pts)]
                name = f"seed{first_seed + seed}-{j}"
                out.append((name, Sample(name, TEXT, to_offsets(strokes))))
        seed += 1
    return out


def screen_cer(hm, reader, style: Sample, texts: list[str], seed: int) -> float:
    """The reader's CER on `texts` written by hm primed with `style` (defaults of `genseq write`)."""
    primed = replace(hm, meta={**hm.meta, "styles": [{"text": style.text, "points": style.points.tolist()}]})
    # Carried in the model, the line would prime at the bias of a user's ink: screen it at a bundled style's.
    _, lines = write_handwriting("\n".join(texts), primed, WriteOptions(seed=seed, max_chars=60, bias=DEFAULT_BIAS))
    reads = read_lines(reader, [ln.points for ln in lines], (hm.config.norm_mean, hm.config.norm_std))
    return char_error_rate(texts, reads)


def choose_styles(final: list, score: dict, bundled: list, n: int, replace: list[int] | None) -> list:
    """The styles to write: the n best of `final` ((name, Sample) pairs ranked
    best first; the bundled ones named bundled-I), or, with `replace`, the
    bundled styles with each style I in `replace`, the weakest first, replaced
    by the best fresh finalist not yet used, when that one scores lower (CER)
    than style I."""
    if replace is None:
        return [s for _, s in final[:n]]
    chosen = list(bundled)
    fresh = [(name, s) for name, s in final if not name.startswith("bundled-")]
    for i in sorted(replace, key=lambda i: -score[f"bundled-{i}"]):  # the weakest style gets the best
        if fresh and score[fresh[0][0]] < score[f"bundled-{i}"]:
            name, chosen[i] = fresh.pop(0)
            print(f"style {i}: {name} replaces it")
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writer", required=True, help="the model that writes the candidate lines")
    ap.add_argument("--model", default=None, help="the synthesis model they prime (default: the bundled one)")
    ap.add_argument("--out", type=Path, default=HERE.parent / "genseq" / "models" / "styles.jsonl")
    ap.add_argument("--styles", type=int, default=6)
    ap.add_argument("--replace", type=int, nargs="+", default=None, metavar="N",
                    help="replace only these bundled styles (default: choose every style afresh)")
    ap.add_argument("--candidates", type=int, default=32)
    ap.add_argument("--finalists", type=int, default=10)
    ap.add_argument("--bias", type=float, default=0.5)
    ap.add_argument("--first-seed", type=int, default=2000,
                    help="the writer's first seed (another draws other candidate lines)")
    ap.add_argument("--screen", type=Path, default=SCREEN, help="the screening lines")
    args = ap.parse_args()
    hm = load_hand_model(args.model)
    reader = load_recognizer("default")
    texts = [ln for ln in args.screen.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    bundled = bundled_styles()
    if args.replace and not all(0 <= n < len(bundled) for n in args.replace):
        sys.exit(f"--replace: there are {len(bundled)} bundled styles")
    pool = candidates(args.writer, args.candidates, args.bias, args.first_seed)
    if not pool:
        sys.exit("the writer wrote no line that passed the attention check")
    first = {name: screen_cer(hm, reader, s, texts, 1) for name, s in tqdm(pool, desc="screening")}
    pool.sort(key=lambda c: first[c[0]])
    final = pool[: args.finalists] + [(f"bundled-{i}", s) for i, s in enumerate(bundled)]
    score = {name: np.mean([screen_cer(hm, reader, s, texts, seed) for seed in (2, 3)])
             for name, s in tqdm(final, desc="finalists")}
    final.sort(key=lambda c: score[c[0]])
    for name, _ in final:
        print(f"{name:16s} CER seed 1 {first.get(name, float('nan')):.4f}, seeds 2-3 {score[name]:.4f}")
    chosen = choose_styles(final, score, bundled, args.styles, args.replace)
    lines = []
    for i, s in enumerate(chosen):
        strokes = [np.round(st, 1).tolist() for st in to_strokes(s.points)]
        lines.append(jsonl_line(s.text, strokes, id=f"style-{i}", y_up=True))
    write_text(args.out, "".join(lines))
    print(f"wrote {len(lines)} styles to {args.out}")


if __name__ == "__main__":
    main()
