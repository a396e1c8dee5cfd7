"""Will it fit? A model's memory estimated from its config before it is built.

A shape that cannot fit (``model.n_embd=100000000``, or a damaged checkpoint whose stored config claims one) would
otherwise end in the allocator: a traceback, or the operating system killing the process. The estimates are lower
bounds, so nothing that fits is refused:

    inference  4 bytes × parameters                              (fp32 weights), and for generation each
               sample's KV caches, logits and token ids
    training   4 bytes × (4 × parameters + activations)          (weights, gradients, AdamW's two moments)
    activations ≈ B · T · (n_layer · (10 + 2 · ffn_mult) · C + 2 · V)   (what backpropagation keeps per token)
"""
import os

import torch

from errors import UserError
from model.config import ModelConfig
from model.gpt import GPT

BYTES_PER_VALUE = 4


def inference_bytes(cfg: ModelConfig, vocab_size: int) -> int:
    return BYTES_PER_VALUE * GPT.params_for(cfg, vocab_size)


def training_bytes(cfg: ModelConfig, vocab_size: int, batch_size: int) -> int:
    per_token = cfg.n_layer * (10 + 2 * cfg.ffn_mult) * cfg.n_embd + 2 * vocab_size
    activations = batch_size * cfg.block_size * per_token
    return BYTES_PER_VALUE * (4 * GPT.params_for(cfg, vocab_size) + activations)


def generation_bytes(cfg: ModelConfig, vocab_size: int, batch_size: int, new_tokens: int) -> int:
    """The weights, each sample's KV caches (2 · n_layer · T · C) and window logits (T · V), and its growing list
    of token ids (8-byte integers)."""
    per_sample = BYTES_PER_VALUE * cfg.block_size * (2 * cfg.n_layer * cfg.n_embd + vocab_size)
    return inference_bytes(cfg, vocab_size) + batch_size * (per_sample + 8 * (cfg.block_size + new_tokens))


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` (None where it cannot be read): the GPU's free memory, or the machine's
    available memory (MemAvailable on Linux, else all physical memory)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_fits(needed: int, what: str, device: torch.device = torch.device("cpu")) -> None:
    """A one-line error when ``needed`` bytes are more than ``device`` has free."""
    free = available_bytes(device)
    if free is not None and needed > free:
        raise UserError(f"{what} needs at least {gib(needed)} of memory but {device.type} has {gib(free)} free; "
                        "make it smaller (model.n_layer, model.n_embd, model.block_size, train.batch_size)")
