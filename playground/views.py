"""What the playground page shows, computed on the server by the learner's own model.

Each function takes the loaded checkpoint and the text typed into the page and returns data ready to be written as
JSON (plain values, and NumPy arrays for the large tables, which the server writes without a detour through
Python lists: a 64-token text has 16 × 2,080 attention weights in the toy model). They
call the same code as the command lines and the lessons: ``encode_prompt`` (so the same one-line errors),
``inference.trace`` (the forward pass that keeps every attention matrix and vector), ``next_token_probs`` (the
sampler's softmax) and ``complete`` (generation with the KV cache).

Numbers are rounded for the wire: attention weights and probabilities to ``WEIGHT_DECIMALS`` places, logits to
``LOGIT_DECIMALS`` (the page applies the temperature to them, so they keep more). Attention rows are sent
without their future part: row i holds the weights of query i on keys 0..i (the causal mask makes the rest 0).
Every token goes with its text as a learner reads it, ``shown`` (``data.tokenization.show_token``: ␣ for a space,
⏎ for a newline), the way the lessons label their figures.

Who computes what for one keystroke (``page_view``): the server runs the model once and sends the logits; the page
turns them into probabilities and their entropy itself (``static/sampling.js``, the formula of
``model.sampling.next_token_probs``, tested equal), so moving the temperature, top-k or top-p asks nothing of the
server. ``next_token_view`` (POST /api/next) computes them on the server, for scripts.

Shapes: T tokens, C = n_embd, nh heads, V vocabulary.
"""
import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.hub import is_model_folder
from data.make_toy_corpus import KINDS
from data.tokenization import show_token
from data.toy_facts import LINE_START
from errors import UserError
from inference import (WORD_FRAME, Loaded, Trace, complete, describe, embedding_map, encode_prompt, greedy_text,
                       head_habits, neighbours, next_logits, pca_2d, places, top_tokens, trace, word_tokens,
                       word_vectors)
from model.sampling import entropy_bits, next_token_probs

WEIGHT_DECIMALS = 4
LOGIT_DECIMALS = 6
LISTED = 10              # the likeliest next tokens one keystroke lists (the bars)


def rounded(values: torch.Tensor, decimals: int = WEIGHT_DECIMALS) -> np.ndarray:
    """The values with at most ``decimals`` places, in the model's float32: written as the shortest decimal that
    reads back as the same float32 ("0.1235", not "0.12349999696016312")."""
    return np.round(values.detach().float().cpu().numpy(), decimals)


def model_card(loaded: Loaded, checkpoint: str) -> dict:
    """What the checkpoint is: its config, size, tokenizer and how far it was trained."""
    cfg = loaded.cfg
    best_val = loaded.best_val if math.isfinite(loaded.best_val) else None
    shown = Path(checkpoint)          # names, not paths: the page never learns where the user's files are
    # weights read from a model folder or hf:... with no training recorded (GPT-2's): the data and train
    # sections are this project's defaults, not how they were trained
    imported = is_model_folder(checkpoint) and loaded.step == 0 and best_val is None
    return {"checkpoint": f"{shown.parent.name}/{shown.name}" if shown.parent.name else shown.name,
            "imported": imported, "step": loaded.step, "best_val_loss": best_val,
            "parameters": loaded.model.num_params(), "device": str(loaded.device),
            "tokenizer": {"kind": loaded.tokenizer.kind, "vocab_size": loaded.tokenizer.vocab_size},
            "model": {**asdict(cfg.model), "head_size": cfg.model.head_size},
            "data": {"path": Path(cfg.data.path).name, "tokenizer": cfg.data.tokenizer},
            "train": {key: getattr(cfg.train, key) for key in ("max_iters", "batch_size", "lr", "min_lr",
                                                                 "warmup_iters", "dtype", "seed")},
            "sample": asdict(cfg.sample)}


def token_entry(token: int, text: str, **numbers) -> dict:
    """One token as the page gets it: its id, its text, the text as shown (``show_token``) and any ``numbers``."""
    return {"id": token, "text": text, "shown": show_token(text), **numbers}


