"""Character-model training speed: genseq's real training path vs a bare nn.LSTM loop.

    python bench/train_text.py [--threads 2] [--quick] [--json out.json]

genseq side: a corpus built with `build_corpus` from random text in a temp
dir, read by `TextTask` (HDF5 slices, B parallel streams, carried hidden
state) and trained by `genseq.train.loop.train` with all its bookkeeping
(learning-rate schedule, gradient clipping, non-finite guards, metrics log).
Its speed is the loop's own chars/s log, written every 10 steps; the first
window (warm-up) is dropped.

Bare side: embedding + nn.LSTM + linear, forward, cross-entropy, backward and
an AdamW step on random tokens already in memory, same sizes and precision,
timed in windows of 10 steps the same way. It runs before and after the
genseq run and the median over all those windows is taken, so drift in
machine load (other jobs) hits both sides alike. Ratio = genseq chars/s / bare chars/s (1.0 = no overhead).
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

WINDOW = 10  # the loop logs its rate every 10 steps


def sizes(quick: bool) -> dict:
    if quick:
        return dict(layers=2, hidden=64, batch=8, steps=32, windows=2, chars=60_000)
    return dict(layers=2, hidden=512, batch=64, steps=128, windows=5, chars=400_000)


def random_text(n: int, seed: int = 0) -> str:
    import numpy as np
    rng = np.random.default_rng(seed)
    letters = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"()-")
    words = ["".join(rng.choice(letters, size=rng.integers(1, 9))) for _ in range(5000)]
    out, size = [], 0
    while size < n:
        w = words[rng.integers(len(words))]
        out.append(w)
        size += len(w) + 1
    text = " ".join(out)
    return "\n".join(text[i:i + 70] for i in range(0, len(text), 70))[:n]


def bare_rate(S: dict, vocab: int, precision: str, windows: int) -> list[float]:
    """chars/s of `windows` windows of WINDOW bare training steps (after one warm-up window)."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    torch.manual_seed(0)
    B, T, H = S["batch"], S["steps"], S["hidden"]
    embed, lstm, dec = nn.Embedding(vocab, H), nn.LSTM(H, H, S["layers"], batch_first=True), nn.Linear(H, vocab)
    params = [*embed.parameters(), *lstm.parameters(), *dec.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3)
    tokens = torch.randint(0, vocab, (B, T + 1))
    rates = []
    for w in range(windows + 1):
        t0 = time.perf_counter()
        for _ in range(WINDOW):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out, _ = lstm(embed(tokens[:, :-1]))
                logits = dec(out)
            loss = F.cross_entropy(logits.float().reshape(-1, vocab), tokens[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if w:  # the first window is warm-up
            rates.append(WINDOW * B * T / (time.perf_counter() - t0))
    return rates


def genseq_rate(S: dict, corpus: Path, out: Path, precision: str, threads: int, windows: int) -> list[float]:
    from genseq.text.task import TextTask
    from genseq.train.loop import TrainOptions, train
    task = TextTask(corpus, {"layers": S["layers"], "hidden": S["hidden"]}, batch=S["batch"], steps=S["steps"],
                    eval_chars=2000)
    steps = WINDOW * (windows + 1)
    opts = TrainOptions(out=out, max_steps=steps, warmup=5, eval_every=10**9, save_every=1e9, device="cpu",
                        precision=precision, threads=threads, progress=False)
    train(task, opts)
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["chars_per_s"] for r in recs if "chars_per_s" in r]
    return rates[1:]  # drop the warm-up window


def main() -> None:
    args = C.parser(__doc__.splitlines()[0]).parse_args()
    C.set_threads(args.threads)
    from genseq.text.corpus import CorpusFile, build_corpus

    S = sizes(args.quick)
    results = {"machine": C.machine(), "settings": S, "precisions": {}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "text.txt").write_text(random_text(S["chars"]), encoding="utf-8")
        build_corpus([tmp / "text.txt"], tmp / "corpus.h5", val_frac=0.01)
        with CorpusFile(tmp / "corpus.h5") as cf:
            vocab = len(cf.vocab)
        for precision in ("fp32", "bf16"):
            before = bare_rate(S, vocab, precision, S["windows"])
            ours = genseq_rate(S, tmp / "corpus.h5", tmp / f"run-{precision}", precision, args.threads, S["windows"])
            after = bare_rate(S, vocab, precision, S["windows"])
            # Medians: one window in a few is slowed by other tenants (up to 15x for a step).
            bare = statistics.median(before + after)
            mine = statistics.median(ours)
            results["precisions"][precision] = {"bare_chars_per_s": before + after, "genseq_chars_per_s": ours,
                                                "ratio": mine / bare}
            rows.append([precision, bare, mine, mine / bare, f"{100 * (bare / mine - 1):+.1f}%"])
    m = results["machine"]
    text = C.table(
        f"Char-LSTM training {S['layers']}x{S['hidden']}, batch {S['batch']} x {S['steps']} chars, vocab {vocab} "
        f"({C.where(m)})",
        ["precision", "bare chars/s", "genseq chars/s", "genseq / bare", "overhead"], rows,
        [f"medians over {S['windows']} windows of {WINDOW} steps (bare: {S['windows']} before and "
         f"{S['windows']} after genseq's run)",
         "genseq = HDF5 corpus -> TextTask -> genseq.train.loop.train (clip, guards, schedule, metrics)"])
    C.emit(args, results, text)


if __name__ == "__main__":
    main()
