"""Load a checkpoint, look inside it and complete prompts: what ``generate.py``, the toy evaluation, the lessons and
the playground page share.

Shapes: T tokens, C = n_embd, nh heads, V vocabulary.
"""
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from core.checkpoint import model_from_checkpoint
from core.config import Config
from core.device import resolve_device
from core.fault_injection import kill_point
from core.hub import load_model_source
from data.tokenization import Tokenizer, stream_decoder
from data.toy_facts import LINE_START
from errors import UserError
from model.generation import generate
from model.gpt import GPT
from model.recorder import INSIDE, Recorder
from model.sampling import check_sampling_args


@dataclass
class Loaded:
    model: GPT
    tokenizer: Tokenizer
    cfg: Config
    device: torch.device
    step: int = 0                                # optimizer steps the weights were trained for
    best_val: float = float("nan")               # the run's best validation loss when it was saved


def load_for_inference(path: str | Path, device: str = "cpu") -> Loaded:
    """The model of ``path``: a checkpoint written by train.py, a folder holding a Hugging Face GPT-2 (or a model
    exported by export.py), or ``hf:<repo id>``, downloaded once (``core.hub``)."""
    ckpt = load_model_source(path)
    model, tokenizer, cfg = model_from_checkpoint(ckpt, path)
    device, _ = resolve_device(device)
    return Loaded(model.to(device).eval(), tokenizer, cfg, device, ckpt["iter"], ckpt["best_val"])


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


@torch.no_grad()
def next_logits(loaded: Loaded, ids: list[int]) -> torch.Tensor:
    """The model's logits (V,) for the token after ``ids``: one forward pass, its last position."""
    logits, _ = loaded.model(torch.tensor([ids], device=loaded.device), last_only=True)  # (1, 1, V)
    return logits[0, -1]


def top_tokens(tokenizer: Tokenizer, scores: torch.Tensor, k: int) -> list[tuple[int, str, float]]:
    """The k tokens with the highest ``scores`` (V,), highest first, as (id, text, score). The scores may be
    probabilities or logits: softmax keeps the logits' order, so the k highest logits are the k likeliest tokens
    at every temperature τ > 0."""
    values, indices = scores.topk(min(k, scores.numel()))
    return [(i, tokenizer.decode([i]), v) for i, v in zip(indices.tolist(), values.tolist())]


def complete(loaded: Loaded, prompt_ids: list[int], max_new_tokens: int, temperature: float,
             top_k: int | None = None, top_p: float | None = None, generator: torch.Generator | None = None,
             use_cache: bool = True, num_samples: int = 1):
    """Yields (sample index, text piece) as tokens are made, for ``num_samples`` samples drawn as one batch."""
    check_sampling_args(temperature, top_k, top_p)
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    idx = torch.tensor([prompt_ids] * num_samples, device=loaded.device)              # (S, T)
    decoders = [stream_decoder(loaded.tokenizer) for _ in range(num_samples)]
    # closed here when a caller stops early, not later by the garbage collector, which would swallow a Ctrl-C
    # arriving during the close ("Exception ignored in ...") and let the program go on
    with contextlib.closing(generate(loaded.model, idx, max_new_tokens, temperature, top_k, top_p, generator,
                                     use_cache)) as steps:
        for next_ids in steps:
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
    pieces = complete(loaded, encode_prompt(loaded, prompt), max_new_tokens, temperature=0.0)
    with contextlib.closing(pieces):            # closed on leaving, as in complete: a Ctrl-C is never swallowed
        for _, piece in pieces:
            text += piece
            if len(text) >= min_chars:
                break
    return text


@torch.no_grad()
def greedy_texts(loaded: Loaded, prompts: list[str], min_chars: list[int]) -> list[str]:
    """The greedy continuations of many prompts, each at least its ``min_chars`` characters long (or the most
    ``min_chars`` tokens give: a token holds at least one character for the word and char tokenizers).

    The same as ``greedy_text`` per prompt, a batch at a time: prompts of equal token length go through the model
    together (B, T), so a few hundred short questions cost a few dozen forward passes instead of thousands."""
    by_length: dict[int, list[int]] = {}
    encoded = [encode_prompt(loaded, p) for p in prompts]
    for i, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(i)
    texts = [""] * len(prompts)
    for indices in by_length.values():
        idx = torch.tensor([encoded[i] for i in indices], device=loaded.device)             # (B, T)
        steps = max(min_chars[i] for i in indices)
        new = [[] for _ in indices]
        with contextlib.closing(generate(loaded.model, idx, steps, temperature=0.0)) as tokens:
            for next_ids in tokens:                                                         # (B, 1)
                for row, token in zip(new, next_ids[:, 0].tolist()):
                    row.append(token)
                kill_point("greedy token")
        for i, row in zip(indices, new):
            texts[i] = loaded.tokenizer.decode(row)
    return texts


