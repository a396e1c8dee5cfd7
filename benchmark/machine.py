"""The machine a benchmark ran on, what its matmuls can do at best, and how much memory the process used.

MFU (model FLOPs utilisation) needs a peak to divide by. A vendor's datasheet peak is rarely reachable on a shared
2-core VM, so the peak is *measured*: square (n × n) @ (n × n) matmuls in the dtype training uses, 2·n³ FLOPs each,
timed on the same machine in the same run (and, in ``training.measure_throughput``, interleaved with the training
steps so both see the same background load).
"""
import os
import platform
import resource
import sys
import time

import torch


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_machine(device: torch.device) -> dict:
    """Everything needed to know where a number came from."""
    info = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "device": device.type}
    if hasattr(os, "getloadavg"):
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops(device: torch.device, dtype: torch.dtype, n: int = 2048, generator_seed: int = 0):
    """A callable that times one (n × n) @ (n × n) matmul in ``dtype`` and returns its FLOP/s (2·n³ / seconds)."""
    gen = torch.Generator().manual_seed(generator_seed)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    torch.mm(a, b)                                                   # first call: library set-up, not timed

    def probe() -> float:
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        return 2 * n**3 / (time.perf_counter() - start)
    return probe


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far: the process's peak resident set (CPU; it never goes down, so later sections include
    earlier ones) or the peak of tensors allocated on the GPU since the last ``reset_peak_memory``."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss      # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
