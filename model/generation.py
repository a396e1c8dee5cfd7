"""Autoregressive generation: predict a token, append it, repeat.

With ``use_cache`` each step feeds only the new token and reuses the stored keys and values (``KVCache``). Once the
sequence is longer than the context, the model sees only the last block_size tokens; because positions are absolute,
the window then shifts every step, so the cache is rebuilt from the cropped window each step. Both paths therefore
compute exactly the same logits as re-running the model on the last block_size tokens (tested).
"""
from collections.abc import Iterator

import torch

from model.gpt import GPT
from model.sampling import sample_next_token


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True) -> Iterator[torch.Tensor]:
    """idx (B, T) prompt ids → yields the next token ids (B, 1), one step at a time (so callers can stream)."""
    block_size = model.cfg.block_size
    caches = None
    for _ in range(max_new_tokens):
        window = idx[:, -block_size:]                                                   # (B, ≤ block_size)
        if not use_cache:
            logits, _ = model(window)
        elif caches is None or caches[0].length == block_size:
            caches = model.new_caches(idx.size(0))                                      # (re)fill from the window
            logits, _ = model(window, caches=caches)
        else:
            logits, _ = model(window[:, -1:], caches=caches, start=caches[0].length)   # only the new token
        next_id = sample_next_token(logits[:, -1, :], temperature, top_k, top_p, generator)  # (B, 1)
        idx = torch.cat([idx, next_id], dim=1)
        yield next_id
