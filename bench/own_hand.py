"""Your own handwriting: the README's fine-tune, timed, and writing in your hand against the default.

    python bench/own_hand.py MINE.jsonl [--rounds 3] [--threads 2] [--json out.json]

1. `python cli.py train handwriting MINE.jsonl --init default -o RUN -q`, the
   README's command with its defaults, timed once by the wall clock: start-up,
   converting the ink, training, evaluations and pictures.
2. In this process, the bundled models loaded once, a 200-character paragraph
   written with the defaults three ways, taking turns in each round (who goes
   first rotates): the bundled model in its default style, the bundled model
   primed with MINE.jsonl (`--style-file`), and the fine-tuned model
   (`--model RUN/best.pt`, which primes with the lines it carries). A figure is
   the median of the rounds, a ratio the median of the ratios within a round.

`--tuned MODEL` skips the fine-tune and writes with MODEL instead (say the
`best.pt` of an earlier run on the same lines). `--prime-density S` primes
with MINE resampled to S of the model's points per character instead of
genseq.hand.api.PRIME_DENSITY. Each way's points per character written are
reported beside its time. `--quick`: 2 training steps and a short text, to
check that the script runs.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

PARAGRAPH = ("Dear Margaret, thank you for the lovely flowers! They arrived on Friday at 7:45, just as "
             "we sat down to dinner. Call me on 555-0142 when you are back from London, and we will "
             "find a day for lunch.")


def fine_tune(mine: Path, run: Path, quick: bool, threads: int) -> float:
    cmd = [sys.executable, str(C.ROOT / "cli.py"), "train", "handwriting", str(mine), "--init", "default",
           "-o", str(run), "-q", "--threads", str(threads)]
    if quick:
        cmd += ["--max-steps", "2", "--eval-every", "2"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: the fine-tune failed: {(done.stdout + done.stderr).strip().splitlines()[-1:]}")
    return time.perf_counter() - t0


def main() -> None:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("mine", type=Path, help="your lines as JSON Lines (datasets/jsonl)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tuned", type=Path, default=None, help="a model fine-tuned on MINE: skip the fine-tune")
    p.add_argument("--prime-density", type=float, default=None,
                   help="share of the model's points per character for the priming ink "
                        "(default: what `write --style-file` uses, genseq.hand.api.PRIME_DENSITY)")
    args = p.parse_args()
    if not args.mine.is_file():
        sys.exit(f"error: {args.mine}: no such file")
    C.set_threads(args.threads)
    host = C.machine()  # the load before any work
    import genseq.hand.api as api
    from genseq.hand.api import WriteOptions, load_hand_model, write_handwriting
    if args.prime_density is not None:
        api.PRIME_DENSITY = args.prime_density

    if args.tuned is None:
        run = Path(tempfile.mkdtemp()) / "mine"
        tune_s, tuned_path = fine_tune(args.mine, run, args.quick, args.threads), run / "best.pt"
    else:
        tune_s, tuned_path = None, args.tuned
    text = "a quick test" if args.quick else PARAGRAPH
    rounds = 1 if args.quick else args.rounds
    base, tuned = load_hand_model(None), load_hand_model(tuned_path)
    ways = {"default": (base, {}), "primed": (base, {"style_file": args.mine}), "fine-tuned": (tuned, {})}
    times = {w: [] for w in ways}
    points = {w: [] for w in ways}  # points per character written
    for r in range(rounds):
        names = list(ways)
        for w in names[r % 3:] + names[: r % 3]:  # who goes first rotates
            model, extra = ways[w]
            t0 = time.perf_counter()
            _, written = write_handwriting(text, model, WriteOptions(seed=r + 1, **extra))
            times[w].append(time.perf_counter() - t0)
            points[w].append(sum(len(x.points) for x in written if x is not None) / len(text))
    results = {"machine": host, "mine": str(args.mine), "tuned": str(tuned_path), "fine_tune_s": tune_s,
               "rounds": rounds, "prime_density": api.PRIME_DENSITY,
               "chars": len(text), "write_s": times, "points_per_char": points,
               "ratio_over_default": {w: statistics.median(a / b for a, b in zip(times[w], times["default"]))
                                      for w in ways}}
    rows = [[f"write {len(text)} characters: {w}", statistics.median(times[w]),
             f"{results['ratio_over_default'][w]:.2f}x", f"{statistics.mean(points[w]):.2f}"] for w in ways]
    if tune_s is not None:
        rows.insert(0, ["fine-tune (the README's command)", tune_s, None, None])
    out = C.table(f"Your own handwriting ({C.where(results['machine'])})",
                  ["what", "s", "/ default", "points per character"], rows,
                  [f"fine-tune: one run, wall clock; writing: medians of {rounds} rounds, "
                   "ratios within a round, the three ways taking turns"])
    C.emit(args, results, out)


if __name__ == "__main__":
    main()
