"""Sampling speed: handwriting lines as one batch, one text stream, `write` of a paragraph.

    python bench/sample.py [--threads 2] [--quick] [--json out.json]

No trained weights are needed: the models are randomly initialised at the
sizes that ship (handwriting 3x400, K=20, M=10, alphabet of 80; char-RNN
2x512 and 3x512, vocabulary of 80). A random synthesis network's window
wanders, so its eq. 51 step is pinned (κ̂ weights zeroed, bias log(1/25)):
the window moves 1/25 character per point and every line ends by the normal
stopping rule after ~25 points per character (a rate of raw online
handwriting; `genseq data iam-ondb` writes 21.4 per character by default,
11.3 with --every 2), so the step count is realistic; the time per step does not depend on the weights.

- handwriting batch: 8 lines of 40 characters in one `sample_synthesis` call
  with bf16 sampling weights prepacked for oneDNN and the step in numpy
  (genseq's default on the CPU, npstep.py); with the same weights and the
  torch step (`model.step` + `mdn_sample`, what a GPU runs); with the bf16
  weights not prepacked; and with fp32 weights, same process; target < 1 s.
- text stream: `genseq.text.sample.generate`, one stream; target >= 1,000 chars/s.
- write: `write_handwriting` of a 200-character paragraph (clean, wrap at 50,
  sample all lines as one batch, render SVG), unprimed (see below); target <= 5 s;
  with the default 8 candidates per line chosen word by word by the bundled
  recognizer, with 8 chosen as whole lines, and with 1 (no choice) as the baseline.
"""
from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

POINTS_PER_CHAR = 25
ALPHABET = " abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"()-+/&#%*"  # 80


def sizes(quick: bool, hidden: int) -> dict:
    if quick:
        return dict(hand=dict(hidden=32, layers=3, mixtures=4, window=3), lines=8, line_chars=10, repeats=1,
                    text_sizes=[(2, 64)], text_chars=200, paragraph=60)
    return dict(hand=dict(hidden=hidden, layers=3, mixtures=20, window=10), lines=8, line_chars=40, repeats=5,
                text_sizes=[(2, 512), (3, 512)], text_chars=3000, paragraph=200)


def hand_model(S, points_per_char: float):
    import torch
    from genseq.hand.model import HandwritingConfig, HandwritingModel
    torch.manual_seed(0)
    m = HandwritingModel(HandwritingConfig(kind="synthesis", alphabet=ALPHABET, **S["hand"])).eval()
    M = m.config.window
    with torch.no_grad():  # eq. 51: κ grows by exp(κ̂) = 1/points_per_char per point
        m.window_layer.weight[2 * M:].zero_()
        m.window_layer.bias[2 * M:].fill_(math.log(1.0 / points_per_char))
    return m


def recognizer(quick: bool):
    """The bundled recognizer's file, or (quick, or none installed) a random one of its size."""
    import tempfile
    import torch
    from genseq.checkpoint import bundled_path, save_checkpoint
    from genseq.errors import GenseqError
    from genseq.reader.model import Recognizer, RecognizerConfig
    from genseq.reader.api import DEFAULT_RECOGNIZER
    if not quick:
        try:
            return bundled_path(DEFAULT_RECOGNIZER)
        except GenseqError:
            pass
    torch.manual_seed(0)
    config = RecognizerConfig(alphabet=ALPHABET, **({"hidden": 16, "layers": 1} if quick else {}))
    path = Path(tempfile.mkdtemp()) / "recognizer.pt"
    save_checkpoint(path, kind="recognizer", config=config.to_dict(), meta={}, model_state=Recognizer(config).state_dict())
    return path


def words(n: int, seed: int) -> str:
    import random
    rng = random.Random(seed)
    out = ""
    while len(out) < n:
        out += "".join(rng.choice(ALPHABET[1:27]) for _ in range(rng.randint(2, 8))) + " "
    return out[:n - 1].rstrip() + "."