def token_list(loaded: Loaded, ids: list[int], pieces: list[str] | None = None) -> list[dict]:
    """Each token with its text: the token's own, or the typed ``pieces`` of the text; a piece the vocabulary
    lacks (read as ``<unk>``) is marked ``unknown``, so the page can show the word it did not know."""
    pieces = pieces if pieces is not None else loaded.tokenizer.token_strings(ids)
    unk = loaded.tokenizer.unk_id
    return [token_entry(i, s, **({"unknown": True} if i == unk else {})) for i, s in zip(ids, pieces)]


def tokens_of(loaded: Loaded, ids: list[int], pieces: list[str] | None = None) -> dict:
    return {"tokens": token_list(loaded, ids, pieces), "count": len(ids), "context": loaded.cfg.model.block_size,
            "tokenizer": loaded.tokenizer.kind}


def tokens_view(loaded: Loaded, text: str) -> dict:
    """Text → tokens → ids, with how much of the context they fill."""
    ids = encode_prompt(loaded, text)
    return tokens_of(loaded, ids, loaded.tokenizer.pieces(text, ids))


ATTENTION_WEIGHTS = 300_000   # the most attention weights one keystroke sends, every block's and head's (~2 MB)


def attention_tokens(loaded: Loaded, count: int) -> int:
    """How many of a text's first tokens the attention view covers: all of them while every head's rows,
    n_layer·nh·n(n+1)/2 weights, fit ``ATTENTION_WEIGHTS`` (a toy model's whole context, 96 tokens × 16 heads);
    GPT-2's 144 heads get the first 64 tokens. The first n rows are exact: a query sees no key after it."""
    cfg = loaded.cfg.model
    heads, n = cfg.n_layer * cfg.n_head, count
    while n > 1 and heads * n * (n + 1) // 2 > ATTENTION_WEIGHTS:
        n -= 1
    return n


def attention_rows(t: Trace, n: int | None = None) -> list:
    """Every block's and head's weights from a trace for its first n tokens (all without n): [layer][head][query i]
    = weights on keys 0..i."""
    n = len(t.tokens) if n is None else n
    stack = rounded(torch.stack([w[:, :n, :n] for w in t.attention]))                  # (n_layer, nh, n, n)
    return [[[head[i, : i + 1] for i in range(n)] for head in layer] for layer in stack]


def sentence_of(loaded: Loaded, t: Trace) -> dict:
    """One sentence's tokens and attention, its first ``attention_tokens`` tokens (``count``: all of them)."""
    n = attention_tokens(loaded, len(t.tokens))
    return {"tokens": t.tokens[:n], "shown": [show_token(s) for s in t.tokens[:n]], "count": len(t.tokens),
            "attention": attention_rows(t, n)}


def habits_of(t: Trace) -> list | None:
    """Each head's habit on this text, [layer][head]: where its tokens look on average (``inference.head_habits``,
    the numbers the heads lesson prints), in words (``describe``), with the place it looks at most and that share.
    None for a single token, which can only look at itself."""
    if len(t.ids) < 2:
        return None
    where = places(t.tokens)
    return [[{"habit": describe(h, where), "place": max(where, key=h.get), "share": round(max(h[p] for p in where), 4)}
             for h in layer] for layer in head_habits(t)]


def attention_of(loaded: Loaded, t: Trace) -> dict:
    cfg = loaded.cfg.model
    return {"n_layer": cfg.n_layer, "n_head": cfg.n_head, **sentence_of(loaded, t), "habits": habits_of(t)}


def attention_view(loaded: Loaded, text: str) -> dict:
    """The weights of every head in every block for ``text``: where each token looks."""
    return attention_of(loaded, trace(loaded, text))


CONTINUED = 40           # tokens of greedy continuation shown under each of two compared sentences, cut at the line end


def continuation(loaded: Loaded, text: str) -> str:
    """The greedy continuation of ``text`` to the end of its line (at most ``CONTINUED`` tokens): what the model
    writes next, as ``generate.py --temperature 0`` would, stopped at the first newline."""
    written = ""
    pieces = complete(loaded, encode_prompt(loaded, text), CONTINUED, temperature=0.0)
    with contextlib.closing(pieces):
        for _, piece in pieces:
            written += piece
            if "\n" in piece:
                break
    return written.split("\n")[0]


