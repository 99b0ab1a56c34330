"""CUDA graphs for the per-step loops of training (recurrent.py).

On a GPU the window layer's loop is bound by launching kernels: each time
step is about 25 small kernels forward and 13 backward, each a few
microseconds of GPU work but more of Python and dispatch. A CUDA graph
records a whole block of steps once and replays it as one launch
(https://pytorch.org/docs/stable/notes/cuda.html#cuda-graphs). A graph reads
and writes fixed addresses, so the loop runs on work buffers that live as
long as the graph (recurrent._WindowRun): values are copied in and out once
per block, not per step.

`GENSEQ_CUDA_GRAPHS=0` in the environment (or `ENABLED = False`) turns them
off; everything then runs step by step, as on the CPU.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Callable

import torch

ENABLED = os.environ.get("GENSEQ_CUDA_GRAPHS", "1") != "0"
# Graphs kept, by shape: each holds its block buffers and a private memory pool.
KEEP = 16


def wanted(device: torch.device) -> bool:
    """Whether the loops on `device` should run as graphs now."""
    return ENABLED and device.type == "cuda" and not torch.cuda.is_current_stream_capturing()


def capture(fn: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """fn() recorded as a CUDA graph; returns its replay.

    fn must read and write only tensors that outlive the graph, and never wait
    for the GPU. It runs twice first on the capture stream (cuBLAS workspaces,
    allocator), so whatever state it updates holds garbage afterwards: load
    the real values after capturing.
    """
    with torch.cuda.device(device):
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                fn()
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the backward replays may come from autograd's device thread.
        with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            fn()
    return graph.replay


class Cache:
    """The most recently used KEEP objects by key, made on demand."""

    def __init__(self) -> None:
        self._items: OrderedDict = OrderedDict()

    def get(self, key, make: Callable[[], object]):
        item = self._items.pop(key, None)
        if item is None:
            with torch.inference_mode(False):  # plain tensors even if first made while evaluating
                item = make()
        self._items[key] = item
        while len(self._items) > KEEP:
            self._items.popitem(last=False)
        return item

    def clear(self) -> None:
        self._items.clear()
