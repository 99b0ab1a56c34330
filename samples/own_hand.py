#!/usr/bin/env python3
""""Your own handwriting", measured on stand-in writers: `python samples/own_hand.py DIR ...`.

DIR holds stand-in users' JSONL files (samples/standin_writers.py). For each
`W-capture.jsonl` (or `--kind tablet`), the first --mine lines are the user's
sample (written to `DIR/_W-mine.jsonl`) and the rest are held out as the
writer's real hand (`DIR/_W-rest.jsonl`); a second run on the same DIR
while one runs is refused, since it would overwrite them. For 10 fixed
phrases it writes:

- default: the model's default style (what a user gets without a sample);
- primed: `--style-file` with the sample, as `genseq write` does (stood
  upright to prime, the lines leant back towards the writer's slant:
  genseq.hand.slant; `--as-written` primes with the lines as written,
  `--lean-back F` leans them F of the way back);
- primed-raw: the same sample scaled only by the spread of its offsets (how
  `write --style-file` primed before the ink was normalised; refused where
  a line of the ink as recorded is longer than a priming line may be);
- fine-tuned: with each model given by `--tuned W=MODEL`, in the model's
  default style (with `--style N`, its carried line N; with
  `--carry-density D`, the lines it carries chosen again from the sample
  at D of the model's points per character);
- tuned+primed: the fine-tuned model primed with the sample.

and reports, per writer and way: the character error rate (CER) of the
bundled reader (or `--judge`) on the phrases, and the style distance
(genseq.strokes.style) of the written lines to the writer's held-out real
lines, beside the distance of
each bundled style; first, per writer, the reader's CER on the writer's
held-out real lines (only that with `--real-only`). `--picture OUT.svg` draws, per writer, the held-out real
lines, then the primed and fine-tuned ones (do not commit it: it shows
UNIPEN ink); with `--public` it leaves the real lines out. `--spread UNIPEN_ARCHIVE` prints the between-writer spread of
the style features (genseq.strokes.style.SPREAD).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from genseq.hand.choose import read_lines  # noqa: E402
from genseq.hand.data import normalise  # noqa: E402
from genseq.reader.evaluate import char_error_rate  # noqa: E402
from genseq.errors import GenseqError  # noqa: E402
from genseq.hand.api import PRIME_DENSITY, WriteOptions, bundled_styles, load_hand_model  # noqa: E402
from genseq.reader import load_recognizer  # noqa: E402
from genseq.hand.api import write_handwriting  # noqa: E402
from genseq.strokes.jsonl import read_jsonl  # noqa: E402
from genseq.strokes.normalise import model_ink  # noqa: E402
from genseq.strokes.style import FEATURES, hand_features, style_distance  # noqa: E402


def spread(archive: str, writers: int = 200) -> dict:
    """The between-writer standard deviation of each style feature: UNIPEN
    training-split writers with 10+ lines or words, each normalised to the
    bundled model's ink."""
    from collections import defaultdict

    from genseq.strokes.normalise import IAM_TARGET, RawLine, normalise_lines
    from genseq.strokes.split import split_of
    from genseq.strokes.unipen import UnipenOptions, read_unipen
    by = defaultdict(list)
    for p in read_unipen(archive, UnipenOptions(categories=("6", "8"), progress=False)):
        if split_of(p.group, 0.05, 0.05, 0) == "train" and len(p.text) >= 4:
            by[p.group].append(p)
    feats = []
    for group, ps in sorted(by.items())[:writers]:
        if len(ps) < 10:
            continue
        pts = normalise_lines([RawLine(p.text, p.strokes) for p in ps], IAM_TARGET)
        f = hand_features(list(zip(pts, [p.text for p in ps])))
        if f:
            feats.append(f)
    return {k: float(np.std([f[k] for f in feats])) for k in FEATURES} | {"writers": len(feats)}

PHRASES = [
    "Meet me at the station at 7:45 tomorrow.",
    "Dear Margaret, thank you for the lovely flowers!",
    "Call Xavier on 555-0142 before Friday.",
    "The quick brown fox jumps over the lazy dog.",
    "Flat 3B, 221 Baker Street, London",
    "Buy milk, eggs (a dozen) and jam; pay 12.",
    "Is it really true? Yes, quite true.",
    "Zoe's birthday is on June 14th, 2027.",
    "Keep calm and write on.",
    "Joined the quiz team: six of us in total.",
]


def written(hm, reader, opts: WriteOptions, seeds: int = 1, misread: bool = False) -> tuple[list, float]:
    """The 10 phrases written under `opts` at `seeds` seeds from opts.seed on:
    ((points, text) lines in data units, CER); `misread` prints each line the
    reader reads otherwise, with what it read."""
    lines = []
    for k in range(seeds):
        lines += write_handwriting("\n".join(PHRASES), hm, replace(opts, seed=opts.seed + k))[1]
    config = hm.config
    reads = read_lines(reader, [ln.points for ln in lines], (config.norm_mean, config.norm_std))
    for ln, read in zip(lines, reads):
        if misread and read != ln.text:
            print(f"    misread {ln.text!r} as {read!r}")
    data = [(ln.points[:, :2] * np.asarray(config.norm_std, np.float32), ln.text) for ln in lines]
    data = [(np.concatenate([p, ln.points[:, 2:]], 1), t) for (p, t), ln in zip(data, lines)]
    return data, char_error_rate([ln.text for ln in lines], reads)


