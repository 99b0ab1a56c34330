"""Synthesis-network training speed: genseq vs a straightforward port, same process.

    python bench/train_handwriting.py [--threads 2] [--quick] [--json out.json]

The port (class `Port` below) is what a first translation of Graves 2013
section 5 looks like: an nn.LSTMCell for layer 1 with the window computed step
by step in Python (x[:, t] slices, one cell call per step), then nn.LSTM over
the whole sequence for layers 2..L, then the same mixture loss
(genseq.hand.mdn). Both models get the same random batch (B sequences of T
points, texts of ~U characters over an alphabet of V) and do forward,
backward, gradient clipping and an AdamW step. The variants take turns, one
step each per round (5 rounds after a warm-up step each); the figure is the
median step time, reported as time steps per second (B*T / s), and the ratio
against the fp32 port is the median over rounds of the ratio within a round.

Also reported:
- the useful work per time step (multiply-adds from the layer shapes) against
  the measured throughput of a large torch.mm, fp32 and bf16, in this run;
- peak memory: each variant runs again in a fresh subprocess and reports its
  RSS high-water mark (VmHWM in /proc/self/status) after every step, minus its RSS
  before the first step (model and batch already built). RSS counts every
  byte torch's CPU allocator holds, which tracemalloc cannot see;
- a short loss curve, bf16 autocast vs fp32 from the same initial weights on
  the same fixed synthetic batches, for the "bf16 trains no worse" claim.
"""
from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

VARIANTS = ("port-fp32", "port-bf16", "genseq-fp32", "genseq-bf16")


def sizes(quick: bool) -> dict:
    if quick:
        return dict(B=4, T=40, U=8, V=80, H=64, L=3, K=5, M=3, repeats=2, mem_steps=2,
                    curve_steps=6, curve_B=4, curve_T=30)
    return dict(B=32, T=700, U=30, V=80, H=400, L=3, K=20, M=10, repeats=5, mem_steps=3,
                curve_steps=30, curve_B=16, curve_T=300)


# -- the straightforward port ---------------------------------------------------
def make_port(S):
    import torch
    from torch import nn
    from genseq.hand.mdn import mdn_params

    class Port(nn.Module):
        def __init__(self):
            super().__init__()
            H, V, M, L, K = S["H"], S["V"], S["M"], S["L"], S["K"]
            self.cell1 = nn.LSTMCell(3 + V, H)
            self.window = nn.Linear(H, 3 * M)
            self.rnns = nn.ModuleList(nn.LSTM(3 + H + V, H, batch_first=True) for _ in range(L - 1))
            self.out = nn.Linear(L * H, 1 + 6 * K)

        def forward(self, x, text):  # x (B, T, 3), text (B, U, V) one-hot
            B, T, _ = x.shape
            H, V, M = S["H"], S["V"], S["M"]
            h, c = x.new_zeros(B, H), x.new_zeros(B, H)
            kappa, w = x.new_zeros(B, M, 1), x.new_zeros(B, V)
            u = torch.arange(1, text.shape[1] + 1, dtype=x.dtype, device=x.device)
            hs, ws = [], []
            for t in range(T):
                h, c = self.cell1(torch.cat((x[:, t], w), 1), (h, c))
                a, b, k = torch.exp(self.window(h)).unsqueeze(2).chunk(3, 1)  # eqs. 48-51
                kappa = kappa + k
                phi = (a * torch.exp(-b * (kappa - u) ** 2)).sum(1)  # eq. 46: (B, U)
                w = torch.bmm(phi.unsqueeze(1).to(text.dtype), text).squeeze(1)  # eq. 47
                hs.append(h)
                ws.append(w)
            h1, W = torch.stack(hs, 1), torch.stack(ws, 1)
            outs, below = [h1], h1
            for rnn in self.rnns:
                below, _ = rnn(torch.cat((x, below, W.to(below.dtype)), 2))
                outs.append(below)
            return mdn_params(self.out(torch.cat(outs, 2)).float(), S["K"])

    return Port()


def make_genseq(S):
    from genseq.hand.model import HandwritingConfig, HandwritingModel
    alphabet = "".join(chr(33 + i) for i in range(S["V"]))
    return HandwritingModel(HandwritingConfig(kind="synthesis", alphabet=alphabet, hidden=S["H"],
                                              layers=S["L"], mixtures=S["K"], window=S["M"]))


