"""What the playground page shows, computed on the server by the learner's own model.

Each function takes the loaded checkpoint and the text typed into the page and returns data ready to be written as
JSON (plain values, and NumPy arrays for the large tables, which the server writes without a detour through
Python lists: a 64-token text has 16 × 2,080 attention weights in the toy model). They
call the same code as the command lines and the lessons: ``encode_prompt`` (so the same one-line errors),
``inference.trace`` (the forward pass that keeps every attention matrix and vector), ``next_token_probs`` (the
sampler's softmax) and ``complete`` (generation with the KV cache).

Numbers are rounded for the wire: attention weights and probabilities to ``WEIGHT_DECIMALS`` places, logits to
``LOGIT_DECIMALS`` (the page re-applies the temperature to them, so they keep more). Attention rows are sent
without their future part: row i holds the weights of query i on keys 0..i (the causal mask makes the rest 0).

Shapes: T tokens, C = n_embd, nh heads, V vocabulary.
"""
import math
import time
from collections.abc import Iterator
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F

from data.make_toy_corpus import KINDS
from data.toy_facts import LINE_START
from errors import UserError
from inference import (WORD_FRAME, Loaded, Trace, complete, encode_prompt, greedy_text, neighbours, pca_2d, trace,
                       word_vectors)
from model.sampling import entropy_bits, next_token_probs

WEIGHT_DECIMALS = 4
LOGIT_DECIMALS = 6


def rounded(values: torch.Tensor, decimals: int = WEIGHT_DECIMALS) -> np.ndarray:
    """The values with at most ``decimals`` places, in the model's float32: written as the shortest decimal that
    reads back as the same float32 ("0.1235", not "0.12349999696016312")."""
    return np.round(values.detach().float().cpu().numpy(), decimals)


def model_card(loaded: Loaded, checkpoint: str) -> dict:
    """What the checkpoint is: its config, size, tokenizer and how far it was trained."""
    cfg = loaded.cfg
    best_val = loaded.best_val if math.isfinite(loaded.best_val) else None
    return {"checkpoint": checkpoint, "step": loaded.step, "best_val_loss": best_val,
            "parameters": loaded.model.num_params(), "device": str(loaded.device),
            "tokenizer": {"kind": loaded.tokenizer.kind, "vocab_size": loaded.tokenizer.vocab_size},
            "model": {**asdict(cfg.model), "head_size": cfg.model.head_size},
            "data": {"path": cfg.data.path, "tokenizer": cfg.data.tokenizer},
            "train": {key: getattr(cfg.train, key) for key in ("max_iters", "batch_size", "lr", "min_lr",
                                                                 "warmup_iters", "dtype", "seed")},
            "sample": asdict(cfg.sample)}


def token_list(loaded: Loaded, ids: list[int]) -> list[dict]:
    return [{"id": i, "text": s} for i, s in zip(ids, loaded.tokenizer.token_strings(ids))]


def tokens_of(loaded: Loaded, ids: list[int]) -> dict:
    return {"tokens": token_list(loaded, ids), "count": len(ids), "context": loaded.cfg.model.block_size,
            "tokenizer": loaded.tokenizer.kind}


def tokens_view(loaded: Loaded, text: str) -> dict:
    """Text → tokens → ids, with how much of the context they fill."""
    return tokens_of(loaded, encode_prompt(loaded, text))


def attention_rows(t: Trace) -> list:
    """Every block's and head's weights from a trace: [layer][head][query i] = weights on keys 0..i."""
    stack = rounded(t.attention_stack())                                                # (n_layer, nh, T, T)
    return [[[head[i, : i + 1] for i in range(len(head))] for head in layer] for layer in stack]


def attention_of(loaded: Loaded, t: Trace) -> dict:
    cfg = loaded.cfg.model
    return {"tokens": t.tokens, "n_layer": cfg.n_layer, "n_head": cfg.n_head, "attention": attention_rows(t)}


def attention_view(loaded: Loaded, text: str) -> dict:
    """The weights of every head in every block for ``text``: where each token looks."""
    return attention_of(loaded, trace(loaded, text))


def compare_of(loaded: Loaded, ta: Trace, tb: Trace) -> dict:
    """Two sentences side by side ("He broke the glass." / "He broke the news."): both attention stacks, and at each
    position both have, the cosine of their last-layer vectors (after the final LayerNorm, what the LM head reads):

        cos(a, b) = a·b / (‖a‖ ‖b‖)        1 = same direction; a GPT only looks back: equal prefixes give 1
    """
    n = min(len(ta.tokens), len(tb.tokens))
    cosine = F.cosine_similarity(ta.final[:n], tb.final[:n], dim=-1)                    # (n,)
    same_prefix = next((i for i in range(n) if ta.ids[i] != tb.ids[i]), n)
    cfg = loaded.cfg.model
    return {"n_layer": cfg.n_layer, "n_head": cfg.n_head,
            "a": {"tokens": ta.tokens, "attention": attention_rows(ta)},
            "b": {"tokens": tb.tokens, "attention": attention_rows(tb)},
            "cosine": rounded(cosine), "first_difference": same_prefix}


