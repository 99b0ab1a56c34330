#!/usr/bin/env python3
"""Which of a writer's lines primes best: `python samples/prime_lines.py DIR --json lines.json`.

DIR holds stand-in users' JSONL files (samples/standin_writers.py; choose
settings on `--split val` writers, so that the test writers stay for
measuring them). For each `W-capture.jsonl`, each of its first --mine lines
(the user's sample) between --min-chars and --max-chars long that the model
can write primes the bundled model in turn, as `genseq write --style-file`
would with a file of that one line, to write the 10 phrases of
samples/own_hand.py at --seeds seeds. Per line it records:

- legibility: how plainly the bundled reader reads the line itself, log p(text
  | ink) per character (genseq.hand.choose.legibility, on the line at the priming
  density, as written: `write --style-file` then stands it upright, genseq.hand.slant);
- cer: the bundled reader's character error rate on the primed phrases;
- style: the style distance of the primed phrases to the writer's other lines.

Then it prints, within writers, how legibility goes with cer and style
(Spearman), and the mean cer and style of the line each way of choosing picks:
nearest PRIME_CHARS long, genseq's own (hand.api.prime_order), and the most
legible outright. --json keeps the lines measured; a run with the same file
goes on with the writers not yet in it.

With `--tuned W=MODEL` (one per writer; MODEL the best.pt of
`genseq train handwriting W-mine.jsonl --init default`, W-mine.jsonl the
first --mine lines) it compares instead each fine-tune primed with the
first line it carries, as genseq chooses them, against the same model
carrying its lines by length alone (both at `--carry-density`). The files
fall under UNIPEN's terms: keep them out of the project.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from own_hand import written  # noqa: E402
from genseq.hand.api import PRIME_DENSITY, WriteOptions, load_hand_model, prime_order  # noqa: E402
from genseq.hand.choose import legibility  # noqa: E402
from genseq.hand.data import normalise  # noqa: E402
from genseq.reader import load_recognizer  # noqa: E402
from genseq.strokes.jsonl import read_jsonl  # noqa: E402
from genseq.strokes.normalise import model_ink  # noqa: E402
from genseq.strokes.style import hand_features, style_distance  # noqa: E402


def measure(hm, reader, path: Path, args, work: Path) -> list[dict]:
    """Every line of one writer's sample, primed with in turn (see the module's docstring)."""
    target = model_ink(hm.meta)
    lines = path.read_text().splitlines()
    mine, rest = lines[:args.mine], lines[args.mine:]
    (work / "rest.jsonl").write_text("\n".join(rest) + "\n")
    real = hand_features([(s.points, s.text) for s in read_jsonl(work / "rest.jsonl", target=target)])
    (work / "mine.jsonl").write_text("\n".join(mine) + "\n")
    primed = replace(target, points_per_char=target.points_per_char * PRIME_DENSITY)
    samples = read_jsonl(work / "mine.jsonl", target=primed)  # one per line of `mine`, in order
    if len(samples) != len(mine):
        raise SystemExit(f"{path}: {len(mine) - len(samples)} of the first {len(mine)} lines are unreadable")
    config, norm = hm.config, (hm.config.norm_mean, hm.config.norm_std)
    out = []
    for k, s in enumerate(samples):
        if not set(s.text) <= set(config.alphabet) or not args.min_chars <= len(s.text) <= args.max_chars:
            continue
        lp = float(legibility(reader, [normalise(s.points, config, 1.0)], [s.text], norm)[0])
        one = work / f"line{k}.jsonl"
        one.write_text(mine[k] + "\n")
        data, cer = written(hm, reader, WriteOptions(seed=args.seed, max_chars=60, style_file=one), args.seeds)
        out.append({"k": k, "text": s.text, "len": len(s.text), "legibility": lp, "cer": cer,
                    "style": style_distance(hand_features(data), real)})
        print(f"  line {k:2d} ({len(s.text):3d} characters): legibility {lp:6.2f}  CER {cer:.3f}  "
              f"style {out[-1]['style']:.2f}", flush=True)
    return out


def carried(reader, path: Path, model: Path, args, work: Path) -> dict:
    """A fine-tune (`genseq train handwriting W-mine.jsonl --init default -o DIR`,
    model DIR/best.pt) primed with the first line it carries, chosen as genseq
    does (hand.own.own_styles: hand.api.prime_order), against the same model
    carrying its training lines in the order by length alone, both normalised
    from the sample at --carry-density of the model's points per character:
    {way: {cer, style, line}}."""
    from genseq.checkpoint import load_checkpoint, save_checkpoint
    from genseq.hand.api import prime_legibility
    from genseq.hand.model import HandwritingConfig
    from genseq.hand.own import own_styles
    ck = load_checkpoint(model, kind="handwriting")
    config = HandwritingConfig.from_dict(ck["config"])
    (h5,) = model.parent.glob("*.h5")  # the writer's lines, converted by the fine-tune
    lines = path.read_text().splitlines()
    (work / "mine.jsonl").write_text("\n".join(lines[:args.mine]) + "\n")
    (work / "rest.jsonl").write_text("\n".join(lines[args.mine:]) + "\n")
    target = model_ink(ck["meta"])
    real = hand_features([(s.points, s.text) for s in read_jsonl(work / "rest.jsonl", target=target)])
    orders = {"genseq": prime_legibility(config, reader), "by length": lambda pool: np.full(len(pool), -np.inf)}
    out = {}
    for way, legible in orders.items():
        styles = own_styles(h5, config, legible=legible, source=work / "mine.jsonl", target=target,
                            density=args.carry_density)
        f = work / "carried.pt"
        save_checkpoint(f, kind="handwriting", config=ck["config"], meta={**ck["meta"], "styles": styles},
                        model_state=ck["model"])
        data, cer = written(load_hand_model(f), reader, WriteOptions(seed=args.seed, max_chars=60), args.seeds)
        out[way] = {"cer": cer, "style": style_distance(hand_features(data), real), "line": styles[0]["text"]}
        print(f"  fine-tuned, carried lines {way:9s}: CER {cer:.3f}  style {out[way]['style']:.2f}  "
              f"primed with {out[way]['line']!r}", flush=True)
    return out


def summary(results: dict) -> None:
    """Within-writer rank correlations and the lines each way of choosing picks."""
    from scipy.stats import spearmanr
    from genseq.strokes import Sample
    lp_cer, lp_style = [], []
    picks = {"nearest 40 characters": [], "genseq (prime_order)": [], "most legible": []}
    for rows in results.values():
        if len(rows) < 2:
            continue
        lp = np.array([r["legibility"] for r in rows])
        lp_cer.append(spearmanr(lp, [r["cer"] for r in rows])[0])
        lp_style.append(spearmanr(lp, [r["style"] for r in rows])[0])
        fake = [Sample(str(i), r["text"], np.zeros((2, 3), np.float32)) for i, r in enumerate(rows)]
        alphabet = "".join({c for r in rows for c in r["text"]})
        chosen = {"nearest 40 characters": prime_order(fake, alphabet)[0],
                  "genseq (prime_order)": prime_order(fake, alphabet, lambda pool: lp[[int(s.id) for s in pool]])[0]}
        for way, s in chosen.items():
            picks[way].append(rows[int(s.id)])
        picks["most legible"].append(rows[int(np.argmax(lp))])
    print(f"{len(lp_cer)} writers; within a writer, legibility against CER: Spearman "
          f"{np.mean(lp_cer):+.2f} (mean), against style distance {np.mean(lp_style):+.2f}")
    for way, rows in picks.items():
        cers = " ".join(f"{r['cer']:.3f}" for r in rows)
        print(f"  {way:22s} CER {np.mean([r['cer'] for r in rows]):.4f}  "
              f"style {np.mean([r['style'] for r in rows]):.3f}  (CER per writer: {cers})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--mine", type=int, default=20, help="lines of each writer used as the sample")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--min-chars", type=int, default=10)
    ap.add_argument("--max-chars", type=int, default=130)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--tuned", action="append", default=[], metavar="W=MODEL",
                    help="only compare the lines fine-tune MODEL of writer W carries (see carried())")
    ap.add_argument("--carry-density", type=float, default=None,
                    help="with --tuned: the carried lines' share of the model's points per character "
                         "(default: genseq.hand.own.STYLE_DENSITY)")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    hm = load_hand_model(None)
    reader = load_recognizer("default")
    work = Path(args.json.parent if args.json else ".") / "prime_lines.tmp"
    work.mkdir(exist_ok=True)
    if args.tuned:
        if args.carry_density is None:
            from genseq.hand.own import STYLE_DENSITY
            args.carry_density = STYLE_DENSITY
        tuned = {w: carried(reader, args.dir / f"{w}-capture.jsonl", Path(m), args, work)
                 for w, m in (t.split("=", 1) for t in args.tuned)}
        for way in ("genseq", "by length"):
            print(f"carried lines {way}: CER {np.mean([r[way]['cer'] for r in tuned.values()]):.4f}  "
                  f"style {np.mean([r[way]['style'] for r in tuned.values()]):.3f}")
        if args.json:
            args.json.write_text(json.dumps(tuned, indent=1))
        return
    results = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    for path in sorted(args.dir.glob("*-capture.jsonl")):
        name = path.name.rsplit("-", 1)[0]
        if name in results:
            continue
        print(name, flush=True)
        results[name] = measure(hm, reader, path, args, work)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    summary(results)


if __name__ == "__main__":
    main()
