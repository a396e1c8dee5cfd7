"""Generation speed: new tokens per second with and without the KV cache.

The model has random weights (speed does not depend on what the weights say). Each run starts from a
``prompt_len``-token prompt and generates until the context is full (block_size − prompt_len new tokens), so the
window never slides: past the context, absolute positions force the cache to be rebuilt every step
(``model.decoder``) and the two paths cost the same. Sampling is greedy, and the ways are timed in interleaved
rounds after one untimed generation each (on a GPU that compiles the step, if asked, and captures it: paid once per
process and model, not per generation); the median is reported.
"""
import statistics
import time

import torch

from model.config import ModelConfig
from model.decoder import CHUNK, kept_decoder
from model.generation import generate
from model.gpt import GPT


def generation_speed(model_cfg: ModelConfig, batch_sizes=(1, 8), vocab_size: int = 65, prompt_len: int = 16,
                     rounds: int = 3, device: torch.device = torch.device("cpu"),
                     compiled_step: bool = False) -> list[dict]:
    torch.manual_seed(0)
    model = GPT(model_cfg, vocab_size).to(device).eval()
    new_tokens = model_cfg.block_size - prompt_len
    rows = []
    for batch in batch_sizes:
        prompt = torch.randint(0, vocab_size, (batch, prompt_len), device=device)
        ways = [(True, False), (False, False), *([(True, True)] if compiled_step else [])]   # (cache, compiled)
        for use_cache, compile in ways:     # compiling and capturing are paid once per process, before the clock
            # enough tokens for the one-token step and a run of CHUNK tokens to be recorded here, not in a round
            for _ in generate(model, prompt, CHUNK + 2, temperature=0.0, use_cache=use_cache, compile=compile):
                pass
        times = {way: [] for way in ways}
        for _ in range(rounds):
            for use_cache, compile in ways:
                start = time.perf_counter()
                for _ in generate(model, prompt, new_tokens, temperature=0.0, use_cache=use_cache, compile=compile):
                    pass
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times[(use_cache, compile)].append(time.perf_counter() - start)
        for use_cache, compile in ways:
            seconds = statistics.median(times[(use_cache, compile)])
            rows.append({"batch": batch, "kv_cache": use_cache, "compiled": compile, "new_tokens": new_tokens,
                         "tokens_per_s": round(batch * new_tokens / seconds, 1), "seconds": round(seconds, 3),
                         "graphs": recorded_graphs(model, batch, compile) if use_cache else []})
    return rows


def recorded_graphs(model: GPT, batch: int, compile: bool) -> list[str]:
    """The decode steps the timed generations replayed as CUDA graphs (none where recording failed or off a GPU)."""
    with kept_decoder(model, batch, compile) as decoder:
        return sorted(decoder.graphs)
