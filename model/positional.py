"""Positional encodings: where a token stands, added to its vector. ``ModelConfig.positional`` picks one.

Sinusoidal (Vaswani et al., 2017, "Attention Is All You Need", §3.5), the default, and learned (GPT-2) below it.
The third, RoPE (Llama's), adds nothing to the tokens: it turns queries and keys inside attention (``model.rope``).

Attention alone is order-blind: "The dog chased the cat" and "The cat chased the dog" hold the same tokens.
Adding a different, fixed vector to each position makes the order visible to the model:

    PE(pos, 2i)   = sin(pos / 10000^(2i/d))
    PE(pos, 2i+1) = cos(pos / 10000^(2i/d))

Each pair of dimensions is a sine wave of its own wavelength (from 2π up to 10000·2π), so every position gets a
unique pattern and PE(pos+k) is a linear function of PE(pos): relative offsets are easy to learn. No parameters.
"""
import math

import torch
from torch import nn


def sinusoidal_table(n_positions: int, d_model: int) -> torch.Tensor:
    """The (n_positions, d_model) table PE above, computed in fp32."""
    position = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1)            # (T, 1)
    # 1 / 10000^(2i/d) computed as exp(-(2i) * ln(10000) / d): the log space keeps it exact for large d
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2] = torch.sin(position * div_term)                                    # even dims: sin
    table[:, 1::2] = torch.cos(position * div_term[: d_model // 2])                    # odd dims: cos
    return table


class SinusoidalPositionalEncoding(nn.Module):
    """Looks up PE rows for positions start .. start+T-1. A fixed buffer, not saved in checkpoints."""

    def __init__(self, block_size: int, d_model: int):
        super().__init__()
        self.register_buffer("table", sinusoidal_table(block_size, d_model), persistent=False)

    def forward(self, T: int, start: int | torch.Tensor = 0) -> torch.Tensor:
        """``start`` may be a 0-dim tensor (a captured decode step, whose code must not depend on the position)."""
        if isinstance(start, torch.Tensor):
            return self.table.index_select(0, start + torch.arange(T, device=start.device))  # (T, C)
        return self.table[start : start + T]                                           # (T, C)


class LearnedPositionalEmbedding(nn.Module):
    """GPT-2's choice (its ``wpe``): a trained table W_pos (block_size, C), row ``pos`` added to the token at ``pos``.
    Nothing makes nearby rows alike or ties the rows to a formula: training finds whatever helps, and a model never
    sees positions beyond its table."""

    def __init__(self, block_size: int, d_model: int):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(block_size, d_model))                    # W_pos, init in GPT.init_weights

    def forward(self, T: int, start: int | torch.Tensor = 0) -> torch.Tensor:
        if isinstance(start, torch.Tensor):
            return self.table.index_select(0, start + torch.arange(T, device=start.device))  # (T, C)
        return self.table[start : start + T]                                           # (T, C)


def positional_encoding(kind: str, block_size: int, d_model: int) -> nn.Module | None:
    """The module for ``ModelConfig.positional``: (T, start) → the (T, C) vectors added to the tokens, or None
    (``"none"``, and ``"rope"``, whose positions are rotations inside attention: ``model.rope``)."""
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(block_size, d_model)
    if kind == "learned":
        return LearnedPositionalEmbedding(block_size, d_model)
    if kind in ("rope", "none"):
        return None
    raise ValueError(f"unknown positional encoding {kind!r}")
