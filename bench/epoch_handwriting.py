"""One pass over a real training set: synthesis training time per epoch, same process as the port.

    python bench/epoch_handwriting.py DATA.h5 [--device cuda] [--batch 64] [--hidden 400]
                                      [--max-batches N] [--port-batches 10] [--json out.json]

DATA.h5 is a stroke corpus from `genseq data iam-ondb ...` (see datasets/).
Training lines are batched exactly as `genseq train handwriting` batches them
(length buckets, the epoch-0 order of seed 1337, lines over --max-points
skipped), and every batch does the full training step: forward, the mixture
NLL over real points, backward, gradient clipping and an AdamW update, under
bf16 autocast unless --precision fp32. Reported:

- seconds for the pass (every batch; batch building is not timed); each side
  first does one untimed step on the first batch (warm-up: CUDA context,
  cuDNN plans, allocator); with --max-batches the pass time is extrapolated
  from the batches run, in proportion to their padded points, and says so;
- time steps per second: padded points (B x T of every batch, the work done)
  and real points (what the data holds) per second;
- the port (bench/train_handwriting.py's `Port`) on the first --port-batches
  batches of the same pass, same precision, and the ratio on those batches;
- on a GPU, genseq again on those batches with CUDA graphs off (the window
  loop step by step, genseq/hand/fast/cudagraph.py), and the graphs' ratio;
- peak memory: the CUDA allocator's high-water mark (GPU) or VmHWM (CPU),
  the batches of the run (built beforehand) included.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from train_handwriting import make_port  # noqa: E402


def run_batches(step, batches, device) -> list[float]:
    step(batches[0])  # warm-up, not timed
    times = []
    for b in batches:
        C.sync(device)
        t0 = time.perf_counter()
        step(b)
        C.sync(device)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("data", help="stroke corpus (HDF5) with a train split")
    C.add_device(p)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--hidden", type=int, default=400)
    p.add_argument("--max-points", type=int, default=1200)
    p.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--max-batches", type=_count(1), help="run only this many batches and extrapolate the pass")
    p.add_argument("--port-batches", type=_count(0), default=10, help="batches the port runs for the ratio (0: none)")
    args = p.parse_args()
    C.set_threads(args.threads)
    import torch
    from genseq.hand.fast import cudagraph
    from genseq.hand.data import make_batch, usable
    from genseq.hand.mdn import mdn_nll
    from genseq.hand.model import HandwritingModel
    from genseq.hand.task import config_from_data
    from genseq.strokes import StrokeDataset
    from genseq.strokes.batches import epoch_batches
    from genseq.train.loop import autocast

    device = torch.device(args.device)
    sizes = dict(layers=args.layers, hidden=args.hidden, mixtures=20, window=10)
    if args.quick:
        sizes.update(hidden=32, mixtures=3, window=2)
        args.max_batches = args.max_batches or 3
        args.port_batches = min(args.port_batches, 2)
    cfg = config_from_data(args.data, "synthesis", **sizes)
    split = StrokeDataset(args.data).split("train")
    indices = usable(split, cfg, args.max_points)
    order = epoch_batches(split.lengths, indices, args.batch, 1337, 0)
    padded = [len(b) * (int(split.lengths[b].max()) - 1) for b in order]
    real = [int(split.lengths[b].sum()) - len(b) for b in order]
    run = order[: args.max_batches] if args.max_batches else order
    batches = [make_batch(split, list(b), cfg).to(device) for b in run]  # data loading is not timed

    def trainer(model):
        model = model.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step(b):
            with autocast(device, args.precision):
                params = model(b.x, b.text, b.text_mask)[0] if isinstance(model, HandwritingModel) else \
                    model(b.x, torch.nn.functional.one_hot(b.text, len(cfg.alphabet) + 1)[..., 1:].float())
                loss = mdn_nll(params, b.y, b.mask).sum() / b.mask.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
            opt.step()
        return step

    results = {"machine": C.machine(args.device), "device": args.device, "data": Path(args.data).name,
               "cuda_graphs": cudagraph.ENABLED and device.type == "cuda",
               "settings": {**sizes, "batch": args.batch, "max_points": args.max_points,
                            "precision": args.precision, "lines": len(indices), "batches_per_pass": len(order)}}
    torch.manual_seed(0)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = run_batches(trainer(HandwritingModel(cfg)), batches, device)
    n = len(run)
    done = sum(times)
    share = sum(padded[:n]) / sum(padded)
    pass_s = done / share
    mem = torch.cuda.max_memory_allocated(device) if cuda else C.proc_status("VmHWM")
    g = {"batches_run": n, "seconds_run": done, "pass_seconds": pass_s, "extrapolated": n < len(order),
         "padded_points_per_s": sum(padded[:n]) / done, "real_points_per_s": sum(real[:n]) / done,
         "median_batch_seconds": statistics.median(times), "peak_memory_bytes": mem}
    results["genseq"] = g
    rows = [["genseq", n, g["pass_seconds"], g["padded_points_per_s"], g["real_points_per_s"], None]]
    if args.port_batches:
        k = min(args.port_batches, n)
        torch.manual_seed(0)
        S = dict(H=cfg.hidden, V=len(cfg.alphabet), M=cfg.window, L=cfg.layers, K=cfg.mixtures)
        pt = run_batches(trainer(make_port(S)), batches[:k], device)
        ratio = sum(pt) / sum(times[:k])
        results["port"] = {"batches_run": k, "seconds_run": sum(pt), "genseq_seconds_same_batches": sum(times[:k]),
                           "padded_points_per_s": sum(padded[:k]) / sum(pt), "genseq_speedup": ratio}
        rows.append([f"port (first {k})", k, None, results["port"]["padded_points_per_s"],
                     sum(real[:k]) / sum(pt), None])
        rows[0][5] = ratio
        if cuda and cudagraph.ENABLED:
            cudagraph.ENABLED = False
            torch.manual_seed(0)
            et = run_batches(trainer(HandwritingModel(cfg)), batches[:k], device)
            cudagraph.ENABLED = True
            results["genseq_no_graphs"] = {"batches_run": k, "seconds_run": sum(et),
                                           "padded_points_per_s": sum(padded[:k]) / sum(et),
                                           "graphs_speedup": sum(et) / sum(times[:k]),
                                           "speedup_vs_port": sum(pt) / sum(et)}
            rows.append([f"genseq, no CUDA graphs (first {k})", k, None, sum(padded[:k]) / sum(et),
                         sum(real[:k]) / sum(et), sum(pt) / sum(et)])
    s = results["settings"]
    C.emit(args, results, C.table(
        f"One pass over {results['data']}'s training split: {s['lines']} lines in {s['batches_per_pass']} batches "
        f"of {args.batch}, {cfg.layers}x{cfg.hidden}, {args.precision}, {args.device} ({C.where(results['machine'])})",
        ["", "batches", "pass s", "padded pts/s", "real pts/s", "x port (same batches)"], rows,
        [("pass time extrapolated from the batches run, by their share of padded points" if g["extrapolated"]
          else "pass time measured over every batch (after one untimed warm-up step)"),
         f"peak memory {mem / 2**30:.2f} GiB ({'CUDA allocator' if cuda else 'VmHWM'})"]
        + ([f"CUDA graphs: genseq {results['genseq_no_graphs']['graphs_speedup']:.2f}x faster with them "
            "than without on the same batches"] if "genseq_no_graphs" in results else [])))


def _count(least: int):
    def parse(text: str) -> int:
        n = int(text)
        if n < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}")
        return n
    return parse


if __name__ == "__main__":
    main()
