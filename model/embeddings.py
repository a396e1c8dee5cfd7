"""Token ids → vectors: a learned embedding per token, plus where the token stands.

    x = E[idx] · s + P[pos]        E (V, C) token table, s = √C or 1 (``embed_scale``), P the positional encoding
                                   (none with ``positional="rope"``, whose positions turn q and k in attention)

The paper multiplies the token embedding by √d_model before adding the positional encoding, so that both terms
have a similar size: the table is shared with the output layer and initialised small (see ``GPT.init_weights``).
GPT-2 adds its learned positions to the unscaled embedding (s = 1).
"""
import math

import torch
from torch import nn

from model.config import ModelConfig
from model.positional import positional_encoding


class Embeddings(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.token = nn.Embedding(vocab_size, cfg.n_embd)
        self.scale = math.sqrt(cfg.n_embd) if cfg.embed_scale else 1.0
        self.position = positional_encoding(cfg.positional, cfg.block_size, cfg.n_embd)   # None: "rope", "none"
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, idx: torch.Tensor, start: int | torch.Tensor = 0) -> torch.Tensor:
        """idx (B, T) token ids at positions start..start+T-1 → (B, T, C) vectors."""
        x = self.token(idx) * self.scale                                                # (B, T, C)
        if self.position is not None:
            x = x + self.position(idx.size(1), start)                                   # (T, C) broadcasts over B
        return self.dropout(x)
