"""The fast way to generate: the model with a KV cache per block, fed only the new token at each step.

Re-running the whole window for every new token (``model.generation``'s loop) repeats the same work: the keys and
values of the tokens already seen do not change. The decoder computes each token's keys and values once, keeps
them (``KVCache``) and feeds only the new token. That step has the same shapes at every position (the position is a
tensor, attention reads the whole cache through a mask of the filled positions). On a GPU the decoder runs ``CHUNK``
such steps in one go, each picking its token (argmax, or the exponential race of ``model.sampling`` on noise drawn
beforehand) and feeding it to the next, recorded once as a CUDA graph and replayed: one launch per ``CHUNK`` tokens
instead of one per kernel, which is what a small model's step is made of.

Once the sequence is longer than the context, the model sees only the last block_size tokens; because a cached key
carries its position (added to the token, or RoPE's rotation), the window then shifts every step, so the cache is
refilled from the cropped window each step. Every path therefore computes the same logits as re-running the model on
the last block_size tokens, and draws the same tokens from the same generator (tested).
"""
import contextlib
import functools
import itertools
import threading
import warnings
import weakref
from collections.abc import Iterator

import torch

from model.cuda_graphs import record, side_stream, why_recording_failed
from model.gpt import GPT
from model.kv_cache import KVCache
from model.sampling import filtered_probs, inverse_temperature, nucleus, race, sample_next_token


CHUNK = 16      # tokens per run of the recorded decode steps


def generate_cached(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float, top_k: int | None,
                    top_p: float | None, generator: torch.Generator | None,
                    compile: bool = False) -> Iterator[torch.Tensor]:
    """``model.generation.generate`` with the cache: the same tokens, yielded (B, 1) one at a time (made ``CHUNK``
    at a time where the steps are recorded)."""
    block_size, made = model.cfg.block_size, 0
    with kept_decoder(model, idx.size(0), compile) as decoder:
        while made < max_new_tokens:
            window = idx[:, -block_size:]                                               # (B, ≤ block_size)
            if decoder.length in (0, block_size):                                       # (re)fill from the window
                new = sample_next_token(decoder.fill(window), temperature, top_k, top_p, generator)
            elif (decoder.chunks and top_k is None and max_new_tokens - made >= CHUNK
                  and decoder.length + CHUNK <= block_size):
                new = decoder.run(window[:, -1:], temperature, top_p, generator)        # (B, CHUNK)
            else:                                                                       # only the new token
                new = sample_next_token(decoder.step(window[:, -1:]), temperature, top_k, top_p, generator)
            idx = torch.cat([idx, new], dim=1)
            made += new.size(1)
            for i in range(new.size(1)):
                yield new[:, i : i + 1]                                                 # (B, 1)


_kept: "weakref.WeakKeyDictionary[GPT, dict]" = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def kept_decoder(model: GPT, batch_size: int, compile: bool):
    """A decoder kept per model, batch size and compile choice, emptied for this generation: its caches, and on a
    GPU its recorded graphs, are made once instead of once per generation. It is made again when the model's
    tensors moved (``model.to(...)``), since a graph reads them by address; a generation running beside another
    on the same model (a server's threads) gets a decoder of its own, which runs without recording (recording for
    one generation would cost more than it saves)."""
    addresses = tuple(t.data_ptr() for t in itertools.chain(model.parameters(), model.buffers()))
    kept = _kept.setdefault(model, {})
    decoder = kept.get((batch_size, compile))
    if decoder is None or decoder.addresses != addresses:
        decoder = kept[(batch_size, compile)] = CachedDecoder(model, batch_size, compile)
    if not decoder.busy.acquire(blocking=False):
        decoder = CachedDecoder(model, batch_size, compile)
        decoder.capture = decoder.chunks = False
        decoder.busy.acquire()
    try:
        decoder.length = 0
        yield decoder
    finally:
        decoder.busy.release()


