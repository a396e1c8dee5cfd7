"""Recording a GPU's kernels once as a CUDA graph, to replay them later with one launch instead of one per kernel.

A small model's step is many short kernels, and launching each from Python takes about as long as running it; a
replayed graph runs them back to back. What a graph reads and writes are fixed addresses: its inputs are refilled in
place before each replay, and its outputs are rewritten in place by it.
"""
import contextlib
import threading
from collections.abc import Callable

import torch


_recording = threading.Lock()       # one recording at a time in a process (a server's threads)


def record(fn: Callable[[], torch.Tensor]) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """``fn``'s kernels recorded as a CUDA graph, without running them; the graph and ``fn``'s output, which each
    ``graph.replay()`` rewrites in place. Lazy set-ups (libraries' workspaces, first allocations) must have run
    before, on a ``side_stream``. Other threads may go on using the GPU meanwhile (their calls are not recorded)."""
    graph = torch.cuda.CUDAGraph()
    # the outer stream context puts the thread's stream back even where a failed recording skips the inner one's
    with _recording, torch.cuda.stream(torch.cuda.current_stream()):
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            out = fn()
    return graph, out


def why_recording_failed(error: Exception) -> str:
    """The first error of a failed recording: ending a recording that an operation broke raises an error of its
    own, about the capture, with the operation's error as its context."""
    cause = error.__context__ or error
    return f"{type(cause).__name__}: {' '.join(str(cause).split())[:120]}"


@contextlib.contextmanager
def side_stream(device: torch.device):
    """Work queued on a stream of its own, after the current stream's work and before its next: where the calls
    that a recording repeats run first, as CUDA graphs require."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    try:
        with torch.cuda.stream(side):
            yield
    finally:
        torch.cuda.current_stream(device).wait_stream(side)
