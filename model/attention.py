"""Self-attention: every token looks at the tokens before it and takes a weighted mix of what they carry.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + M) V          (Vaswani et al., 2017, eq. 1)

Q (queries: "what am I looking for"), K (keys: "what do I contain") and V (values: "what do I pass on") are linear
maps of the same input x. M is the causal mask (0 on and below the diagonal, -inf above): a token may not look at
the future, because it must predict it. Dividing by √d_k keeps the scores' variance near 1 so the softmax does not
saturate. In "He broke the glass" vs "He broke the news", "broke" attends to a different object and so ends up as a
different vector.

Shapes: B batch, T tokens, C = n_embd, nh heads, hs = C / nh head size.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ModelConfig
from model.kv_cache import KVCache
from model.recorder import Recorder, keep
from model.rope import RotaryEmbedding


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: nn.Dropout | None = None,
                     record: Recorder | None = None):
    """The formula above, written out. q (..., Tq, hs), k and v (..., Tk, hs) with the queries being the last Tq of
    the Tk positions (Tq == Tk without a cache). Returns (output (..., Tq, hs), weights (..., Tq, Tk)). ``record``
    keeps q, k, v as they enter the dot product, and the scores before the mask (``model.recorder.INSIDE``)."""
    Tq, Tk = q.size(-2), k.size(-2)
    for name, t in (("q", q), ("k", k), ("v", v)):
        keep(record, name, t)
    dots = q @ k.transpose(-2, -1)                                                      # q·k_j (..., Tq, Tk)
    keep(record, "dots", dots)
    scores = dots / math.sqrt(q.size(-1))                                               # ÷ √hs
    keep(record, "scores", scores)
    # query i stands at position Tk - Tq + i and may see keys 0 .. Tk - Tq + i
    future = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).triu(diagonal=Tk - Tq + 1)
    scores = scores.masked_fill(future, float("-inf"))
    weights = F.softmax(scores, dim=-1)                                                 # each row sums to 1
    mixed = dropout(weights) if dropout is not None else weights
    return mixed @ v, weights                                                           # (..., Tq, hs)


class SelfAttention(nn.Module):
    """One attention head, every step spelled out: the version to read first."""

    def __init__(self, n_embd: int, head_size: int, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        self.query = nn.Linear(n_embd, head_size, bias=bias)
        self.key = nn.Linear(n_embd, head_size, bias=bias)
        self.value = nn.Linear(n_embd, head_size, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.rotary: RotaryEmbedding | None = None          # a RoPE model's head turns q and k (``from_head``)

    @classmethod
    def from_head(cls, attention: "MultiHeadAttention", head: int) -> "SelfAttention":
        """Head ``head`` of a trained ``MultiHeadAttention``, as its own module: the rows of the fused Q, K, V
        projection that belong to it. It computes exactly what that head computes inside the model."""
        C, hs = attention.qkv.in_features, attention.head_size
        fused_bias = attention.qkv.bias
        single = cls(C, hs, bias=fused_bias is not None)
        rows = slice(head * hs, (head + 1) * hs)
        with torch.no_grad():
            for i, linear in enumerate((single.query, single.key, single.value)):       # Q, K, V blocks of (3C, C)
                linear.weight.copy_(attention.qkv.weight[i * C :][rows])
                if fused_bias is not None:
                    linear.bias.copy_(fused_bias[i * C :][rows])
        single.rotary = attention.rotary                                                # None unless RoPE
        return single.to(attention.qkv.weight.device)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        q, k, v = self.query(x), self.key(x), self.value(x)                             # each (B, T, hs)
        if self.rotary is not None:
            q, k = self.rotary(q, k)                                                    # positions 0 .. T-1
        out, weights = causal_attention(q, k, v, self.dropout)                          # (B, T, hs), (B, T, T)
        return (out, weights) if return_weights else out


def fused_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` with the causal mask. On a CPU it always runs in fp32, also under bf16
    autocast: the CPU flash-attention kernel's bf16 backward pass is much slower than its fp32 one, and casting
    q, k, v up and the result back costs far less (docs/speed-log.md)."""
    if q.device.type == "cpu" and q.dtype != torch.float32:
        with torch.autocast("cpu", enabled=False):
            out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), dropout_p=dropout_p, is_causal=True)
        return out.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)


