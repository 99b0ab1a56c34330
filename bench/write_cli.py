"""`genseq write` through the CLI: this checkout against another one, taking turns.

    git worktree add /tmp/genseq-old <commit>
    python bench/write_cli.py /tmp/genseq-old [--rounds 3] [--json out.json]

Each round runs `python cli.py write TEXT -o ... --seed 2` for three texts in
both checkouts, one after the other (who goes first alternates), with the bundled models and default
options (8 candidates chosen word by word, a bundled style): everything a user
waits for, `import torch` and model loading included. A figure is the median
of the rounds, a ratio the median of the ratios within a round. It also says
whether the two checkouts wrote the same SVG, byte for byte.
"""
from __future__ import annotations

import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

COMMON = ("the of and to in is was that for it with as his on be at by had not are but from or have an "
          "they which one you were her all she there would their we him been has when who will more no "
          "if out so said what up its about into than them can only other new some could time these two "
          "may then do first any my now such like our over man me even most made after also did many "
          "before must through back years where much your way well down should because each just those "
          "people").split()


def texts(quick: bool) -> dict[str, str]:
    if quick:
        return {"short": "a quick test"}
    rng = random.Random(1)
    return {"one line": "Hello world",
            "short": "The quick brown fox jumps over 12 lazy dogs, and then some more text to wrap onto a second line.",
            "page": " ".join(rng.choice(COMMON) for _ in range(110))}


def run(checkout: Path, text: str, out: Path, quick: bool) -> float:
    cmd = [sys.executable, str(checkout / "cli.py"), "write", text, "-o", str(out), "--seed", "2"]
    if quick:
        cmd += ["--candidates", "1"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=checkout)
    return time.perf_counter() - t0


def commit(checkout: Path) -> str | None:
    """The checkout's git commit (with "+changes" when its tracked files differ), or None."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=checkout).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty else "")


def main() -> None:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("other", type=Path, help="the other checkout (a directory with cli.py)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    C.set_threads(args.threads)  # the CLI runs inherit OMP_NUM_THREADS / MKL_NUM_THREADS
    here, other = C.ROOT, args.other.resolve()
    if not (other / "cli.py").is_file():
        sys.exit(f"error: {other} has no cli.py (give the root of another genseq checkout)")
    rounds = 1 if args.quick else args.rounds
    tmp = Path(tempfile.mkdtemp())
    results = {"machine": C.machine(), "this": str(here), "this_commit": commit(here), "other": str(other),
               "other_commit": commit(other), "rounds": rounds, "texts": {}}
    rows = []
    for name, text in texts(args.quick).items():
        times = {"this": [], "other": []}
        for r in range(rounds):
            order = (("other", other), ("this", here))
            for side, root in order[:: 1 if r % 2 == 0 else -1]:  # who goes first alternates
                times[side].append(run(root, text, tmp / f"{name}-{side}.svg", args.quick))
        same = (tmp / f"{name}-this.svg").read_bytes() == (tmp / f"{name}-other.svg").read_bytes()
        ratio = statistics.median([o / t for o, t in zip(times["other"], times["this"])])
        results["texts"][name] = {"chars": len(text), "times": times, "ratio_other_over_this": ratio,
                                  "same_svg": same}
        rows.append([f"{name} ({len(text)} chars)", statistics.median(times["this"]),
                     statistics.median(times["other"]), f"{ratio:.2f}x", "yes" if same else "no"])
    text = C.table(f"genseq write through the CLI ({C.where(results['machine'])})",
                   ["text", "this s", "other s", "other / this", "same SVG"], rows,
                   [f"this: {here} ({results['this_commit']})", f"other: {other} ({results['other_commit']})",
                    f"medians of {rounds} rounds; the checkouts take turns, who goes first alternates"])
    C.emit(args, results, text)


if __name__ == "__main__":
    main()
