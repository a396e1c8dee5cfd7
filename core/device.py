"""Where the model runs and in which precision, decided in one place, with the reason printed."""
import contextlib

import torch

from errors import UserError


def resolve_device(requested: str) -> tuple[torch.device, str]:
    """"auto" picks cuda > mps > cpu; an explicit choice that is not available is an error, not a silent fallback."""
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if requested == "auto":
        name = next(d for d in ("cuda", "mps", "cpu") if available[d])
        return torch.device(name), f"{name} (auto: best available)"
    if not available.get(requested, False):
        raise UserError(f"device {requested!r} is not available on this machine (use train.device=auto or cpu)")
    return torch.device(requested), f"{requested} (requested)"


def resolve_dtype(requested: str, device: torch.device) -> tuple[torch.dtype, str]:
    """"auto" is bf16 autocast where it pays: GPUs that support bf16, and CPUs with AMX matrix units, where bf16
    matmuls run several times faster at the same loss curve. Elsewhere fp32: without matrix units for bf16 the
    casts cost about what the matmuls save (measurements: docs/speed-log.md)."""
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16, "bfloat16 autocast (auto: GPU supports bf16)"
        if device.type == "cpu" and cpu_has_amx():
            return torch.bfloat16, "bfloat16 autocast (auto: CPU has AMX; train.dtype=float32 to turn it off)"
        return torch.float32, "float32 (auto)"
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[requested]
    return dtype, f"{requested} (requested)"


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (bf16 matrix units), as PyTorch's own CPU dispatch sees it."""
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(check and check())


def autocast(device: torch.device, dtype: torch.dtype):
    """A context that runs matmuls in ``dtype`` (weights and optimizer stay fp32); a no-op for fp32.

    Without autocast's cache of cast weights: each context here is one forward pass, which casts each weight once
    anyway, and a step recorded as a CUDA graph must record its casts rather than reuse ones made outside it."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=False)


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for PyTorch's kernels (0: PyTorch's default, one per core). On a machine
    shared with other busy processes, fewer threads than cores can be much faster: a parallel kernel waits for its
    slowest thread, and a thread that lost its core stalls them all."""
    wanted = threads if threads > 0 else DEFAULT_THREADS
    if wanted != torch.get_num_threads():
        torch.set_num_threads(wanted)


DEFAULT_THREADS = torch.get_num_threads()      # PyTorch's choice at start-up (OMP_NUM_THREADS, else the cores)
