"""Data-parallel training with PyTorch's own engine (DDP), started by ``torchrun --nproc_per_node=N train.py``.

Every process holds a full copy of the model and trains on its own slice of each global batch; after backward,
DDP averages the gradients across processes, so all copies take the same step. Every process draws the same
random window starts from one seeded generator and keeps its own rows, so N processes with batch_size B see exactly
the batches one process with batch_size N·B would (tested). Only rank 0 writes checkpoints, metrics and the
progress bar. NCCL carries the gradients between GPUs, gloo between CPU processes.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> Distributed:
    """Join the process group when launched by torchrun (it sets RANK and WORLD_SIZE); a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    return Distributed(dist.get_rank(), world_size, local_rank)


def shutdown(d: Distributed) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def sum_and_any(d: Distributed, totals: torch.Tensor, stop: bool) -> tuple[list[float], bool]:
    """``totals`` (a vector) summed over processes, and whether any process was asked to stop: every process must
    agree, or one would leave the loop while the others wait for it forever."""
    if not d.enabled:
        return totals.tolist(), stop
    values = torch.cat([totals.double(), torch.tensor([float(stop)], dtype=torch.float64, device=totals.device)])
    dist.all_reduce(values)
    return values[:-1].tolist(), values[-1].item() > 0


def any_process(d: Distributed, flag: bool) -> bool:
    """True on every process if ``flag`` is True on any (e.g. rank 0 alone saw the target loss)."""
    if not d.enabled:
        return flag
    value = torch.tensor([float(flag)])
    dist.all_reduce(value)
    return value.item() > 0