def compare_view(loaded: Loaded, text_a: str, text_b: str) -> dict:
    return compare_of(loaded, trace(loaded, text_a), trace(loaded, text_b))


def next_token_of(loaded: Loaded, last: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None,
                  k: int) -> dict:
    """From the last position's logits (V,): the distribution at temperature τ (with top-k / top-p), its entropy,
    the k likeliest tokens, and all V logits, so that the page can re-apply another τ itself (the same formula,
    ``nextTokenProbs`` in app.js)."""
    last = last.float()
    probs = next_token_probs(last[None], temperature, top_k, top_p)[0]                  # (V,)
    # the k highest logits: softmax keeps their order at every τ > 0, so these are the k likeliest tokens at any τ
    top = last.topk(min(k, last.numel())).indices.tolist()
    return {"temperature": temperature, "top_k": top_k, "top_p": top_p, "entropy_bits": entropy_bits(probs),
            "logits": rounded(last, LOGIT_DECIMALS),
            "top": [{"id": i, "text": loaded.tokenizer.decode([i]), "logit": round(last[i].item(), LOGIT_DECIMALS),
                     "prob": round(probs[i].item(), WEIGHT_DECIMALS)} for i in top]}


@torch.no_grad()
def next_token_view(loaded: Loaded, text: str, temperature: float, top_k: int | None = None,
                    top_p: float | None = None, k: int = 10) -> dict:
    """The next-token distribution after ``text``, from the model's own forward pass."""
    ids = encode_prompt(loaded, text)
    logits, _ = loaded.model(torch.tensor([ids], device=loaded.device))                # (1, T, V)
    return {"tokens": token_list(loaded, ids), **next_token_of(loaded, logits[0, -1], temperature, top_k, top_p, k)}


def page_view(loaded: Loaded, text: str, temperature: float, top_k: int | None = None, top_p: float | None = None,
              k: int = 10, compare_with: str | None = None) -> dict:
    """Everything one keystroke on the page shows, from one traced forward pass (two when comparing): the tokens,
    the attention of every head (or the comparison with ``compare_with``) and the next-token distribution."""
    t = trace(loaded, text)
    attention = (compare_of(loaded, t, trace(loaded, compare_with)) if compare_with is not None else
                 attention_of(loaded, t))
    return {"tokens": tokens_of(loaded, t.ids), "attention": attention,
            "next": next_token_of(loaded, t.logits[-1], temperature, top_k, top_p, k)}


def generation_events(loaded: Loaded, text: str, max_new_tokens: int, temperature: float, top_k: int | None,
                      top_p: float | None, seed: int, on_start=None, on_finish=None) -> Iterator[tuple[str, dict]]:
    """Generation as a stream of (event, data): one "token" per decoded piece of text, then "done".

    The prompt is checked now (a bad one raises here, before any stream exists); the model runs as the stream is
    read. Closing it early (the client went away, or pressed Stop) stops the model between two tokens.
    ``on_start()`` is called when the stream is first read, ``on_finish(pieces, complete)`` when it ends."""
    ids = encode_prompt(loaded, text)
    generator = torch.Generator(device=loaded.device).manual_seed(seed)
    return stream_pieces(complete(loaded, ids, max_new_tokens, temperature, top_k, top_p, generator),
                         max_new_tokens, on_start, on_finish)


def stream_pieces(pieces, max_new_tokens: int, on_start, on_finish) -> Iterator[tuple[str, dict]]:
    if on_start is not None:
        on_start()
    started, count, finished = time.perf_counter(), 0, False
    try:
        for _, piece in pieces:
            count += 1
            yield "token", {"text": piece}
        finished = True
        seconds = time.perf_counter() - started
        yield "done", {"tokens": max_new_tokens, "seconds": round(seconds, 4)}
    finally:
        pieces.close()
        if on_finish is not None:
            on_finish(count, finished)