@dataclass
class Trace:
    """One forward pass, kept: every block's attention weights, feed-forward activations and residual stream."""
    ids: list[int]                              # the token ids read
    tokens: list[str]                           # each token as text (as typed, where it is read as unknown)
    inputs: torch.Tensor                        # (T, C) token embedding·√C + PE: what block 0 reads
    attention: list[torch.Tensor]               # per block (nh, T, T), each row sums to 1
    after_attention: list[torch.Tensor]         # per block (T, C): the stream the FFN reads
    ffn_hidden: list[torch.Tensor]              # per block (T, ffn_mult·C), after GELU
    ffn_out: list[torch.Tensor]                 # per block (T, C): what the FFN adds to the stream
    residual: list[torch.Tensor]                # per block (T, C): the stream after the block
    final: torch.Tensor                         # (T, C) the last LayerNorm's output, read by the LM head
    logits: torch.Tensor                        # (1, V) the last position's: the scores of the next token
    inside: dict[str, torch.Tensor] = field(default_factory=dict)   # one block's attention step by step, by name
    #   (model.recorder.INSIDE, without the batch: q, k, v (nh, T, hs), scores (nh, T, T), ...), or {} if none asked

    def attention_stack(self) -> torch.Tensor:
        return torch.stack(self.attention)                     # (n_layer, nh, T, T)


@torch.no_grad()
def trace(loaded: Loaded, text: str, drop_ffn: int | None = None, inside: int | None = None) -> Trace:
    """One pass of ``loaded.model`` on ``text``, with everything it computed on the way kept (``model.recorder``):
    the model's own forward, so the trace's logits are the model's (the last position's only: what the views and
    lessons read, and for a 50,257-token vocabulary a third less work than every position's). ``inside`` names a
    block whose attention is kept step by step too (``Trace.inside``).

    ``drop_ffn`` names a block whose feed-forward change is recorded but not added (a forward hook replaces what
    that FFN returns by zeros): what the model predicts without it shows what that FFN contributes."""
    model = loaded.model
    ids = encode_prompt(loaded, text)
    record = Recorder(inside=inside)
    with contextlib.ExitStack() as hooks:
        if drop_ffn is not None:
            handle = model.blocks[drop_ffn].ffn.register_forward_hook(lambda ffn, args, out: torch.zeros_like(out))
            hooks.callback(handle.remove)
        logits, _ = model(torch.tensor([ids], device=loaded.device), record=record, last_only=True)  # (1, 1, V)
    kept = {name: [t[0] for t in tensors] for name, tensors in record.kept.items()}     # a batch of one: drop B
    return Trace(ids, loaded.tokenizer.pieces(text, ids), kept["inputs"][0], kept["attention"],
                 kept["after_attention"], kept["ffn_hidden"], kept["ffn_out"], kept["residual"], kept["final"][0],
                 logits[0], {name: kept[name][0] for name in INSIDE if name in kept})


@torch.no_grad()
def continuation_prob(model: GPT, tokenizer: Tokenizer, prompt: str, continuation: str) -> float:
    """P(continuation | prompt) = Π_t P(token_t | prompt, tokens before t), read off one teacher-forced pass: the
    true tokens are fed in, and the probability the model gave each of them is multiplied."""
    prompt_ids, cont_ids = tokenizer.encode(prompt), tokenizer.encode(continuation)
    idx = torch.tensor([prompt_ids + cont_ids], device=model.lm_head.weight.device)      # (1, T)
    logits, _ = model(idx)                                                               # (1, T, V)
    log_probs = logits[0, len(prompt_ids) - 1 : -1].float().log_softmax(dim=-1)          # (n_cont, V)
    return log_probs.gather(1, torch.tensor(cont_ids, device=idx.device).unsqueeze(1)).sum().exp().item()


# a word in context: the final-layer vector at its last token in "The WORD", after a line start
WORD_FRAME = "The {}"


def word_tokens(tokenizer: Tokenizer, word: str) -> list[int]:
    """The ids ``word`` is read as inside ``WORD_FRAME`` (after ``LINE_START``), a token of spaces alone left out:
    "d" "o" "g" for a char model, the one token " dog" for a word-level model (or GPT-2's)."""
    head = tokenizer.encode(LINE_START + WORD_FRAME.format("").rstrip())
    whole = tokenizer.encode(LINE_START + WORD_FRAME.format(word))
    ids = whole[len(head) :] if whole[: len(head)] == head else tokenizer.encode(word)
    return [i for i in ids if not tokenizer.decode([i]).isspace()] or ids


