"""What one forward pass computes on its way, kept for the views and lessons.

The views (attention heatmaps, the feed-forward panel, the residual stream) need tensors that ``GPT.forward`` makes
and then drops. Instead of a second copy of the forward pass that keeps them, the model's own forward takes an
optional ``Recorder`` and hands it each tensor as it is made:

    record = Recorder()
    logits, _ = model(idx, record=record)
    record["attention"]          one (B, nh, T, T) per block, in block order

Without a recorder (training, generation) nothing is kept and nothing changes. With one, attention computes its
weights explicitly (``causal_attention``) instead of through the fused kernel, since those never leave it.

Attention step by step (``INSIDE``: its input, q, k, v, the scores, each head's output, the projection) is kept
for one block only, the one named by ``Recorder(inside=block)``: those are the largest tensors of a pass (a 12-block
model's scores for 1,024 tokens are 600 MB), and a view looks inside one block at a time.
"""
from collections import defaultdict

import torch

# what attention keeps of one block, in the order it computes them
INSIDE = ("attention_input",    # (B, T, C)       what attention reads: the block's LayerNorm of the stream
          "q", "k", "v",        # (B, nh, T, hs)  per head, as they enter the dot product
          "dots",               # (B, nh, T, T)   q·k_j for every query and key, before the mask
          "scores",             # (B, nh, T, T)   q·k_j / √hs, before the mask
          "heads",              # (B, nh, T, hs)  each head's output Σ_j w_j v_j, before the projection
          "attention_out")      # (B, T, C)       the heads side by side × W_o (+ b_o): what is added to the stream


class Recorder:
    """Tensors by name, each name a list in the order the forward pass made them (one per block, or one).

    ``inside``: the block whose attention is kept step by step (``INSIDE``); None: no block's. An attention module
    run on its own (outside any block) with a plain ``Recorder()`` keeps them too."""

    def __init__(self, inside: int | None = None):
        self.kept: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.inside = inside
        self.block: int | None = None        # the block the forward pass is in now (``entering``)

    def __getitem__(self, name: str) -> list[torch.Tensor]:
        return self.kept[name]

    def wants(self, name: str) -> bool:
        return name not in INSIDE or self.block == self.inside


def entering(record: Recorder | None, block: int) -> None:
    """Tell ``record`` that the tensors handed to it next are made inside block ``block``."""
    if record is not None:
        record.block = block


def keep(record: Recorder | None, name: str, tensor: torch.Tensor) -> None:
    """Hand ``tensor`` to ``record`` under ``name``; nothing without a recorder (or one that does not want it)."""
    if record is not None and record.wants(name):
        record.kept[name].append(tensor)