def feedforward_view(loaded: Loaded, text: str, off: int | None = None, k: int = 5) -> dict:
    """What each block's feed-forward network adds to each token: ‖FFN(x)‖, and that size relative to the vector it
    is added to; and the next-token distribution with every FFN, and with block ``off``'s FFN left out
    (``inference.trace(drop_ffn=)``, as the feed-forward lesson does)."""
    n_layer = loaded.cfg.model.n_layer
    if off is not None and not 0 <= off < n_layer:
        raise UserError(f"off: this model has blocks 0..{n_layer - 1}, so there is no block {off}")
    t = trace(loaded, text)
    change = torch.stack([out.norm(dim=-1) for out in t.ffn_out])                      # (n_layer, T)
    stream = torch.stack([x.norm(dim=-1) for x in t.after_attention])                   # (n_layer, T)
    view = {"tokens": token_list(loaded, t.ids), "change": rounded(change), "relative": rounded(change / stream),
            "hidden_units": t.ffn_hidden[0].size(-1), "off": off,
            "with_all": top_tokens(loaded, t.logits[-1], k), "without": None}
    if off is not None:
        view["without"] = top_tokens(loaded, trace(loaded, text, drop_ffn=off).logits[-1], k)
    return view


def top_tokens(loaded: Loaded, last: torch.Tensor, k: int) -> list[dict]:
    """The k likeliest next tokens at τ = 1 from the last position's logits (V,)."""
    probs = last.float().softmax(-1)
    values, indices = probs.topk(min(k, probs.numel()))
    return [{"id": i, "text": loaded.tokenizer.decode([i]), "prob": round(p, WEIGHT_DECIMALS)}
            for i, p in zip(indices.tolist(), values.tolist())]


MAX_POINTS = 1000        # token ids drawn in the embedding map (a char or small BPE vocabulary fits whole)


def embeddings_view(loaded: Loaded, token: int | None = None, word_a: str = "dog", word_b: str = "cat",
                    k: int = 8) -> dict:
    """The token embedding table projected on its two directions of largest variance (PCA), the ``k`` nearest
    neighbours of ``token`` by cosine, and the cosine of two words' vectors by spelling and in context
    (``inference.word_vectors``: what the embed lesson compares)."""
    table = loaded.model.embed.token.weight.detach().float().cpu()                      # (V, C)
    if token is not None and not 0 <= token < len(table):
        raise UserError(f"token: ids run 0..{len(table) - 1}, got {token}")
    shown = min(len(table), MAX_POINTS)
    points, explained = pca_2d(table)                                                   # (V, 2)
    view = {"points": rounded(points[:shown], 3), "labels": [loaded.tokenizer.decode([i]) for i in range(shown)],
            "vocab_size": len(table), "explained": round(explained, 4), "token": token, "neighbours": None}
    if token is not None:
        view["neighbours"] = [{"id": i, "text": loaded.tokenizer.decode([i]), "cosine": round(c, WEIGHT_DECIMALS)}
                              for i, c in neighbours(table, token, k)]
    view["words_map"] = words_map(loaded)
    a, b = word_vectors(loaded, word_a), word_vectors(loaded, word_b)
    view["words"] = {"a": word_a, "b": word_b, "frame": WORD_FRAME,
                     "spelling": round(F.cosine_similarity(a[0], b[0], dim=0).item(), WEIGHT_DECIMALS),
                     "context": round(F.cosine_similarity(a[1], b[1], dim=0).item(), WEIGHT_DECIMALS)}
    return view


def words_map(loaded: Loaded) -> dict | None:
    """The toy corpus's animals, fruits and tools as contextual vectors (``inference.word_vectors``), projected on
    their two directions of largest variance: do words of one kind land together? None where the model's
    tokenizer cannot read them."""
    words = [(kind, word) for kind, table in KINDS.items() for word in table.values()]
    try:
        vectors = torch.stack([word_vectors(loaded, word)[1] for _, word in words])       # (n, C)
    except UserError:
        return None
    points, explained = pca_2d(vectors.float())
    return {"points": rounded(points, 3), "words": [w for _, w in words], "kinds": [k for k, _ in words],
            "explained": round(explained, 4)}


ORDER_PAIR = ("The dog chased the cat. Who chased? the", "The cat chased the dog. Who chased? the")


def positions_view(loaded: Loaded, pair: tuple[str, str] = ORDER_PAIR) -> dict:
    """The sinusoidal table PE (block_size, C), or None for a model without positions, and the model's greedy
    answers to two sentences with the same words in another order: with positions they can differ, without
    they cannot (the position lesson's experiment)."""
    position = loaded.model.embed.position
    answers = []
    for prompt in pair:
        try:
            answers.append(greedy_text(loaded, LINE_START + prompt, min_chars=6).split("\n")[0])
        except UserError as e:          # a char model trained on other text cannot read the sentence
            answers.append(f"(cannot ask: {e})")
    return {"positional": loaded.cfg.model.positional,
            "table": rounded(position.table, 3) if position is not None else None,
            "pair": [{"prompt": prompt, "answer": answer} for prompt, answer in zip(pair, answers)]}
