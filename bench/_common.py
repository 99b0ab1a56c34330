"""Shared plumbing for the bench/ scripts: threads, timing, machine, table and --json.

Every figure a script reports is either an absolute measurement or a ratio
against a baseline measured in the same process, so a busy machine slows both
sides alike; the machine's load average is recorded next to the results.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--quick", action="store_true", help="tiny settings: checks the script runs, numbers mean little")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-' for stdout)")
    return p


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")


def where(m: dict) -> str:
    """The machine in words, for a table title."""
    gpu = f"{m['gpu']}, " if m.get("gpu") else ""
    return f"{gpu}{m['cpu']}, {m['threads']} threads, load {m['load_avg_1min_at_start']}"


def set_threads(n: int) -> None:
    # Before torch does any work: OMP/MKL read these at their first parallel region.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    import torch
    torch.set_num_threads(n)


def machine(device: str = "cpu") -> dict:
    """What ran the benchmark: CPU model, cores, AMX/AVX-512 support, torch, load."""
    import torch
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    # Only for GPU runs: asking starts a CUDA context (memory a CPU figure would then count).
    gpu = torch.cuda.get_device_name(device) if str(device).startswith("cuda") else None
    return {"cpu": model, "cores": os.cpu_count(), "isa": isa, "gpu": gpu, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "load_avg_1min_at_start": round(os.getloadavg()[0], 2)}


def proc_status(key: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM...) in bytes; 0 if absent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def sync(device="cpu") -> None:
    """Wait for queued GPU work, so that wall time covers it (a no-op on CPU)."""
    import torch
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, repeats: int, warmup: int = 1, device="cpu") -> tuple[float, list[float]]:
    """Median wall time of fn() over `repeats` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def mm_peak(size: int = 2048, repeats: int = 5, device="cpu") -> dict:
    """Measured matmul throughput (FLOP/s) of a large square torch.mm, fp32 and bf16."""
    import torch
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(size, size, device=device).to(dtype)
        b = torch.randn(size, size, device=device).to(dtype)
        t, _ = median_time(lambda: torch.mm(a, b), repeats, warmup=2, device=device)
        out[name] = 2 * size**3 / t
    return out


def table(title: str, header: list[str], rows: list[list], notes: list[str] = ()) -> str:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    out = [title, line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    out += [f"  {n}" for n in notes]
    return "\n".join(out)


def _fmt(v) -> str:
    if isinstance(v, float):
        if v == 0 or 0.01 <= abs(v) < 1e5:
            return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return f"{v:.3g}"
    return "-" if v is None else str(v)


def emit(args, results: dict, text: str) -> None:
    """Print the tables; with --json also write everything measured."""
    print(text)
    if args.json:
        payload = json.dumps(results, indent=2, default=float)
        if args.json == "-":
            print(payload)
        else:
            Path(args.json).write_text(payload + "\n", encoding="utf-8")
            print(f"\nwrote {args.json}", file=sys.stderr)
