"""Data-parallel training under torchrun (DistributedDataParallel).

`torchrun` starts one process per device and tells each its place through the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT). `World` reads
that, joins the process group (gloo on the CPU, nccl on CUDA) and offers the
few collective operations the loop needs; a plain `python -m genseq` run gets
a world of one, where every operation is the identity and nothing is imported
from torch.distributed. Rank 0 alone reads and writes the run folder; what the
others need from it (a checkpoint to resume) reaches them by broadcast, so the
run folder need not be on a shared filesystem.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
from torch import nn

from ..errors import GenseqError

# Evaluation and pictures run on rank 0 while the others wait in their next
# collective; this bounds how long they wait before the run is declared hung.
TIMEOUT = timedelta(minutes=30)


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False           # this World called init_process_group

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    # -- collectives (identities in a world of one) ------------------------------
    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks of a few numbers (one collective)."""
        if not self.distributed:
            return list(values)
        import torch.distributed as dist
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's `obj` on rank 0 (in rank order); None elsewhere."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist
        out = [None] * self.size if self.main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def from_main(self, fn) -> Any:
        """Run `fn` on rank 0 and hand its result, or its GenseqError, to every rank."""
        if not self.distributed:
            return fn()
        import torch.distributed as dist
        box: list[Any] = [None]
        if self.main:
            try:
                box[0] = ("ok", fn())
            except GenseqError as err:
                box[0] = ("error", str(err))
        dist.broadcast_object_list(box, src=0)
        status, value = box[0]
        if status == "error":
            raise GenseqError(value)
        return value

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to run the training forward pass through (DDP averages the gradients)."""
        if not self.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        if self.owns_group:
            import gc
            import torch.distributed as dist
            # DDP's reducer sits in reference cycles; if only the interpreter's
            # shutdown frees it, gloo's threads can abort the process at exit
            # ("terminate called without an active exception", seen about one
            # run in five in tests). Free it now, while the group still exists.
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()
            self.owns_group = False


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise GenseqError(f"${name} is not an integer: {os.environ[name]!r}") from None


def start(device: torch.device) -> World:
    """The World of this process: from torchrun's environment, or a world of one.

    `device` is what --device chose; under torchrun a CUDA choice becomes
    cuda:LOCAL_RANK (one process per GPU).
    """
    size = _env_int("WORLD_SIZE", 1)
    if size <= 1:
        return World(device=device)
    local = _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        if device.index is not None:
            raise GenseqError(f"--device {device}: under torchrun each process uses cuda:LOCAL_RANK; "
                              "pass --device cuda (or auto)")
        if local >= torch.cuda.device_count():
            raise GenseqError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices; "
                              "use --nproc_per_node <= the number of GPUs")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise GenseqError(f"distributed training runs on CUDA (nccl) or the CPU (gloo), not {device.type}")
    import torch.distributed as dist
    owns = not dist.is_initialized()
    if owns:
        kw = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, timeout=TIMEOUT, **kw)
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local, device=device,
                  owns_group=owns)


@contextlib.contextmanager
def forward_through(task, wrapped: nn.Module):
    """Let `task.loss` call the DDP wrapper instead of the bare model, for one step.

    Evaluation, pictures and saving keep using `task.model` (the bare module,
    whose weights the wrapper shares), so they need no distributed code.
    """
    bare = task.model
    task.model = wrapped
    try:
        yield
    finally:
        task.model = bare


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names and bytes: equal on every rank while data parallelism works."""
    h = hashlib.sha256()
    for name, t in state.items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
