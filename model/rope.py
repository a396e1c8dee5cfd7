"""Rotary position embedding, RoPE (Su et al., 2021, "RoFormer", §3.4; Llama's choice): a position is a rotation.

Nothing is added to the token's vector. Inside attention, each head's query and key are split into pairs of
dimensions (2i, 2i+1), and the pair of the token at position p is turned by the angle p·θ_i:

    θ_i = 10000^(−2i/hs)                               i = 0 .. hs/2 − 1: one frequency per pair, fast to slow
    q'_2i   = q_2i · cos(p·θ_i) − q_2i+1 · sin(p·θ_i)
    q'_2i+1 = q_2i · sin(p·θ_i) + q_2i+1 · cos(p·θ_i)          (the same for k)

Why: rotating the query at position m by R(m·θ) and the key at position n by R(n·θ) gives the score
q'·k' = qᵀ R(m·θ)ᵀ R(n·θ) k = qᵀ R((n − m)·θ) k, which depends on how far apart the two tokens are, not on where
they stand. The angle is a formula, so it can be computed for positions beyond the trained context too.

Shapes: B batch, nh heads, T tokens, hs head size (even: the dimensions go in pairs).
"""
import math

import torch
from torch import nn


def rope_angles(n_positions: int, head_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos(p·θ_i) and sin(p·θ_i), each (n_positions, hs/2), in fp32."""
    # θ_i = 10000^(−2i/hs) computed as exp(−2i · ln(10000) / hs), as the sinusoidal table computes it
    theta = torch.exp(torch.arange(0, head_size, 2, dtype=torch.float32) * (-math.log(10000.0) / head_size))
    angles = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1) * theta      # p·θ_i (T, hs/2)
    return torch.cos(angles), torch.sin(angles)


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., T, hs) with each pair (2i, 2i+1) of position t turned by the angle whose cos and sin are
    cos[t, i], sin[t, i] (T, hs/2); computed in fp32, returned in x's dtype."""
    even, odd = x[..., 0::2].float(), x[..., 1::2].float()                             # (..., T, hs/2) each
    turned = torch.stack((even * cos - odd * sin,                                      # x'_2i
                          even * sin + odd * cos), dim=-1)                             # x'_2i+1   (..., T, hs/2, 2)
    return turned.flatten(-2).to(x.dtype)                                   # pairs back in place (..., T, hs)


class RotaryEmbedding(nn.Module):
    """Turns q and k (B, nh, T, hs) at positions start .. start+T-1. The cos and sin tables are fixed buffers, not
    saved in checkpoints (like the sinusoidal table)."""

    def __init__(self, block_size: int, head_size: int):
        super().__init__()
        cos, sin = rope_angles(block_size, head_size)
        self.register_buffer("cos", cos, persistent=False)                             # (block_size, hs/2)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor, start: int | torch.Tensor = 0):
        """``start`` may be a 0-dim tensor (a captured decode step, whose code must not depend on the position)."""
        T = q.size(-2)
        if isinstance(start, torch.Tensor):
            rows = start + torch.arange(T, device=start.device)
            cos, sin = self.cos.index_select(0, rows), self.sin.index_select(0, rows)  # (T, hs/2)
        else:
            cos, sin = self.cos[start : start + T], self.sin[start : start + T]       # (T, hs/2)
        return rotate_pairs(q, cos, sin), rotate_pairs(k, cos, sin)                     # (B, nh, T, hs) each