def main() -> None:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--hand-hidden", type=int, default=400,
                   help="handwriting LSTM width (400: Graves; the bundled model: see its card)")
    p.add_argument("--points-per-char", type=float, default=POINTS_PER_CHAR,
                   help="pinned window speed (default 25; IAM-OnDB as genseq converts it: 21.4, or 11.3 with --every 2)")
    args = p.parse_args()
    C.set_threads(args.threads)
    import torch
    from genseq.hand.fast import npstep, packed
    from genseq.hand.sample import HandSampleOptions, sample_synthesis
    from genseq.hand.api import HandModel, WriteOptions, write_handwriting
    from genseq.text.corpus import Vocab
    from genseq.text.model import CharRNN, CharRNNConfig
    from genseq.text.sample import TextSampleOptions, generate

    S = sizes(args.quick, args.hand_hidden)
    results = {"machine": C.machine(), "settings": S}
    rows = []

    # -- handwriting lines, one batch ---------------------------------------------
    model = hand_model(S, args.points_per_char)
    texts = [words(S["line_chars"], seed=i) for i in range(S["lines"])]
    hand = {}
    pack = packed._pack
    variants = (("bf16", "bf16"), ("bf16_torch_step", "bf16"), ("bf16_unpacked", "bf16"), ("fp32", "fp32"))

    def run(name, precision):
        # bf16_unpacked: the bf16 weights handed to F.linear as they are (oneDNN
        # then converts them to its layout at every call), the baseline for prepacking.
        packed._pack = (lambda *args: None) if name == "bf16_unpacked" else pack
        npstep.ENABLED = name != "bf16_torch_step"
        opts = HandSampleOptions(seed=0, resample_bad=0, precision=precision)
        t0 = time.perf_counter()
        lines = sample_synthesis(model, texts, opts)
        return time.perf_counter() - t0, lines

    # One untimed run each, then the variants take turns, so a burst of load
    # from another tenant falls on all of them; a ratio is the median of the
    # ratios within a round.
    times = {name: [] for name, _ in variants}
    for round_ in range(S["repeats"] + 1):
        for name, precision in variants:
            t, lines = run(name, precision)
            if round_:
                times[name].append(t)
                hand[name] = {"points_per_line": [len(ln.points) for ln in lines],
                              "statuses": [ln.status for ln in lines]}
    packed._pack = pack
    npstep.ENABLED = True
    for name, _ in variants:
        hand[name].update(seconds=statistics.median(times[name]), times=times[name])

    def ratio(slow, fast):
        return statistics.median([a / b for a, b in zip(times[slow], times[fast])])

    hand["speedup_bf16_vs_fp32"] = ratio("fp32", "bf16")
    hand["speedup_prepacked"] = ratio("bf16_unpacked", "bf16")
    hand["speedup_numpy_step"] = ratio("bf16_torch_step", "bf16")
    results["hand_batch"] = hand
    n_chars = S["lines"] * S["line_chars"]
    for name, what in (("bf16", "bf16 weights, prepacked, numpy step"),
                       ("bf16_torch_step", "bf16 weights, prepacked, torch step"),
                       ("bf16_unpacked", "bf16 weights, not prepacked"), ("fp32", "fp32 weights")):
        r = hand[name]
        rows.append([f"{S['lines']} hand lines x {S['line_chars']} chars, {what}", r["seconds"],
                     f"{sum(r['points_per_line']) / n_chars:.1f} pts/char", "< 1 s",
                     "yes" if r["seconds"] < 1 else "no"])

    # -- one text stream ----------------------------------------------------------
    vocab = Vocab(tuple("\n" + ALPHABET[:79]))
    results["text"] = {}
    for layers, hidden in S["text_sizes"]:
        torch.manual_seed(0)
        cm = CharRNN(CharRNNConfig(vocab_size=len(vocab), layers=layers, hidden=hidden)).eval()
        opts = TextSampleOptions(length=S["text_chars"], seed=0)
        list(generate(cm, vocab, TextSampleOptions(length=20, seed=1)))  # warm-up
        t0 = time.perf_counter()
        n = sum(len(piece) for piece in generate(cm, vocab, opts))
        rate = n / (time.perf_counter() - t0)
        results["text"][f"{layers}x{hidden}"] = {"chars_per_s": rate, "chars": n}
        rows.append([f"text stream {layers}x{hidden}, one stream", n / rate, f"{rate:,.0f} chars/s",
                     ">= 1,000 chars/s", "yes" if rate >= 1000 else "no"])

    # -- write a paragraph end to end ---------------------------------------------
    para = words(S["paragraph"], seed=99)
    hm = HandModel(model, {})
    reader = recognizer(args.quick)
    results["write"] = {}
    for k, by_word in ((WriteOptions().candidates, True), (WriteOptions().candidates, False), (1, True)):
        t0 = time.perf_counter()
        # Unprimed: a random network cannot pick up a style's priming (its pinned window
        # runs on from the style's text), so every line would be flagged and written 3 times.
        pages, written = write_handwriting(para, hm, WriteOptions(seed=0, max_chars=50, unprimed=True,
                                                                   candidates=k, by_word=by_word,
                                                                   recognizer=reader if k > 1 else None))
        t = time.perf_counter() - t0
        lines = [w for w in written if w is not None]
        name = f"candidates_{k}" + ("" if by_word or k == 1 else "_by_line")
        results["write"][name] = {
            "seconds": t, "chars": len(para), "lines": len(lines), "pages": len(pages),
            "tries": [w.tries for w in lines], "statuses": [w.status for w in lines],
            "points": sum(len(w.points) for w in lines)}
        how = "" if k == 1 else (", chosen by word" if by_word else ", chosen by line")
        rows.append([f"write {len(para)}-char paragraph ({len(lines)} lines), {k} candidate(s) per line{how}", t,
                     f"{sum(len(w.points) for w in lines) / len(para):.1f} pts/char", "<= 5 s",
                     "yes" if t <= 5 else "no"])

    m = results["machine"]
    text = C.table(f"Sampling ({C.where(m)})",
                   ["what", "seconds", "rate", "target", "met"], rows,
                   [f"handwriting numpy step vs torch step, same process: {hand['speedup_numpy_step']:.2f}x",
                    f"handwriting bf16 vs fp32 weights, same process: {hand['speedup_bf16_vs_fp32']:.2f}x",
                    f"handwriting bf16 prepacked vs not: {hand['speedup_prepacked']:.2f}x",
                    f"random models; window pinned to {args.points_per_char:g} points per character (see --help)"])
    C.emit(args, results, text)


if __name__ == "__main__":
    main()
