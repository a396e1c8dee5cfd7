"""Load a checkpoint and complete prompts: what ``generate.py``, the toy evaluation and the lessons share."""
from dataclasses import dataclass
from pathlib import Path

import torch

from data.tokenization import Tokenizer, stream_decoder
from errors import UserError
from model.generation import generate
from model.gpt import GPT
from model.sampling import check_sampling_args, next_token_probs
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.config import Config
from training.device import resolve_device


@dataclass
class Loaded:
    model: GPT
    tokenizer: Tokenizer
    cfg: Config
    device: torch.device


def load_for_inference(path: str | Path, device: str = "cpu") -> Loaded:
    model, tokenizer, cfg = model_from_checkpoint(load_checkpoint(path), path)
    device, _ = resolve_device(device)
    return Loaded(model.to(device).eval(), tokenizer, cfg, device)


def encode_prompt(loaded: Loaded, prompt: str) -> list[int]:
    """Prompt → ids, or a one-line error: empty, not UTF-8, unknown characters, longer than the context.

    A command-line argument that is not valid UTF-8 reaches Python as lone surrogates (``surrogateescape``); the
    byte-level tokenizers would silently turn them into U+FFFD, so they are refused here for every kind."""
    if not prompt:
        raise UserError("the prompt is empty; give some text with --prompt or --prompt-file")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UserError(f"the prompt is not valid UTF-8 text (character {e.object[e.start]!r} at position "
                        f"{e.start}); check your terminal's encoding or use --prompt-file") from None
    ids = loaded.tokenizer.encode(prompt)
    block_size = loaded.cfg.model.block_size
    if len(ids) > block_size:
        raise UserError(f"the prompt is {len(ids)} tokens but the model's context is {block_size}; shorten it")
    return ids


def top_candidates(loaded: Loaded, ids: list[int], temperature: float, k: int = 10,
                   top_k: int | None = None, top_p: float | None = None) -> list[tuple[str, float]]:
    """The k likeliest next tokens after ``ids`` with their probabilities at this temperature (τ = 0 shows τ → 0:
    all mass on the argmax)."""
    with torch.no_grad():
        logits, _ = loaded.model(torch.tensor([ids], device=loaded.device))
    probs = next_token_probs(logits[:, -1, :], temperature, top_k, top_p)[0]         # (V,)
    values, indices = probs.topk(min(k, probs.numel()))
    return [(loaded.tokenizer.decode([i]), p) for i, p in zip(indices.tolist(), values.tolist())]


def complete(loaded: Loaded, prompt_ids: list[int], max_new_tokens: int, temperature: float,
             top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True, num_samples: int = 1):
    """Yields (sample index, text piece) as tokens are made, for ``num_samples`` samples drawn as one batch."""
    check_sampling_args(temperature, top_k, top_p)
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    idx = torch.tensor([prompt_ids] * num_samples, device=loaded.device)              # (S, T)
    decoders = [stream_decoder(loaded.tokenizer) for _ in range(num_samples)]
    for next_ids in generate(loaded.model, idx, max_new_tokens, temperature, top_k, top_p, generator, use_cache):
        for s, token in enumerate(next_ids[:, 0].tolist()):
            piece = decoders[s]([token])
            if piece:
                yield s, piece
    for s, decode in enumerate(decoders):          # bytes of a character the last token left unfinished
        piece = decode([], final=True)
        if piece:
            yield s, piece


def greedy_text(loaded: Loaded, prompt: str, min_chars: int, max_new_tokens: int = 64) -> str:
    """The greedy continuation of ``prompt``, at least ``min_chars`` characters long (or max_new_tokens tokens)."""
    text = ""
    for _, piece in complete(loaded, encode_prompt(loaded, prompt), max_new_tokens, temperature=0.0):
        text += piece
        if len(text) >= min_chars:
            break
    return text