def primed_raw(hm, reader, opts: WriteOptions, seeds: int, real_f: dict) -> dict:
    """The phrases primed with opts.style_file scaled only by the spread of its offsets (the
    priming before the ink was normalised): {"cer", "style"}, or {"refused": why} where a
    line of the ink as recorded is longer than a priming line may be (tablet ink)."""
    import genseq.strokes.normalise as nz
    saved = nz.model_ink
    nz.model_ink = lambda meta: None  # the old priming: offsets' spread only
    try:
        data, c = written(hm, reader, opts, seeds)
        return {"cer": c, "style": style_distance(hand_features(data), real_f)}
    except GenseqError as err:
        return {"refused": str(err)}
    finally:
        nz.model_ink = saved


def read_real(reader, real: list, config) -> float:
    """The reader's CER on a writer's real lines ((points, text) in data units):
    how plainly the writer's own ink reads, a yardstick for the written lines'."""
    reads = read_lines(reader, [normalise(p, config) for p, _ in real], (config.norm_mean, config.norm_std))
    return char_error_rate([t for _, t in real], reads)


def carried(hm, run: Path, mine: Path, density: float) -> list[dict]:
    """The lines fine-tune `hm` (run folder `run`, trained on a copy of `mine`)
    would carry at `density` (genseq.hand.own.own_styles)."""
    from genseq.hand.own import own_styles
    converted = sorted(run.glob("*.h5"))
    if len(converted) != 1:
        sys.exit(f"{run}: expected the one converted .h5 file of the fine-tune")
    return own_styles(converted[0], hm.config, source=mine, target=model_ink(hm.meta), density=density)