class CachedDecoder:
    """The model with one KV cache per block, filled from a window, then stepped one token at a time, or ``CHUNK``
    tokens at a time with the tokens picked inside (``run``)."""

    def __init__(self, model: GPT, batch_size: int, compile: bool = False):
        device = model.embed.token.weight.device
        self.model_ref, self.caches, self.length = weakref.ref(model), model.new_caches(batch_size), 0
        self.addresses = tuple(t.data_ptr() for t in itertools.chain(model.parameters(), model.buffers()))
        self.busy = threading.Lock()
        self.decode = compiled_decode_one() if compile else decode_one
        # the steps' inputs and outputs, at fixed addresses for the graphs that read and write them
        self.token = torch.zeros(batch_size, 1, dtype=torch.long, device=device)       # the token fed next
        self.position = torch.zeros((), dtype=torch.long, device=device)               # ... and its position
        self.inverse_temperature = torch.ones((), device=device)
        self.top_p = torch.ones((), device=device)
        self.noise = None                 # U(0, 1) noise (CHUNK, B, vocab) for ``run``'s draws, made on first use
        self.tokens = torch.zeros(batch_size, CHUNK, dtype=torch.long, device=device)  # what ``run`` made
        self.graphs = {}            # recorded on a GPU: (graph, output) of the one-token step, and of ``run`` per way
        self.capture = device.type == "cuda"
        # runs of CHUNK tokens where the steps are recorded; elsewhere a token costs its kernels' time anyway, and
        # going token by token stops at once when the caller stops reading (a page closing, an answer complete)
        self.chunks = self.capture

    def fill(self, window: torch.Tensor) -> torch.Tensor:
        """Empty the caches and run the window (B, T) through them; the last position's logits (B, vocab)."""
        for cache in self.caches:
            cache.clear()
        logits, _ = self.model_ref()(window, caches=self.caches, last_only=True)       # (B, 1, vocab)
        self.length = window.size(1)
        return logits[:, -1]

    def step(self, token: torch.Tensor) -> torch.Tensor:
        """token (B, 1) at position ``length`` → the next-token logits (B, vocab)."""
        self.token.copy_(token)
        self.position.fill_(self.length)
        self.length += 1
        if not self.capture:
            return self.one_step()
        if "step" not in self.graphs:
            return self._run_then_record("step", self.one_step)
        graph, logits = self.graphs["step"]
        graph.replay()
        return logits

    def one_step(self) -> torch.Tensor:
        if self.capture or self.decode is not decode_one:           # fixed shapes: recorded, or compiled once
            return self.decode(self.model_ref(), self.token, self.position, self.caches)
        # eager: the new token attends to the filled positions only, as in a plain forward. The fixed-shape step
        # attends to the whole cache through a mask, which on a CPU can cost more than the step's matmuls once the
        # context is long (GPT-2's 1,024 positions; docs/real-model.md)
        position = int(self.position)
        for cache in self.caches:
            cache.length = position                                 # positions 0 .. position - 1 are filled
        return self.model_ref()(self.token, caches=self.caches, start=position)[0][:, -1]

    def run(self, token: torch.Tensor, temperature: float, top_p: float | None,
            generator: torch.Generator | None) -> torch.Tensor:
        """From token (B, 1) at position ``length``, ``CHUNK`` new tokens (B, CHUNK), each fed to the next step:
        the argmax at τ = 0, else drawn as ``sample_next_token`` draws them (the same noise from ``generator``, in
        the same order), so the tokens are those of ``CHUNK`` calls of ``step``."""
        greedy, top_p = temperature == 0, nucleus(top_p)
        if not greedy:
            self.inverse_temperature.fill_(inverse_temperature(temperature))
            self.top_p.fill_(1.0 if top_p is None else top_p)
            if self.noise is None:
                self.noise = torch.zeros(CHUNK, self.token.size(0), self.model_ref().vocab_size,
                                         device=self.token.device)
            for row in self.noise:                  # the numbers torch.rand(B, vocab) draws, row by row
                row.uniform_(0, 1, generator=generator)
        way = "greedy" if greedy else ("top-p" if top_p is not None else "sample")
        self.token.copy_(token)
        self.position.fill_(self.length)
        self.length += CHUNK
        if not self.capture:
            return self.run_steps(way).clone()
        if way not in self.graphs:
            return self._run_then_record(way, lambda: self.run_steps(way)).clone()
        self.graphs[way][0].replay()
        return self.tokens.clone()

    def run_steps(self, way: str) -> torch.Tensor:
        for i in range(CHUNK):
            logits = self.one_step()                                                    # (B, vocab)
            if way == "greedy":
                token = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = filtered_probs(logits, self.inverse_temperature,
                                       top_p=self.top_p if way == "top-p" else None)
                token = race(probs, self.noise[i])                                      # (B, 1)
            self.tokens[:, i : i + 1].copy_(token)
            self.token.copy_(token)
            self.position += 1
        return self.tokens

    def _run_then_record(self, name: str, fn) -> torch.Tensor:
        """Run ``fn`` eagerly on a side stream (as recording requires; it compiles here, when compiling), then
        record it as graph ``name``, which runs nothing; the eager run's output. Where recording fails (an operation
        a graph cannot hold), a warning, and this decoder runs eagerly, token by token, from then on."""
        with side_stream(self.token.device):
            out = fn()
        try:
            self.graphs[name] = record(fn)
        except torch.OutOfMemoryError:
            raise
        except Exception as e:
            warnings.warn(f"recording decode steps as a CUDA graph failed ({why_recording_failed(e)}); "
                          "generating without")
            self.capture = self.chunks = False
        return out


def decode_one(model: GPT, token: torch.Tensor, position: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
    """token (B, 1) at ``position`` (0-dim) → next-token logits (B, vocab); its keys and values go into
    ``caches``."""
    return model(token, caches=caches, start=position)[0][:, -1]


@functools.cache
def compiled_decode_one():
    """``decode_one`` compiled once per process (on first use: importing the compiler costs a second) and shared
    by every decoder, whose tensors differ only in address, so it is not compiled again for each generation."""
    return torch.compile(decode_one, fullgraph=True)
