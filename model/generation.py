"""Autoregressive generation: predict a token, append it, repeat.

    for each new token:
        logits = model(the last block_size tokens)[:, -1]       (B, V): a score for every possible next token
        token  = sample_next_token(logits, τ, top-k, top-p)     (B, 1): softmax at temperature τ, then a draw
        append the token; it is part of the input of the next step

The model only ever sees its context, the last block_size tokens: past that, the oldest token drops out of the
window. Re-running the whole window for every token repeats work whose result does not change (the keys and values
of the tokens already seen); ``model.decoder`` keeps them in a KV cache and feeds only the new token, with the same
tokens as this loop (tested). ``generate`` takes that path unless told not to.
"""
from collections.abc import Iterator

import torch

from model.decoder import generate_cached
from model.gpt import GPT
from model.sampling import sample_next_token


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True, compile: bool = False) -> Iterator[torch.Tensor]:
    """idx (B, T) prompt ids → yields the next token ids (B, 1), one token at a time, so callers can stream.

    ``use_cache``: through the KV-cache decoder (``model.decoder``), which is faster and gives the same tokens.
    ``compile`` (with the cache): torch.compile its one-token step first; worth its seconds of compiling for long or
    many generations on a GPU."""
    if use_cache:
        yield from generate_cached(model, idx, max_new_tokens, temperature, top_k, top_p, generator, compile)
        return
    block_size = model.cfg.block_size
    for _ in range(max_new_tokens):
        window = idx[:, -block_size:]                                                   # (B, ≤ block_size)
        logits = model(window, last_only=True)[0][:, -1]                                # (B, V) the last position's
        new = sample_next_token(logits, temperature, top_k, top_p, generator)           # (B, 1)
        idx = torch.cat([idx, new], dim=1)                                              # (B, T + 1)
        yield new
