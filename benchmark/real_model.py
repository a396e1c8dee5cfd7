"""How fast the page and generation are on a large model: ``python bench.py --real-model FOLDER_OR_CHECKPOINT``.

Times what a learner waits for, through the same code the server and generate.py run:

- ``/api/page`` for a text of ``--tokens`` tokens, answered by the real server (its FastAPI app, called in process:
  the request's validation, one traced forward pass, the views, orjson), each text new (a word changed), p50 and p90;
- its answer's size in bytes, and the time of the forward pass alone inside it;
- generation at batch 1 with the KV cache, ``--new`` tokens after a short prompt, tokens/s;

once per thread count of ``--threads`` (PyTorch's kernels; the machine's other work decides which is faster), the
thread counts taking turns, with the load average beside each number, since on a shared machine that moves them
more than any change to the code. For a Hugging Face GPT-2 folder, random weights of that shape do as well as the
real ones: the time does not depend on the values.
"""
import os
import statistics
import time

from collections.abc import Callable

import torch

from inference import Loaded, complete, encode_prompt

WORDS = ("dog", "cat", "house", "river", "music", "winter", "garden", "letter", "market", "engine", "doctor", "island")
PROMPT = "The meaning of life is"


def text_of(loaded, tokens: int, word: str) -> str:
    """A text of exactly ``tokens`` tokens, with ``word`` in it (each request a new text: nothing can be reused)."""
    sentence = f"The {word} walked along the old road to the town, and everyone there saw it coming. "
    ids = loaded.tokenizer.encode(sentence * (tokens // 8 + 2))[:tokens]
    text = loaded.tokenizer.decode(ids)
    assert len(loaded.tokenizer.encode(text)) == tokens, "the cut text re-encodes to another length"
    return text


def load_average() -> float:
    return os.getloadavg()[0]


def time_page(page: Callable[[str], bytes], loaded: Loaded, tokens: int, repeats: int) -> dict:
    """``page(text)`` answers POST /api/page for ``text`` (the body's bytes)."""
    times, sizes, loads = [], [], []
    for i in range(repeats):
        text = text_of(loaded, tokens, WORDS[i % len(WORDS)] + ("s" if i >= len(WORDS) else ""))
        started = time.perf_counter()
        answer = page(text)
        times.append(time.perf_counter() - started)
        sizes.append(len(answer))
        loads.append(load_average())
    ids = torch.tensor([encode_prompt(loaded, text_of(loaded, tokens, "dog"))])
    forward = []
    with torch.no_grad():
        for _ in range(max(3, repeats // 4)):
            started = time.perf_counter()
            loaded.model(ids, last_only=True)
            forward.append(time.perf_counter() - started)
    q = statistics.quantiles(times, n=10)
    return {"p50_ms": 1000 * statistics.median(times), "p90_ms": 1000 * q[-1], "bytes": max(sizes),
            "forward_ms": 1000 * statistics.median(forward), "load": statistics.mean(loads)}


def time_generation(loaded, new_tokens: int) -> dict:
    ids = encode_prompt(loaded, PROMPT)
    generator = torch.Generator().manual_seed(0)
    for _ in complete(loaded, ids, 4, 0.8, generator=generator):      # the decoder's caches made once, as a server
        pass
    started, made = time.perf_counter(), 0
    for _ in complete(loaded, ids, new_tokens, 0.8, generator=generator):
        made += 1
    seconds = time.perf_counter() - started
    return {"tokens_per_s": new_tokens / seconds, "load": load_average()}


def run(loaded: Loaded, page: Callable[[str], bytes], tokens: int = 64, repeats: int = 20, new_tokens: int = 100,
        threads: tuple[int, ...] = (1, 2), rounds: int = 2, log=print) -> list[dict]:
    """Every thread count in turn, ``rounds`` times: the page's and generation's numbers, each with its load."""
    page(text_of(loaded, tokens, "warm"))
    log(f"{loaded.model.num_params():,} parameters; {os.cpu_count()} cores; torch {torch.__version__}")
    results = []
    for round_ in range(rounds):
        for n in threads:
            torch.set_num_threads(n)
            timed = {"round": round_, "threads": n, "page": time_page(page, loaded, tokens, repeats),
                     "generation": time_generation(loaded, new_tokens)}
            results.append(timed)
            pg, gen = timed["page"], timed["generation"]
            log(f"round {round_}, {n} thread(s): /api/page {tokens} tokens p50 {pg['p50_ms']:.0f} ms "
                f"p90 {pg['p90_ms']:.0f} ms ({pg['bytes'] / 1e6:.2f} MB; forward {pg['forward_ms']:.0f} ms) "
                f"load {pg['load']:.1f} | generation {gen['tokens_per_s']:.1f} tokens/s load {gen['load']:.1f}")
    return results
