"""One transformer block, pre-norm: normalise, transform, add back (the residual stream).

    x = x + Attention(LayerNorm(x))       tokens exchange information
    x = x + FeedForward(LayerNorm(x))     each token is processed on its own

Normalising *before* each sub-layer (GPT-2 style, not the paper's post-norm) keeps gradients well-behaved in deep
stacks without a long warm-up; the residual additions let every layer refine the vector rather than replace it.
"""
import torch
from torch import nn

from model.attention import MultiHeadAttention
from model.config import ModelConfig
from model.feedforward import FeedForward
from model.kv_cache import KVCache
from model.recorder import Recorder, keep


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = MultiHeadAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.ffn = FeedForward(cfg)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, start: int | torch.Tensor = 0,
                record: Recorder | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, start, record)                            # (B, T, C)
        keep(record, "after_attention", x)                                              # the stream the FFN reads
        x = x + self.ffn(self.ln2(x), record)                                           # (B, T, C)
        keep(record, "residual", x)                                                     # the stream after the block
        return x
