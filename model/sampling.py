"""Turning logits into a next token: softmax with a temperature, optionally restricted to the likeliest tokens.

    p_i = exp(z_i / τ) / Σ_j exp(z_j / τ)

τ → 0 puts all probability on the top token (greedy, "accurate"); τ = 1 is the model's own distribution; τ > 1
flattens it ("creative"). top-k keeps the k likeliest tokens; top-p (nucleus) keeps the smallest set whose
probabilities add up to p. Everything that samples in the project calls ``sample_next_token``, or (a recorded
decode step, ``model.decoder``) the same two functions it calls, ``filtered_probs`` and ``race``.
"""
import math

import torch
import torch.nn.functional as F


# The sampling arguments' limits, written once: ``check_sampling_args`` holds every sampler to the formula's own
# (τ ≥ 0, top-k ≥ 1, 0 < top-p ≤ 1); generate.py's flags and the playground's requests are checked against these
# numbers too, and the playground serves them to its page (GET /api/limits).
MIN_TEMPERATURE = 0.0         # τ = 0 is greedy
MIN_TOP_K = 1
MAX_TOP_K = 2**24             # more than any vocabulary: generate.py takes a larger top-k for a typo
TOP_P_ABOVE = 0.0             # top-p lies in (TOP_P_ABOVE, MAX_TOP_P]
MAX_TOP_P = 1.0               # 1 keeps every token


def check_sampling_args(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not (math.isfinite(temperature) and temperature >= MIN_TEMPERATURE):  # NaN fails every comparison: first
        raise ValueError(f"temperature must be a finite number >= {MIN_TEMPERATURE:g} (0 = greedy), got {temperature}")
    if top_k is not None and top_k < MIN_TOP_K:
        raise ValueError(f"top_k must be >= {MIN_TOP_K}, got {top_k}")
    if top_p is not None and not TOP_P_ABOVE < top_p <= MAX_TOP_P:
        raise ValueError(f"top_p must be in ({TOP_P_ABOVE:g}, {MAX_TOP_P:g}], got {top_p}")


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> torch.Tensor:
    """logits (B, V) → probabilities (B, V) after temperature, top-k and top-p. τ = 0 is one-hot on the argmax."""
    check_sampling_args(temperature, top_k, top_p)
    if temperature == 0:
        return F.one_hot(logits.argmax(dim=-1), logits.size(-1)).float()
    return filtered_probs(logits, inverse_temperature(temperature), top_k, nucleus(top_p))


def inverse_temperature(temperature: float) -> float:
    """1 / τ for τ > 0, as the number ``filtered_probs`` multiplies by (computed here once, in double precision,
    whether it then stays a number or fills a tensor, so both give the same float32). A τ below float32's smallest
    normal number would round to 0 on the way in; there exp(z / τ) is 0 for every token below the top already, so
    τ stops at that number."""
    return 1.0 / max(temperature, torch.finfo(torch.float32).tiny)


def nucleus(top_p: float | None) -> float | None:
    """The p that ``filtered_probs`` restricts to: None where top-p keeps every token (none asked, or p = 1)."""
    return top_p if top_p is not None and top_p < 1.0 else None


def filtered_probs(logits: torch.Tensor, inverse_temperature: float | torch.Tensor, top_k: int | None = None,
                   top_p: float | torch.Tensor | None = None) -> torch.Tensor:
    """``next_token_probs`` for τ > 0 (checked), with 1/τ and p numbers or 0-dim tensors: a recorded decode step
    reads them from tensors, so that one recording serves every temperature. z / τ is computed as z · (1/τ): a GPU
    divides by a number as a multiplication by its inverse but by a tensor exactly, so a division would differ
    between the two by a bit."""
    # softmax does not change when every logit moves by the same amount: moving the largest to 0 keeps z / τ ≤ 0
    # at any τ > 0 (unshifted, a τ of 1e-45 overflows z / τ to inf and the softmax to inf - inf = NaN)
    logits = logits.float()
    logits = (logits - logits.max(dim=-1, keepdim=True).values) * inverse_temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]                        # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    if top_p is not None:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs                              # mass of likelier tokens
        sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)                   # the top token always stays
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def entropy_bits(probs: torch.Tensor) -> float:
    """H(p) = −Σ p log₂ p in bits, with 0 · log 0 = 0: 0 when one token is certain, log₂ V when all V are equally
    likely. How spread out a distribution from ``next_token_probs`` is."""
    return torch.where(probs > 0, probs * -probs.log2(), torch.zeros_like(probs)).sum().item()


def sample_next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                      top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (B, V) → next token ids (B, 1). Deterministic for a seeded ``generator``; argmax at τ = 0."""
    if temperature == 0:
        check_sampling_args(temperature, top_k, top_p)
        return logits.argmax(dim=-1, keepdim=True)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    return race(probs, torch.rand(probs.shape, generator=generator, device=probs.device))


def race(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """A token drawn from ``probs`` (B, V) with uniform noise U (B, V) in [0, 1): the exponential race

        token = argmax_i p_i / E_i,    E_i = −ln U_i ~ Exp(1)

    E_i / p_i is an exponential clock with rate p_i; the first of them to ring is token i with probability
    p_i / Σ_j p_j, and a token of probability 0 never rings. The noise is an input, drawn beforehand, so that the
    draw can sit inside a recorded decode step and still take the numbers the caller's generator gives. U = 0
    (one draw in 2²⁴) is taken as the smallest positive float: −ln 0 = inf would give p / E = 0 for a likely token,
    and an argmax over all zeros picks token 0 whatever its probability."""
    exponential = -uniform.clamp_min(torch.finfo(uniform.dtype).tiny).log()             # E (B, V) ~ Exp(1)
    return (probs / exponential).argmax(dim=-1, keepdim=True)                           # (B, 1)
