"""Autoregressive generation: predict a token, append it, repeat.

With ``use_cache`` the prompt's keys and values are computed once (``KVCache``) and each later step feeds only the
new token. That step has the same shapes at every position (the position is a tensor, attention reads the whole
cache through a mask of the filled positions), so on a GPU it is captured once as a CUDA graph and replayed: one
launch per token instead of one per kernel, which is what a small model's step is made of.

Once the sequence is longer than the context, the model sees only the last block_size tokens; because positions are
absolute, the window then shifts every step, so the cache is refilled from the cropped window each step. Both paths
therefore compute the same logits as re-running the model on the last block_size tokens (tested).
"""
import contextlib
import functools
import itertools
import threading
import weakref
from collections.abc import Iterator

import torch

from model.gpt import GPT
from model.kv_cache import KVCache
from model.sampling import sample_next_token


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True, compile: bool = False) -> Iterator[torch.Tensor]:
    """idx (B, T) prompt ids → yields the next token ids (B, 1), one step at a time (so callers can stream).

    ``compile`` (with the cache): torch.compile the one-token step first, fusing its small kernels; worth its
    seconds of compiling for long or many generations on a GPU."""
    block_size = model.cfg.block_size
    with kept_decoder(model, idx.size(0), compile) if use_cache else contextlib.nullcontext() as decoder:
        for _ in range(max_new_tokens):
            window = idx[:, -block_size:]                                               # (B, ≤ block_size)
            if decoder is None:
                logits = model(window)[0][:, -1]
            elif decoder.length in (0, block_size):
                logits = decoder.fill(window)                                           # (re)fill from the window
            else:
                logits = decoder.step(window[:, -1:])                                   # only the new token
            next_id = sample_next_token(logits, temperature, top_k, top_p, generator)   # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)
            yield next_id


_kept: "weakref.WeakKeyDictionary[GPT, dict]" = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def kept_decoder(model: GPT, batch_size: int, compile: bool):
    """A decoder kept per model, batch size and compile choice, emptied for this generation: its caches, and on a
    GPU its captured graph, are made once instead of once per generation. It is made again when the model's
    tensors moved (``model.to(...)``), since a graph reads them by address; a generation running beside another
    on the same model (a server's threads) gets a decoder of its own."""
    addresses = tuple(t.data_ptr() for t in itertools.chain(model.parameters(), model.buffers()))
    kept = _kept.setdefault(model, {})
    decoder = kept.get((batch_size, compile))
    if decoder is None or decoder.addresses != addresses:
        decoder = kept[(batch_size, compile)] = CachedDecoder(model, batch_size, compile)
    if not decoder.busy.acquire(blocking=False):
        decoder = CachedDecoder(model, batch_size, compile)
        decoder.busy.acquire()
    try:
        decoder.length = 0
        yield decoder
    finally:
        decoder.busy.release()


class CachedDecoder:
    """The model with one KV cache per block, filled from a window, then stepped one token at a time."""

    def __init__(self, model: GPT, batch_size: int, compile: bool = False):
        device = model.embed.token.weight.device
        self.model_ref, self.caches, self.length = weakref.ref(model), model.new_caches(batch_size), 0
        self.addresses = tuple(t.data_ptr() for t in itertools.chain(model.parameters(), model.buffers()))
        self.busy = threading.Lock()
        self.decode = compiled_decode_one() if compile else decode_one
        self.token = torch.zeros(batch_size, 1, dtype=torch.long, device=device)       # the step's inputs, at fixed
        self.position = torch.zeros((), dtype=torch.long, device=device)               # addresses for the graph
        self.graph, self.logits = None, None
        self.capture = device.type == "cuda"

    def fill(self, window: torch.Tensor) -> torch.Tensor:
        """Empty the caches and run the window (B, T) through them; the last position's logits (B, vocab)."""
        for cache in self.caches:
            cache.clear()
        logits, _ = self.model_ref()(window, caches=self.caches)
        self.length = window.size(1)
        return logits[:, -1]

    def step(self, token: torch.Tensor) -> torch.Tensor:
        """token (B, 1) at position ``length`` → the next-token logits (B, vocab)."""
        self.token.copy_(token)
        self.position.fill_(self.length)
        self.length += 1
        if not self.capture:
            return self.run_step()
        if self.graph is None:
            self._capture()
        self.graph.replay()
        return self.logits

    def run_step(self) -> torch.Tensor:
        return self.decode(self.model_ref(), self.token, self.position, self.caches)

    def _capture(self) -> None:
        """Record the step's kernels once (after a warm-up on a side stream, as CUDA graphs require). The warm-up
        writes the same keys and values at the same position as the replay that follows, so it changes nothing."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.run_step()                                      # compiles here, when compiling
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = self.run_step()


def decode_one(model: GPT, token: torch.Tensor, position: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
    """token (B, 1) at ``position`` (0-dim) → next-token logits (B, vocab); its keys and values go into
    ``caches``."""
    return model(token, caches=caches, start=position)[0][:, -1]


@functools.cache
def compiled_decode_one():
    """``decode_one`` compiled once per process (on first use: importing the compiler costs a second) and shared
    by every decoder, whose tensors differ only in address, so it is not compiled again for each generation."""
    return torch.compile(decode_one, fullgraph=True)