def make_batch(S, seed=0, B=None, T=None):
    """Pen offsets that look like writing (smooth loops drifting right, a pen lift every ~25
    points), texts of U±25% characters; returns x (B, T, 3), target (B, T, 3), ids, tmask."""
    import torch
    g = torch.Generator().manual_seed(seed)
    B, T, U, V = B or S["B"], T or S["T"], S["U"], S["V"]
    t = torch.arange(T + 1, dtype=torch.float32)
    freq = 0.3 + 0.2 * torch.rand(B, 1, generator=g)
    phase = 6.3 * torch.rand(B, 1, generator=g)
    dx = 0.3 + torch.cos(freq * t + phase) + 0.1 * torch.randn(B, T + 1, generator=g)
    dy = torch.sin(1.7 * freq * t + phase) + 0.1 * torch.randn(B, T + 1, generator=g)
    eos = (torch.rand(B, T + 1, generator=g) < 0.04).float()
    pts = torch.stack((dx, dy, eos), 2)
    lens = (U * (0.75 + 0.5 * torch.rand(B, generator=g))).long().clamp(1, U)
    ids = torch.randint(1, V + 1, (B, int(lens.max())), generator=g)
    tmask = (torch.arange(ids.shape[1]) < lens.unsqueeze(1)).float()
    return pts[:, :-1].contiguous(), pts[:, 1:].contiguous(), ids * tmask.long(), tmask


class Trainer:
    """One variant: model, AdamW and a step = forward, loss, backward, clip, update."""

    def __init__(self, variant: str, S: dict, seed: int = 0, model=None, device="cpu"):
        import torch
        torch.manual_seed(seed)
        self.kind, prec = variant.split("-")
        self.bf16 = prec == "bf16"
        self.S = S
        self.device = torch.device(device)
        model = model if model is not None else (make_port(S) if self.kind == "port" else make_genseq(S))
        self.model = model.to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)

    def step(self, batch) -> float:
        import torch
        from genseq.hand.mdn import mdn_nll
        x, y, ids, tmask = (t.to(self.device) for t in batch)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if self.kind == "port":
                text = torch.nn.functional.one_hot(ids, self.S["V"] + 1)[..., 1:].float()
                params = self.model(x, text)
            else:
                params, _, _ = self.model(x, ids, tmask)
            loss = mdn_nll(params, y).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 3.0)
        self.opt.step()
        return float(loss.detach())


def macs_per_point(S) -> int:
    """Multiply-adds of one forward time step of one sequence, from the layer shapes."""
    H, V, M, L, K, U = S["H"], S["V"], S["M"], S["L"], S["K"], S["U"]
    layer1 = 4 * H * (3 + V + H)
    deeper = (L - 1) * 4 * H * (3 + H + V + H)
    window = H * 3 * M + M * U + U * V  # eq. 48 linear, eq. 46 sum, eq. 47 w = φ·c
    output = L * H * (1 + 6 * K)
    return layer1 + deeper + window + output


# -- peak memory: one variant per fresh process ---------------------------------
def mem_child(variant: str, S: dict) -> dict:
    # VmHWM, not getrusage's ru_maxrss: ru_maxrss survives fork + exec, so a
    # child would report its parent's high-water mark if that one was higher.
    tr = Trainer(variant, S)
    batch = make_batch(S)
    before = C.proc_status("VmRSS")
    highs = []
    for _ in range(S["mem_steps"]):
        tr.step(batch)
        highs.append(C.proc_status("VmHWM"))
    return {"rss_before": before, "peak_rss_after_step": highs}