def compare_of(loaded: Loaded, ta: Trace, tb: Trace, text_a: str, text_b: str) -> dict:
    """Two sentences side by side ("He broke the glass." / "He broke the news."): both attention stacks, each one's
    greedy continuation (``continuation``: the attend lesson's " He swept up the pieces." / " Mom started to cry.")
    and at each position both have, the cosine of their last-layer vectors (after the final LayerNorm, what the LM
    head reads):

        cos(a, b) = a·b / (‖a‖ ‖b‖)        1 = same direction; a GPT only looks back: equal prefixes give 1
    """
    n = min(len(ta.tokens), len(tb.tokens))
    cosine = F.cosine_similarity(ta.final[:n], tb.final[:n], dim=-1)                    # (n,)
    same_prefix = next((i for i in range(n) if ta.ids[i] != tb.ids[i]), n)
    cfg = loaded.cfg.model
    return {"n_layer": cfg.n_layer, "n_head": cfg.n_head,
            "a": {**sentence_of(loaded, ta), "continuation": continuation(loaded, text_a)},
            "b": {**sentence_of(loaded, tb), "continuation": continuation(loaded, text_b)},
            "cosine": rounded(cosine), "first_difference": same_prefix, "habits": habits_of(ta)}


def compare_view(loaded: Loaded, text_a: str, text_b: str) -> dict:
    return compare_of(loaded, trace(loaded, text_a), trace(loaded, text_b), text_a, text_b)


def logits_of(loaded: Loaded, last: torch.Tensor, k: int) -> dict:
    """The last position's logits (V,), all of them, and the k tokens with the highest: softmax keeps their order,
    so they are the k likeliest tokens at any temperature the page applies."""
    last = last.float()
    return {"logits": rounded(last, LOGIT_DECIMALS),
            "top": [token_entry(i, s, logit=round(z, LOGIT_DECIMALS)) for i, s, z in
                    top_tokens(loaded.tokenizer, last, k)]}


def next_token_view(loaded: Loaded, text: str, temperature: float, top_k: int | None = None,
                    top_p: float | None = None, k: int = LISTED) -> dict:
    """The next-token distribution after ``text`` at temperature τ (with top-k / top-p), from the model's own
    forward pass: its entropy, the k likeliest tokens with their probabilities, and all V logits."""
    ids = encode_prompt(loaded, text)
    last = next_logits(loaded, ids)                                                     # (V,)
    view = logits_of(loaded, last, k)
    probs = next_token_probs(last[None].float(), temperature, top_k, top_p)[0]          # (V,)
    for entry in view["top"]:
        entry["prob"] = round(probs[entry["id"]].item(), WEIGHT_DECIMALS)
    return {"tokens": token_list(loaded, ids, loaded.tokenizer.pieces(text, ids)), "temperature": temperature,
            "top_k": top_k, "top_p": top_p, "entropy_bits": entropy_bits(probs), **view}


def page_view(loaded: Loaded, text: str, compare_with: str | None = None, ffn_off: int | None = None,
              head: tuple[int, int, int | None] | None = None) -> dict:
    """Everything one keystroke on the page shows, from one traced forward pass: the tokens, the attention of
    every head, the next token's logits (the page applies its temperature, top-k and top-p to them), the
    feed-forward view, and with ``head`` = (block, head, query) the inside of that head (``head_of``). Comparing
    with ``compare_with``, or leaving block ``ffn_off``'s FFN out, asks one more pass each, of the other sentence
    and of the text without that FFN."""
    check_block(loaded, ffn_off, "ffn_off")
    if head is not None:
        check_head(loaded, *head[:2])
    t = trace(loaded, text, inside=head[0] if head is not None else None)
    attention = (compare_of(loaded, t, trace(loaded, compare_with), text, compare_with) if compare_with is not None else
                 attention_of(loaded, t))
    without = trace(loaded, text, drop_ffn=ffn_off) if ffn_off is not None else None
    return {"tokens": tokens_of(loaded, t.ids, t.tokens), "attention": attention,
            "next": logits_of(loaded, t.logits[-1], LISTED),
            "feedforward": feedforward_of(loaded, t, ffn_off, without),
            "head": head_of(loaded, t, *head) if head is not None else None}