def hold_dir(folder: Path):
    """An exclusive lock on `folder` while the returned lock file stays open: each run writes
    the _W-mine.jsonl and _W-rest.jsonl of its kind there, so two runs at once (a capture and a
    tablet run) would overwrite each other's samples. Exits with a message if another run holds it."""
    import fcntl
    fh = open(folder / ".own_hand.lock", "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        sys.exit(f"{folder} is in use by another samples/own_hand.py run (both write _W-mine.jsonl there): "
                 "run them one after the other, or give each its own folder")
    return fh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, nargs="?")
    ap.add_argument("--spread", metavar="UNIPEN_ARCHIVE", help="only print the features' between-writer spread")
    ap.add_argument("--kind", choices=["capture", "tablet"], default="capture")
    ap.add_argument("--mine", type=int, default=20, help="lines of each writer used as the sample")
    ap.add_argument("--model", default="default")
    ap.add_argument("--tuned", action="append", default=[], metavar="W=MODEL")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=1, help="write the phrases at this many seeds (from --seed on)")
    ap.add_argument("--bias", type=float, default=None, help="bias of the primed and fine-tuned ways (default: the default)")
    ap.add_argument("--style-lines", type=int, default=WriteOptions().style_lines)
    ap.add_argument("--prime-density", type=float, default=None,
                    help=f"share of the model's points per character for the priming ink (default: {PRIME_DENSITY})")
    ap.add_argument("--carry-density", type=float, default=None,
                    help="choose the lines each --tuned model carries again, from the writer's sample at this share "
                         "of the model's points per character (default: as the model file has them)")
    ap.add_argument("--style", type=int, default=None,
                    help="which of the lines a --tuned model carries primes its fine-tuned way (default: its first)")
    ap.add_argument("--as-written", action="store_true",
                    help="prime with the sample's lines as written, not stood upright (genseq.hand.slant)")
    ap.add_argument("--lean-back", type=float, default=None,
                    help="share of the way back from upright to the writer's slant for the primed lines "
                         "(default: genseq.hand.slant.LEAN_BACK)")
    ap.add_argument("--candidates", type=int, default=WriteOptions().candidates)
    ap.add_argument("--recognizer", default=None, help="the reader that chooses among candidates (default: bundled)")
    ap.add_argument("--judge", default=None, help="the reader whose character error rate is reported (default: bundled)")
    ap.add_argument("--picture", type=Path, default=None)
    ap.add_argument("--public", action="store_true",
                    help="leave the writers' real lines out of --picture (what samples/ may show)")
    ap.add_argument("--picture-phrases", type=int, default=len(PHRASES), help="phrases per way in --picture")
    ap.add_argument("--misread", action="store_true", help="print each primed or fine-tuned line the reader misreads")
    ap.add_argument("--real-only", action="store_true",
                    help="only print the reader's CER on each writer's held-out real lines")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.spread:
        print(json.dumps(spread(args.spread)))
        return
    if args.dir is None:
        sys.exit("give the folder of stand-in writers (samples/standin_writers.py)")
    lock = hold_dir(args.dir)  # held until the run's samples and results are written
    import torch
    torch.set_num_threads(1)
    if args.prime_density is not None:
        import genseq.hand.api as api
        api.PRIME_DENSITY = args.prime_density
    if args.lean_back is not None:
        if args.as_written or not 0 <= args.lean_back <= 1:
            sys.exit("--lean-back: a share between 0 and 1 of the way back, for lines primed upright")
        import genseq.hand.slant as slant
        slant.LEAN_BACK = args.lean_back
    hm = load_hand_model(None if args.model == "default" else args.model)
    reader = load_recognizer(args.judge or "default")
    target = model_ink(hm.meta)
    tuned = dict(t.split("=", 1) for t in args.tuned)
    styles = [(s.points, s.text) for s in bundled_styles()]
    style_feats = [hand_features([st]) for st in styles]
    results, picture = {}, []
    base = WriteOptions(seed=args.seed, candidates=args.candidates, max_chars=60, recognizer=args.recognizer)
    default_lines, default_cer = [], None
    if not args.real_only:
        default_lines, default_cer = written(hm, reader, base, args.seeds)
        print(f"default style: CER {default_cer:.3f}")
    own = base if args.bias is None else replace(base, bias=args.bias)
    own = replace(own, upright=not args.as_written)
    for path in sorted(args.dir.glob(f"*-{args.kind}.jsonl")):
        name = path.name.rsplit("-", 1)[0]
        lines = path.read_text().splitlines()
        mine = args.dir / f"_{name}-mine.jsonl"
        mine.write_text("\n".join(lines[:args.mine]) + "\n")
        rest = args.dir / f"_{name}-rest.jsonl"
        rest.write_text("\n".join(lines[args.mine:]) + "\n")
        real = [(s.points, s.text) for s in read_jsonl(rest, target=target)]
        real_f = hand_features(real)
        real_cer = read_real(reader, real, hm.config)
        print(f"{name}: the reader reads its {len(real)} held-out real lines at CER {real_cer:.3f}")
        if args.real_only:
            results[name] = {"real_cer": real_cer}
            continue
        r = {"real_cer": real_cer, "lines": len(lines), "real": real_f,
             "bundled_styles": [style_distance(f, real_f) for f in style_feats],
             "default": {"cer": default_cer, "style": style_distance(hand_features(default_lines), real_f)}}
        ways = {"primed": (hm, replace(own, style_file=mine, style_lines=args.style_lines))}
        if name in tuned:
            mine_model = load_hand_model(tuned[name])
            if args.carry_density is not None:
                mine_model.meta["styles"] = carried(mine_model, Path(tuned[name]).parent, mine, args.carry_density)
            ways["fine-tuned"] = (mine_model, own if args.style is None else replace(own, style=args.style))
            ways["tuned+primed"] = (mine_model, ways["primed"][1])
        try:
            done = [(way, *written(model, reader, opts, args.seeds, args.misread)) for way, (model, opts) in ways.items()]
        except GenseqError as err:  # a sample that cannot prime (say five notes of two lines each)
            print(f"{name}: refused: {err}")
            results[name] = {"real_cer": real_cer, "refused": str(err)}
            continue
        for way, data, c in done:
            r[way] = {"cer": c, "style": style_distance(hand_features(data), real_f), "features": hand_features(data)}
            picture.append((name, way, data))
        r["primed-raw"] = primed_raw(hm, reader, replace(own, style_file=mine), args.seeds, real_f)
        if not args.public:
            picture.insert(len(picture) - len(ways), (name, "real", real[:len(PHRASES)]))
        results[name] = r
        near = min(r["bundled_styles"])
        print(f"{name}: real {json.dumps({k: round(v, 2) for k, v in real_f.items()})}")
        print(name)
        for way in ("default", "primed-raw", *ways):
            if "refused" in r[way]:
                print(f"  {way:11s} refused: {r[way]['refused']}")
                continue
            ratio = f"{r[way]['cer'] / default_cer:.2f}x default" if default_cer > 0 else "the default style: no error"
            print(f"  {way:11s} CER {r[way]['cer']:.3f} ({ratio})  "
                  f"style distance {r[way]['style']:.2f}  (nearest bundled style {near:.2f})")
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()},
                                         "default_cer": default_cer, "results": results}, indent=1))
    if args.picture:
        from genseq.render import PageOptions, render_pages, save_pages
        k = args.picture_phrases
        pts = [p for _, _, data in picture for p, _ in data[:k]]
        labels = [f"{n} {w}: {t}" for n, w, data in picture for _, t in data[:k]]
        save_pages(render_pages(pts, PageOptions(width=1400, background="white"), labels=labels)[:1], args.picture)
    lock.close()


if __name__ == "__main__":
    main()