@torch.no_grad()
def word_vectors(loaded: Loaded, word: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Two vectors (C,) for a word: from the embedding table, the mean of the rows of the tokens it is read as
    (``word_tokens``: its own row where it is one token); in context, the final-layer vector at its last token in
    ``WORD_FRAME`` (after ``LINE_START``, as the toy corpus's lines start)."""
    table = loaded.model.embed.token.weight                                             # (V, C)
    rows = table[word_tokens(loaded.tokenizer, word)].mean(0)
    context = trace(loaded, LINE_START + WORD_FRAME.format(word)).final[-1]
    return rows.detach().cpu(), context.cpu()


def neighbours(table: torch.Tensor, index: int, k: int) -> list[tuple[int, float]]:
    """The k rows most similar to row ``index`` by cosine (itself left out)."""
    sims = F.cosine_similarity(table[index].unsqueeze(0), table, dim=-1)               # (V,)
    sims[index] = -2.0
    values, indices = sims.topk(k)
    return list(zip(indices.tolist(), values.tolist()))


def pca_2d(table: torch.Tensor, fitted_on: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """The rows of ``table`` (n, C) projected on the two directions of largest variance of ``fitted_on`` (m, C)
    (default: the table itself; SVD of the centred rows), and the share of that variance those two directions
    hold."""
    basis = table if fitted_on is None else fitted_on
    mean = basis.mean(0)                                                                # (C,)
    _, s, vh = torch.linalg.svd(basis - mean, full_matrices=False)                      # vh (C, C)
    return (table - mean) @ vh[:2].T, ((s[:2] ** 2).sum() / (s ** 2).sum()).item()      # (n, 2)


MAP_TOKENS = 1000        # the token ids every embedding map draws: a char or word vocabulary fits whole


def embedding_map(table: torch.Tensor, extra: list[int] = ()) -> tuple[list[int], torch.Tensor, float]:
    """The embedding map of a table (V, C): which ids it draws, their 2-D points and the variance share the two
    directions hold. It draws the first ``MAP_TOKENS`` ids (the whole of a small vocabulary; in GPT-2's, numbered
    in merge order, the 256 bytes and the 744 earliest merges: the most frequent pieces of its training text) and
    the ``extra`` ids (a text's own tokens, a picked token's neighbours). The directions are those of the first
    ``MAP_TOKENS`` rows, so the map does not move when the extras change. A 50,257-row SVD would take seconds and
    50,257 labels cannot be read."""
    first = list(range(min(len(table), MAP_TOKENS)))
    ids = first + sorted({i for i in extra if i >= len(first)})
    points, explained = pca_2d(table[ids], fitted_on=table[: len(first)])             # (len(ids), 2)
    return ids, points, explained


# Where a head looks: the heads lesson prints these for every head, the playground captions its heatmaps with them.
def word_starts(tokens: list[str]) -> list[int]:
    """For each position, where its word starts: the last token that begins with whitespace (a word model's " dog")
    or follows a token that ends with it (a char model's "d" after " ")."""
    starts, current = [], 0
    for i, token in enumerate(tokens):
        if i > 0 and (token[:1].isspace() or tokens[i - 1][-1:].isspace()):
            current = i
        starts.append(current)
    return starts


def habits(w: torch.Tensor, tokens: list[str]) -> dict:
    """Where a head's queries (..., T, T) look on average, over every token but the first (which can only see
    itself): shares of attention on the previous token, itself, the line start and its word's first token, and
    the mean distance looked back, Σ_j w_ij (i − j). Each a number for one head (T, T), or a list (nested as the
    leading dimensions) for many at once, e.g. every head of every block (n_layer, nh, T, T)."""
    T = w.size(-1)
    rows = torch.arange(1, T)
    starts = torch.tensor(word_starts(tokens))[1:]
    back = (torch.arange(T).unsqueeze(1) - torch.arange(T)).clamp(min=0)               # (T, T) i − j
    shares = {"previous": w[..., rows, rows - 1], "itself": w[..., rows, rows], "line start": w[..., rows, 0],
              "word start": w[..., rows, starts], "mean distance": (w * back).sum(-1)[..., 1:]}   # (..., T − 1)
    return {name: share.mean(-1).tolist() for name, share in shares.items()}


PLACES = {"previous": "the previous token", "itself": "itself", "line start": "the line start",
          "word start": "its word's first token"}


def places(tokens: list[str]) -> dict[str, str]:
    """The places a head's habits are told by: "its word's first token" only where some word of the text is split
    into several tokens (a char model's letters); where every word is one token (a word model's) it would be the
    token itself."""
    split = any(start != i and any(c.isalnum() for c in token)
                for i, (start, token) in enumerate(zip(word_starts(tokens), tokens)))
    return PLACES if split else {k: v for k, v in PLACES.items() if k != "word start"}


def describe(h: dict, where: dict[str, str] = PLACES) -> str:
    """"mostly X" when one place of ``where`` takes half of the attention, else the two largest places."""
    first, second = sorted(where, key=h.get, reverse=True)[:2]
    if h[first] >= 0.5:
        return f"mostly {where[first]} ({h[first]:.0%}), mean distance {h['mean distance']:.1f} tokens"
    return (f"{where[first]} {h[first]:.0%}, {where[second]} {h[second]:.0%}, "
            f"mean distance {h['mean distance']:.1f} tokens")


def head_habits(t: Trace) -> list[list[dict]]:
    """``habits`` of every head of every block in one trace, [layer][head], measured all at once."""
    every = habits(t.attention_stack(), t.tokens)                   # {name: [layer][head]} from (n_layer, nh, T, T)
    return [[{name: values[layer][head] for name, values in every.items()} for head in range(len(heads))]
            for layer, heads in enumerate(t.attention)]