HEAD_DECIMALS = LOGIT_DECIMALS   # the inside of a head: every number to 6 places (they are sums of many terms)


def check_head(loaded: Loaded, block: int, head: int) -> None:
    check_block(loaded, block, "block")
    n_head = loaded.cfg.model.n_head
    if not 0 <= head < n_head:
        raise UserError(f"head: this model's blocks have heads 0..{n_head - 1}, so there is no head {head}")


def head_of(loaded: Loaded, t: Trace, block: int, head: int, query: int | None = None) -> dict:
    """Inside one head for one token, every stage read off the traced pass (``trace(inside=block)``: the model's
    own tensors, ``model.recorder.INSIDE``), never computed again here. For the token at ``query`` (None: the
    last one), with i = query, h = head and x_j the stream entering the block at token j:

        x_i, LN(x_i)                                     the vector entering the block, and after its LayerNorm
        q = LN(x_i) W_q (+ b_q); k_j, v_j likewise       for every visible token j ≤ i (j > i is masked)
        q·k_j, s_j = q·k_j / √hs, w = softmax(s)          the weights: row i of the Attention panel's heatmap
        o = Σ_j w_j v_j                                   the head's output (hs,)
        [o_0 … o_{nh-1}] W_o (+ b_o)                     every head's output side by side, projected: what is
                                                          added to the stream, x_i + it = the stream after attention

    Only this block, head and token are sent: a 12-block, 12-head model's inside would be 144 times as much."""
    T, inside = len(t.ids), t.inside
    i = T - 1 if query is None else query
    if not 0 <= i < T:
        raise UserError(f"query: the text has tokens 0..{T - 1}, so there is no token {i}")
    attn, hs = loaded.model.blocks[block].attn, loaded.cfg.model.head_size
    entering = t.inputs if block == 0 else t.residual[block - 1]                          # (T, C)
    row = slice(head * hs, (head + 1) * hs)                                              # this head's part of C

    def r(values: torch.Tensor) -> np.ndarray:
        return rounded(values, HEAD_DECIMALS)

    bias = None
    if attn.qkv.bias is not None:                  # GPT-2-shaped models: b_q, b_k, b_v of this head, and b_o
        b_q, b_k, b_v = attn.qkv.bias.split(attn.qkv.in_features)                        # (C,) each
        bias = {"q": r(b_q[row]), "k": r(b_k[row]), "v": r(b_v[row]), "o": r(attn.proj.bias)}
    return {"tokens": token_list(loaded, t.ids, t.tokens), "block": block, "head": head, "query": i,
            "n_layer": len(loaded.model.blocks), "n_head": attn.n_head, "head_size": hs,
            "x": r(entering[i]), "normed": r(inside["attention_input"][i]),
            "q": r(inside["q"][head, i]), "k": r(inside["k"][head, : i + 1]), "v": r(inside["v"][head, : i + 1]),
            "dots": r(inside["dots"][head, i, : i + 1]), "scores": r(inside["scores"][head, i, : i + 1]),
            "weights": r(t.attention[block][head, i, : i + 1]), "output": r(inside["heads"][head, i]),
            "concatenated": r(inside["heads"][:, i].reshape(-1)),                       # (nh·hs,) = (C,)
            "projected": r(inside["attention_out"][i]), "after": r(t.after_attention[block][i]), "bias": bias,
            "rotary": attn.rotary is not None}                # q and k turned by their positions (RoPE)


def head_view(loaded: Loaded, text: str, block: int, head: int, query: int | None = None) -> dict:
    """Inside head ``head`` of block ``block`` for the token at ``query`` of ``text``: what the page asks when a
    block, head or token is picked without the text changing."""
    check_head(loaded, block, head)
    return head_of(loaded, trace(loaded, text, inside=block), block, head, query)


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


FFN_LISTED = 5           # the likeliest next tokens the feed-forward view lists, with and without one FFN


def check_block(loaded: Loaded, off: int | None, field: str = "off") -> None:
    n_layer = loaded.cfg.model.n_layer
    if off is not None and not 0 <= off < n_layer:
        raise UserError(f"{field}: this model has blocks 0..{n_layer - 1}, so there is no block {off}")


