"""The optional fused CPU cell kernels (`_fused.cpp`), built on first use.

torch.utils.cpp_extension compiles the file with the machine's C++ compiler
the first time a training loop needs it (about half a minute) and caches the
result (TORCH_EXTENSIONS_DIR, default ~/.cache/torch_extensions). Without a
compiler, or with GENSEQ_NO_FUSED=1, recurrent.py keeps its pure-PyTorch
loops: the same results to float rounding, slower at small batches.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("_fused.cpp")
_built: dict = {}


def kernels():
    """The compiled module, or None (switched off, or the build failed: said once on stderr)."""
    if "module" not in _built:
        _built["module"] = None if os.environ.get("GENSEQ_NO_FUSED") == "1" else _build()
    return _built["module"]


def _name() -> str:
    # -march=native code must not be reused on another processor (a shared home
    # directory on a cluster): the processor's model and flags are part of the name.
    import hashlib
    import platform
    try:
        cpu = "\n".join(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                        if line.startswith(("model name", "flags")))
    except OSError:
        cpu = platform.processor() or platform.machine()
    return "genseq_fused_1_" + hashlib.sha1(cpu.encode()).hexdigest()[:10]


def _build():
    try:
        from torch.utils import cpp_extension
        name = _name()
        try:
            cached = Path(cpp_extension._get_build_directory(name, False), name + ".so").exists()
        except Exception:  # a private helper: if it moves, just say nothing
            cached = True
        if not cached:
            print("genseq: compiling the fused CPU training kernels (once, about half a minute)", file=sys.stderr)
        return cpp_extension.load(name=name, sources=[str(SOURCE)], verbose=False,
                                  extra_cflags=["-O3", "-march=native", "-fno-math-errno"])
    except Exception as e:  # no compiler or headers, a read-only cache, ...
        lines = str(e).strip().splitlines()
        print(f"genseq: the fused CPU kernels could not be built ({lines[-1] if lines else type(e).__name__}); "
              "training uses the slower pure-PyTorch loops", file=sys.stderr)
        return None


def usable(state_dtype: torch.dtype, mm: torch.dtype, device: torch.device) -> bool:
    """Whether the kernels cover this case: CPU, float32 state, float32 or bf16 matmuls."""
    return (device.type == "cpu" and state_dtype == torch.float32 and mm in (torch.float32, torch.bfloat16)
            and kernels() is not None)
