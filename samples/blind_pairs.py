#!/usr/bin/env python3
"""Two ways of writing the same lines, judged blind: `python samples/blind_pairs.py make OUT
--b bias=1.5`, then a judge fills OUT/judgements.json, then `python samples/blind_pairs.py tally OUT`.

`make` writes every line of --texts (the 60 everyday lines of samples/lines60.txt,
the 20 sample phrases of samples/make.py, or a file of one text per line) at
each --seeds with the options of `genseq write` (A: the defaults; B: the
defaults changed by each --b NAME=VALUE, a WriteOptions field), and draws each
line's two versions one above the other, labelled a and b, in an order drawn at
random for each pair: OUT/sheet-NN.png, five pairs a sheet. Which version is a
is kept in OUT/key.json, for `tally` only, away from the judge. Pairs whose
two versions are the same ink are left out (counted as alike).

The judge reads every character of both versions and writes, per pair,
{"n": N, "a_exact": bool, "b_exact": bool, "better": "a" | "b" | "same"}:
`exact` when every letter, digit, capital, mark and space reads as the text
says. `tally` unblinds: how often B came out better, worse or alike, the
lines each wrote exactly, and the one-sided sign test of better against worse.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from genseq.hand.api import WriteOptions, load_hand_model, write_handwriting  # noqa: E402
from genseq.render import PageOptions  # noqa: E402
from genseq.render.raster import render_png  # noqa: E402

PER_SHEET = 5


def read_texts(name: str) -> list[str]:
    if name == "lines60":
        path = HERE / "lines60.txt"
    elif name == "phrases":
        from make import PHRASES
        return list(PHRASES)
    else:
        path = Path(name)
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


def changed_options(pairs: list[str]) -> dict:
    """["bias=1.5", "picture_reader=p.pt"] -> WriteOptions fields of the right types: those
    whose default is None or a pair by _CONVERT, the others by their default's type."""
    from genseq.cli.hand import parse_char_bias
    convert = {"bias": float, "margin_check": float, "bar_check": float, "word_gap": float, "style": int, "recognizer": Path,
               "picture_reader": Path, "style_file": Path, "char_bias": parse_char_bias}
    base, out = WriteOptions(), {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in {f.name for f in dataclasses.fields(WriteOptions)} or name in ("seed", "page"):
            raise SystemExit(f"--b {pair}: not a WriteOptions field that can change here")
        old = getattr(base, name)
        if isinstance(old, bool):
            out[name] = value.lower() in ("1", "true", "yes")
        else:
            out[name] = convert.get(name, type(old))(value)
    return out


def write_all(texts: list[str], seeds: list[int], changes: dict, model: str | None) -> dict[str, np.ndarray]:
    """{"seed|i": (N, 3) offsets in data units} for every text at every seed."""
    from genseq.hand.sample import denormalise
    hm = load_hand_model(model)
    width = max(60, max(len(t) for t in texts))  # one written line per text: no wrapping
    if width > 200:
        raise SystemExit("a text is longer than 200 characters: give one line per text")
    out = {}
    for seed in seeds:
        _, lines = write_handwriting("\n".join(texts), hm, WriteOptions(seed=seed, max_chars=width, **changes))
        for i, ln in enumerate(lines):
            out[f"{seed}|{i}"] = denormalise(ln.points, hm.config.norm_mean, hm.config.norm_std)
    return out


def make(args) -> None:
    texts = read_texts(args.texts)
    seeds = [int(s) for s in args.seeds.split(",")]
    a = write_all(texts, seeds, {}, args.model)
    b = write_all(texts, seeds, changed_options(args.b), args.model)
    rng = random.Random(args.shuffle)
    keys = [k for k in a if not np.array_equal(a[k], b[k])]
    rng.shuffle(keys)
    args.out.mkdir(parents=True, exist_ok=True)
    key = []
    for start in range(0, len(keys), PER_SHEET):
        lines, labels = [], []
        for n, k in enumerate(keys[start:start + PER_SHEET], start + 1):
            b_on_top = rng.random() < 0.5
            key.append({"n": n, "line": k, "a": "B" if b_on_top else "A"})
            text = texts[int(k.split("|")[1])]
            for j, pts in enumerate((b[k], a[k]) if b_on_top else (a[k], b[k])):
                lines.append(pts)
                labels.append(f"{n}{'ab'[j]}: {text}")
        png = render_png(lines, PageOptions(width=1400, background="white", label_size=16,
                                                   label_color="black", stroke_width=2.2, max_text_height=60), labels=labels)
        (args.out / f"sheet-{start // PER_SHEET:02d}.png").write_bytes(png[0])
    (args.out / "key.json").write_text(json.dumps({"texts": args.texts, "seeds": seeds, "b": args.b,
                                                   "alike": len(a) - len(keys), "pairs": key}, indent=1))
    print(f"{len(keys)} pairs of {len(a)} lines on {math.ceil(len(keys) / PER_SHEET)} sheets in {args.out} "
          f"({len(a) - len(keys)} alike); the judge writes {args.out / 'judgements.json'}")


def sign_test(wins: int, losses: int) -> float:
    """One-sided P(at least `wins` of wins + losses fair coin flips)."""
    n = wins + losses
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n if n else 1.0


def tally(out: Path) -> dict:
    key = json.loads((out / "key.json").read_text())
    said = {j["n"]: j for j in json.loads((out / "judgements.json").read_text())}
    counts = {"B better": 0, "B worse": 0, "alike": key["alike"], "A exact": 0, "B exact": 0}
    for pair in key["pairs"]:
        j = said[pair["n"]]
        label = {pair["a"]: "a", ("A" if pair["a"] == "B" else "B"): "b"}  # version -> how it was drawn
        for version in "AB":
            counts[f"{version} exact"] += bool(j[f"{label[version]}_exact"])
        if j["better"] == label["B"]:
            counts["B better"] += 1
        elif j["better"] == label["A"]:
            counts["B worse"] += 1
        else:
            counts["alike"] += 1
    counts["p"] = float(f"{sign_test(counts['B better'], counts['B worse']):.2g}")  # 2 significant figures
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make", help="write both versions and draw the blind sheets")
    m.add_argument("out", type=Path)
    m.add_argument("--b", action="append", default=[], metavar="NAME=VALUE",
                   help="a WriteOptions field that B changes (repeat for several)")
    m.add_argument("--texts", default="lines60", help="lines60, phrases, or a file of one text per line")
    m.add_argument("--seeds", default="1,2,3")
    m.add_argument("--model", default=None, help="a handwriting model (default: the bundled one)")
    m.add_argument("--shuffle", type=int, default=5, help="seed of the order and of which version is a")
    t = sub.add_parser("tally", help="unblind OUT/judgements.json")
    t.add_argument("out", type=Path)
    args = ap.parse_args()
    if args.command == "make":
        if not args.b:
            ap.error("give at least one --b NAME=VALUE")
        make(args)
    else:
        print(json.dumps(tally(args.out)))


if __name__ == "__main__":
    main()