def likeliest(loaded: Loaded, last: torch.Tensor, k: int = FFN_LISTED) -> list[dict]:
    """The k likeliest next tokens at τ = 1 from the last position's logits (V,), with their probabilities."""
    return [token_entry(i, s, prob=round(p, WEIGHT_DECIMALS))
            for i, s, p in top_tokens(loaded.tokenizer, last.float().softmax(-1), k)]


def feedforward_of(loaded: Loaded, t: Trace, off: int | None, without: Trace | None) -> dict:
    """What each block's feed-forward network adds to each token: ‖FFN(x)‖, and that size relative to the vector it
    is added to; and the next token with every FFN, and with block ``off``'s FFN left out (``without``, the trace
    of ``inference.trace(drop_ffn=off)``, as the feed-forward lesson does), with the probability it leaves to the
    token that was likeliest with every FFN (``top_without``: the lesson's P(" dog") without that block)."""
    change = torch.stack([out.norm(dim=-1) for out in t.ffn_out])                      # (n_layer, T)
    stream = torch.stack([x.norm(dim=-1) for x in t.after_attention])                   # (n_layer, T)
    top = t.logits[-1].argmax().item()                  # the likeliest next token with every FFN
    return {"tokens": token_list(loaded, t.ids, t.tokens), "change": rounded(change),
            "relative": rounded(change / stream),
            "hidden_units": t.ffn_hidden[0].size(-1), "off": off, "with_all": likeliest(loaded, t.logits[-1]),
            "without": likeliest(loaded, without.logits[-1]) if without is not None else None,
            "top_without": round(without.logits[-1].float().softmax(-1)[top].item(), WEIGHT_DECIMALS)
                           if without is not None else None}


def feedforward_view(loaded: Loaded, text: str, off: int | None = None) -> dict:
    """The feed-forward view of ``text`` alone: what the page asks when a block's FFN is switched off or on."""
    check_block(loaded, off)
    without = trace(loaded, text, drop_ffn=off) if off is not None else None
    return feedforward_of(loaded, trace(loaded, text), off, without)


def word_kinds(loaded: Loaded, labels: list[str]) -> list[str]:
    """For each token's text: "animal", "fruit" or "tool" where it is one of the toy corpus's words (a word-level
    vocabulary has them as tokens), else ""."""
    kind_of = {f" {word}": kind for kind, table in KINDS.items() for word in table.values()}
    return [kind_of.get(label, "") for label in labels] if loaded.tokenizer.kind == "word" else [""] * len(labels)