def measure_memory(variant: str, args) -> dict:
    cmd = [sys.executable, __file__, "--mem-child", variant, "--threads", str(args.threads)]
    if args.quick:
        cmd.append("--quick")
    if args.points:
        cmd += ["--points", str(args.points)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    highs = r["peak_rss_after_step"]
    r["train_peak"] = highs[-1] - r["rss_before"]
    # Flat: no growth of the high-water mark after the second step.
    r["growth_after_step2"] = highs[-1] - highs[min(1, len(highs) - 1)]
    return r


# -- loss curve -------------------------------------------------------------
def loss_curves(S, device="cpu") -> dict:
    batches = [make_batch(S, seed=100 + i, B=S["curve_B"], T=S["curve_T"]) for i in range(4)]
    init = make_genseq(S)
    state = {k: v.clone() for k, v in init.state_dict().items()}
    curves = {}
    for prec in ("fp32", "bf16"):
        model = make_genseq(S)
        model.load_state_dict(state)
        tr = Trainer(f"genseq-{prec}", S, model=model, device=device)
        curves[prec] = [tr.step(batches[i % len(batches)]) for i in range(S["curve_steps"])]
    return curves


def main() -> None:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--mem-child", choices=VARIANTS, help=argparse_hide())
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-curve", action="store_true", help="skip the bf16-vs-fp32 loss curve")
    p.add_argument("--points", type=int, help="override T, the points per sequence")
    C.add_device(p)
    args = p.parse_args()
    C.set_threads(args.threads)
    S = sizes(args.quick)
    if args.points:
        S["T"] = args.points
    if args.mem_child:
        print(json.dumps(mem_child(args.mem_child, S)))
        return

    import torch
    results = {"machine": C.machine(args.device), "settings": S, "device": args.device}
    cuda = args.device.startswith("cuda")
    peak = C.mm_peak(size=512 if args.quick else (8192 if cuda else 2048), device=args.device)
    batch = make_batch(S)
    macs = macs_per_point(S)
    flops_per_step = 3 * 2 * macs * S["B"] * S["T"]  # forward + ~2x for backward
    rows, res = [], {}
    # All four variants are built first, then timed in rounds: one step of each
    # per round, in turn. A burst of load from another process then falls on
    # every variant of that round, and each ratio is the median over rounds of
    # the ratio within a round (on these shared machines a step sometimes runs
    # several times slower for a while).
    trainers, times = {}, {v: [] for v in VARIANTS}
    for variant in VARIANTS:
        if cuda:
            torch.cuda.reset_peak_memory_stats(args.device)
            before = torch.cuda.memory_allocated(args.device)
        trainers[variant] = Trainer(variant, S, device=args.device)
        trainers[variant].step(batch)  # untimed warm-up
        C.sync(args.device)
        if cuda:  # the caching allocator's high-water mark, model and optimizer state included
            res[variant] = {"memory": {"train_peak": torch.cuda.max_memory_allocated(args.device) - before,
                                       "growth_after_step2": None}}
    for _ in range(S["repeats"]):
        for variant in VARIANTS:
            t0 = time.perf_counter()
            trainers[variant].step(batch)
            C.sync(args.device)
            times[variant].append(time.perf_counter() - t0)
    trainers = None
    for variant in VARIANTS:
        t = statistics.median(times[variant])
        prec = variant.split("-")[1]
        res.setdefault(variant, {}).update({
            "seconds_per_batch": t, "times": times[variant], "points_per_s": S["B"] * S["T"] / t,
            "fraction_of_mm_peak": flops_per_step / t / peak[prec]})

    def ratio(base: str, variant: str) -> float:
        return statistics.median(b / v for b, v in zip(times[base], times[variant]))

    for variant in VARIANTS:
        r = res[variant]
        r["speedup_vs_port_fp32"] = ratio("port-fp32", variant)
        r["speedup_vs_port_same_precision"] = ratio("port-" + variant.split("-")[1], variant)
    if not args.no_memory and not cuda:
        for variant in VARIANTS:
            res[variant]["memory"] = measure_memory(variant, args)
    for variant in VARIANTS:
        r = res[variant]
        mem = r.get("memory")
        rows.append([variant, r["seconds_per_batch"], r["points_per_s"], r["speedup_vs_port_fp32"],
                     r["speedup_vs_port_same_precision"], f"{100 * r['fraction_of_mm_peak']:.1f}%",
                     None if mem is None else f"{mem['train_peak'] / 2**30:.2f}",
                     None if mem is None or mem["growth_after_step2"] is None
                     else f"{mem['growth_after_step2'] / 2**20:.0f}"])
    results["train"] = res
    results["mm_peak_flops"] = peak
    results["macs_per_point"] = macs
    if args.no_curve:
        S["curve_steps"] = 0
    curves = loss_curves(S, args.device) if S["curve_steps"] else {"fp32": [math.nan], "bf16": [math.nan]}
    k = max(1, S["curve_steps"] // 8)
    tail = {p: statistics.mean(c[-k:]) for p, c in curves.items()}
    results["loss_curve"] = {"steps": S["curve_steps"], "fp32": curves["fp32"], "bf16": curves["bf16"],
                             f"mean_last_{k}": tail, "bf16_minus_fp32": tail["bf16"] - tail["fp32"]}

    m = results["machine"]
    text = C.table(
        f"Synthesis training, B={S['B']} T={S['T']} U~{S['U']} V={S['V']} {S['L']}x{S['H']} "
        f"K={S['K']} M={S['M']}  ({C.where(m)})",
        ["variant", "s/batch", "points/s", "x port fp32", "x port same prec", "of mm peak",
         "peak GiB", "growth MiB"], rows,
        [f"useful work {macs / 1e6:.2f} M multiply-adds per point forward, x3 for forward+backward",
         f"torch.mm peak in this run: fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s",
         "peak GiB: CUDA allocator high-water mark, model and optimizer included" if cuda else
         "peak GiB: RSS high-water minus RSS before the first step, fresh process per variant; "
         "growth: high-water increase after step 2"])
    text += "\n\n" + C.table(
        f"Loss curve, {S['curve_steps']} AdamW steps on 4 fixed synthetic batches "
        f"(B={S['curve_B']} T={S['curve_T']}), same initial weights",
        ["precision", "first loss", f"mean of last {k}"],
        [[p, curves[p][0], tail[p]] for p in ("fp32", "bf16")],
        [f"bf16 - fp32 = {tail['bf16'] - tail['fp32']:+.4f} nats/point (negative: bf16 lower)"])
    C.emit(args, results, text)


def argparse_hide():
    import argparse
    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
