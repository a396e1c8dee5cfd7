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
    before, on a ``side_stream``. Other threads may go on using the GPU meanwhile (their calls are not recorded),
    except to draw from the default CUDA generator, which is in recording mode for the whole process."""
    graph = torch.cuda.CUDAGraph()
    # the outer stream context puts the thread's stream back even where a failed recording skips the inner one's
    with _recording, torch.cuda.stream(torch.cuda.current_stream()):
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                out = fn()
        except Exception:
            with contextlib.suppress(Exception):        # the failed recording's error is the one to report
                end_the_generators_recording()
            raise
    return graph, out


def end_the_generators_recording() -> None:
    """A recording puts the default CUDA generator in recording mode and only a recording that succeeds takes it
    out (torch before 2.13): after a failed one, every eager draw (dropout, sampling) would raise "Offset increment
    outside graph capture". Recording one small kernel, successfully, takes it out."""
    with torch.cuda.graph(torch.cuda.CUDAGraph(), capture_error_mode="thread_local"):
        torch.ones(1, device=torch.device("cuda", torch.cuda.current_device())).mul_(2)


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