def embeddings_view(loaded: Loaded, token: int | None = None, word_a: str = "dog", word_b: str = "cat",
                    word_c: str = "banana", k: int = 8, text: str | None = None) -> dict:
    """The token embedding table projected on its two directions of largest variance (PCA), the ``k`` nearest
    neighbours of ``token`` by cosine, and the cosine of word_a's vector with word_b's and with word_c's, by
    spelling (for a word-level model: the word's own row of the table) and in context (``inference.word_vectors``:
    what the embed lesson compares).

    The map draws ``inference.embedding_map``'s tokens: the first 1,000 ids, and beyond them the tokens of
    ``text`` (marked ``typed``), ``token`` and its neighbours; ``ids`` lists them, point by point."""
    table = loaded.model.embed.token.weight.detach().float().cpu()                      # (V, C)
    if token is not None and not 0 <= token < len(table):
        raise UserError(f"token: ids run 0..{len(table) - 1}, got {token}")
    near = neighbours(table, token, k) if token is not None else []
    try:
        typed = encode_prompt(loaded, text) if text else []
    except UserError:           # a text this model cannot read (the tokens panel says why): the map without it
        typed = []
    ids, points, explained = embedding_map(table, typed + [i for i, _ in near] + ([token] if token is not None else []))
    labels = loaded.tokenizer.token_strings(ids)
    view = {"ids": ids, "points": rounded(points, 3), "labels": labels, "shown": [show_token(s) for s in labels],
            "kinds": word_kinds(loaded, labels), "typed": sorted(set(typed)), "vocab_size": len(table),
            "explained": round(explained, 4), "token": token, "neighbours": None}
    if token is not None:
        view["neighbours"] = [token_entry(i, loaded.tokenizer.decode([i]), cosine=round(c, WEIGHT_DECIMALS))
                              for i, c in near]
    view["words_map"] = words_map(loaded)
    words = {"a": word_a, "b": word_b, "c": word_c}
    ids = {key: word_tokens(loaded.tokenizer, word) for key, word in words.items()}      # " dog" in a word model
    spelled = {key: loaded.tokenizer.decode(token_ids) for key, token_ids in ids.items()}
    vectors = {key: word_vectors(loaded, word) for key, word in words.items()}

    def cosine(x: str, y: str, which: int) -> float:
        return round(F.cosine_similarity(vectors[x][which], vectors[y][which], dim=0).item(), WEIGHT_DECIMALS)

    view["words"] = {**words, "frame": WORD_FRAME, "tokenizer": loaded.tokenizer.kind,
                     "spelled": {key: show_token(text) for key, text in spelled.items()},
                     "ids": {key: token_ids[0] if len(token_ids) == 1 and token_ids[0] != loaded.tokenizer.unk_id
                             else None for key, token_ids in ids.items()},       # a word that is one known token
                     "unknown": [word for key, word in words.items() if loaded.tokenizer.unk_id in ids[key]],
                     "spelling": cosine("a", "b", 0), "context": cosine("a", "b", 1),
                     "spelling_c": cosine("a", "c", 0), "context_c": cosine("a", "c", 1)}
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
    kinds = [k for k, _ in words]
    cosines = F.cosine_similarity(vectors[:, None], vectors[None], dim=-1).fill_diagonal_(-2.0)    # (n, n)
    nearest = cosines.argmax(-1).tolist()                  # each word's nearest other word, in the full vectors
    same = sum(kinds[i] == kinds[j] for i, j in enumerate(nearest))
    chance = sum(kinds.count(k) - 1 for k in kinds) / (len(kinds) * (len(kinds) - 1))
    return {"points": rounded(points, 3), "words": [w for _, w in words], "kinds": kinds,
            "explained": round(explained, 4), "same_kind_nearest": same, "chance": round(chance, 4)}


ORDER_PAIR = ("The dog chased the cat. Who chased? the", "The cat chased the dog. Who chased? the")


POSITION_ROWS = 256      # the most rows of the position table the page gets (GPT-2's 1,024 × 768 would be 5 MB)


def position_rows(block_size: int) -> list[int]:
    """The positions whose rows the page draws: all of them up to ``POSITION_ROWS``, else every s-th, s the
    smallest step that fits (every 4th of GPT-2's 1,024)."""
    step = -(-block_size // POSITION_ROWS)                                              # ⌈block_size / 256⌉
    return list(range(0, block_size, step))


def positions_view(loaded: Loaded, pair: tuple[str, str] = ORDER_PAIR) -> dict:
    """The table of positions: the sinusoidal PE or the learned one (block_size, C), RoPE's cos(p·θ_i)
    (block_size, hs/2: the angles every head's q and k are turned by), None for a model without positions: at most
    ``POSITION_ROWS`` of its rows (``rows``: which positions) and its largest |value| (``scale``, the colour scale's
    end); and the model's greedy answers to two sentences with the same words in another order: with positions
    they can differ, without they cannot (the position lesson's experiment)."""
    position = loaded.model.embed.position
    rotary = loaded.model.blocks[0].attn.rotary if loaded.model.blocks else None
    table = position.table if position is not None else rotary.cos if rotary is not None else None
    answers = []
    for prompt in pair:
        try:
            answers.append(greedy_text(loaded, LINE_START + prompt, min_chars=6).split("\n")[0])
        except UserError as e:          # a char model trained on other text cannot read the sentence
            answers.append(f"(cannot ask: {e})")
    table = table.detach() if table is not None else None                               # (block_size, C or hs/2)
    rows = position_rows(len(table)) if table is not None else []
    return {"positional": loaded.cfg.model.positional, "block_size": loaded.cfg.model.block_size,
            "table": rounded(table[rows], 3) if table is not None else None, "rows": rows,
            "scale": round(table.abs().max().item(), 4) if table is not None else None,
            "pair": [{"prompt": prompt, "answer": answer, "shown": show_token(answer)}
                     for prompt, answer in zip(pair, answers)]}
