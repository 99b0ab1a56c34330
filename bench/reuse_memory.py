"""What reusing the layers' activation memory gains: genseq training steps with and without, same process.

    python bench/reuse_memory.py [--rounds 8] [--threads 2] [--quick] [--json out.json]

genseq's recurrent layers take the tensors they keep for the backward pass
(gate activations, cell states, outputs, input gradients) from
`recurrent._kept`, which hands out again memory that the last step's backward
released. With `recurrent.REUSE = False` every such tensor is fresh memory,
which the kernel zero-fills page by page on first touch. The two settings
take turns, one training step each per round (who goes first alternating),
on the benchmark's synthesis batch (bench/train_handwriting.py: B=32, T=700,
3x400, bf16 autocast, AdamW). Reported: median step time of each, the median
ratio within a round, and the page faults and system CPU time per step
(getrusage).
"""
from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from train_handwriting import Trainer, make_batch, sizes  # noqa: E402


def main() -> None:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args()
    C.set_threads(args.threads)
    from genseq.hand.fast import recurrent

    S = sizes(args.quick)
    rounds = 2 if args.quick else args.rounds
    batch = make_batch(S)
    trainer = Trainer("genseq-bf16", S)
    trainer.step(batch)  # warm-up: optimizer state, the kept buffers
    times = {True: [], False: []}
    faults = {True: 0, False: 0}
    system = {True: 0.0, False: 0.0}
    for r in range(rounds):
        for reuse in ((True, False) if r % 2 else (False, True)):
            recurrent.REUSE = reuse
            u0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            trainer.step(batch)
            times[reuse].append(time.perf_counter() - t0)
            u1 = resource.getrusage(resource.RUSAGE_SELF)
            faults[reuse] += u1.ru_minflt - u0.ru_minflt
            system[reuse] += u1.ru_stime - u0.ru_stime
    recurrent.REUSE = True
    ratio = statistics.median(f / k for k, f in zip(times[True], times[False]))
    res = {name: {"median_step_s": statistics.median(times[k]), "times": times[k],
                  "page_faults_per_step": faults[k] / rounds, "system_s_per_step": system[k] / rounds}
           for name, k in (("reused", True), ("fresh", False))}
    results = {"machine": C.machine(), "settings": {**S, "rounds": rounds}, **res, "fresh_over_reused": ratio}
    rows = [[name, r["median_step_s"], f"{r['page_faults_per_step']:,.0f}", r["system_s_per_step"]]
            for name, r in res.items()]
    C.emit(args, results, C.table(
        f"genseq bf16 training step, B={S['B']} T={S['T']} {S['L']}x{S['H']}, {rounds} rounds "
        f"({C.where(results['machine'])})",
        ["activation memory", "s/step", "page faults/step", "system s/step"], rows,
        [f"fresh / reused, median within a round: {ratio:.3f}"]))


if __name__ == "__main__":
    main()
