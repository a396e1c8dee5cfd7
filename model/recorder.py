"""What one forward pass computes on its way, kept for the views and lessons.

The views (attention heatmaps, the feed-forward panel, the residual stream) need tensors that ``GPT.forward`` makes
and then drops. Instead of a second copy of the forward pass that keeps them, the model's own forward takes an
optional ``Recorder`` and hands it each tensor as it is made:

    record = Recorder()
    logits, _ = model(idx, record=record)
    record["attention"]          one (B, nh, T, T) per block, in block order
    record["queries"], ["keys"]  one (B, nh, T, hs) each per block (after RoPE's rotation, for a RoPE model)

Without a recorder (training, generation) nothing is kept and nothing changes. With one, attention computes its
weights explicitly (``causal_attention``) instead of through the fused kernel, since those never leave it.
"""
from collections import defaultdict

import torch


class Recorder:
    """Tensors by name, each name a list in the order the forward pass made them (one per block, or one)."""

    def __init__(self):
        self.kept: dict[str, list[torch.Tensor]] = defaultdict(list)

    def __getitem__(self, name: str) -> list[torch.Tensor]:
        return self.kept[name]


def keep(record: Recorder | None, name: str, tensor: torch.Tensor) -> None:
    """Hand ``tensor`` to ``record`` under ``name``; nothing without a recorder."""
    if record is not None:
        record.kept[name].append(tensor)
