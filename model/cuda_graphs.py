"""Recording a GPU's kernels once as a CUDA graph, to replay them later with one launch instead of one per kernel.

A small model's step is many short kernels, and launching each from Python takes about as long as running it; a
replayed graph runs them back to back. What a graph reads and writes are fixed addresses: its inputs are refilled in
place before each replay, and its outputs are rewritten in place by it.
"""
import contextlib
from collections.abc import Callable

import torch


def record(fn: Callable[[], torch.Tensor]) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """``fn``'s kernels recorded as a CUDA graph, without running them; the graph and ``fn``'s output, which each
    ``graph.replay()`` rewrites in place. Lazy set-ups (libraries' workspaces, first allocations) must have run
    before, on a ``side_stream``."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


@contextlib.contextmanager
def side_stream(device: torch.device):
    """Work queued on a stream of its own, after the current stream's work and before its next: where the calls
    that a recording repeats run first, as CUDA graphs require."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        yield
    torch.cuda.current_stream(device).wait_stream(side)