class MultiHeadAttention(nn.Module):
    """nh heads side by side, each with its own Q/K/V maps looking at a different aspect of the sequence (like a
    cricket fan watching the captain, the bowler, the batter and the score at once), then mixed by one projection.

    All heads' Q, K, V come from one fused (C → 3C) matmul. Training uses PyTorch's fused
    ``scaled_dot_product_attention`` (same maths, less memory traffic); with a ``record`` the explicit formula above
    runs instead, so that the weights can be kept and looked at.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head, self.head_size = cfg.n_head, cfg.head_size
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)                 # [q k v] = W_qkv x (+ b_qkv)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)                    # W_o · heads (+ b_o)
        self.dropout_p = cfg.dropout
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        # positional="rope": q and k turned by their position's angles (model.rope), on every path below
        self.rotary = RotaryEmbedding(cfg.block_size, cfg.head_size) if cfg.positional == "rope" else None

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, start: int | torch.Tensor = 0,
                record: Recorder | None = None) -> torch.Tensor:
        """x (B, T, C) at positions start..start+T-1 → (B, T, C). With a ``cache`` (generation), the keys and values
        of the positions before come from it (``attend_with_cache``); ``record`` keeps the weights (B, nh, T, T), and
        in the block it looks inside, q and k as they enter the dot product (after RoPE's rotation, for a RoPE model)."""
        B, T, C = x.shape
        keep(record, "attention_input", x)
        q, k, v = self.qkv(x).split(C, dim=2)                                           # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, self.head_size).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if self.rotary is not None:
            q, k = self.rotary(q, k, start)                         # R(p·θ) q, R(p·θ) k; the cache keeps turned keys
        if cache is not None:
            out = attend_with_cache(q, k, v, cache, start)                              # (B, nh, T, hs)
        elif record is not None:
            out, weights = causal_attention(q, k, v, self.attn_dropout, record)         # softmax(QKᵀ/√hs + M) V
            keep(record, "attention", weights)                                          # (B, nh, T, T)
            keep(record, "heads", out)                                                  # (B, nh, T, hs)
        else:
            out = fused_causal_attention(q, k, v, self.dropout_p if self.training else 0.0)
        out = out.transpose(1, 2).contiguous().view(B, T, C)                            # heads side by side (B, T, C)
        out = self.resid_dropout(self.proj(out))                                        # (B, T, C)
        keep(record, "attention_out", out)
        return out


def attend_with_cache(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: KVCache,
                      start: int | torch.Tensor) -> torch.Tensor:
    """Attention for new tokens (B, nh, T, hs) whose keys and values go into ``cache`` after those of the positions
    before them, which they may all see. A 0-dim tensor ``start`` (one new token) attends over the whole cache
    through a mask of the filled positions instead, so that the shapes, and a recorded decode step, stay the same at
    every position (``model.decoder``)."""
    if isinstance(start, torch.Tensor):
        k, v, visible = cache.write(k, v, start)                 # (B, nh, block_size, hs), visible (1, block_size)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible)               # positions ≤ start only
    k, v = cache.append(k, v)                                                           # (B, nh, Tk, hs), Tk ≥ T
    if q.size(2) == k.size(2):      # no cached prefix: the plain causal mask
        return fused_causal_attention(q, k, v, 0.0)
    if q.size(2) == 1:              # one new token: it may see every cached position
        return F.scaled_dot_product_attention(q, k, v)
    return causal_attention(q, k, v)[0]     # several new tokens after a cached prefix: shifted causal mask
