"""Lesson 4, attend: one attention head, and how context changes a token's vector.

Each token's query is compared with the keys of the tokens before it (and its own); softmax turns the scores into
weights that sum to 1, and the token takes that weighted mix of their values:

    weights = softmax(Q Kᵀ / √d_k + causal mask)          output = weights · V

"He broke the glass." and "He broke the news." share every token up to the object. A GPT only looks backwards,
so the vectors at "broke" are identical in both: context can only reach a token from before it. The place where
the object matters is where the model must choose how the next sentence starts ("He swept up the pieces." vs
"Everyone went quiet."): for a word model (" He" is one token) that is the full stop; for a char model it is the
space after it (at the full stop itself there is nothing to choose yet: a space comes next either way).
"""
import torch
import torch.nn.functional as F

from data.toy_facts import LINE_START
from inference import greedy_text, trace
from lessons.common import SENTENCES, Context, before_next_word, new_figure, show_token
from model.attention import SelfAttention

# where the playground page (python play.py) shows the same, printed under the lesson's title
PANEL = "4 Attention (its \"He broke the glass.\" / \"…the news.\" button compares the two)"


def object_span(ctx: Context, sentence: str) -> range:
    """Token positions of the object: the word before the full stop, with its leading space."""
    stop = sentence.rindex(".")
    start = len(ctx.loaded.tokenizer.encode(LINE_START + sentence[: sentence.rindex(" ", 0, stop)]))
    return range(start, len(ctx.loaded.tokenizer.encode(LINE_START + sentence[:stop])))


def pick_head(traces, spans) -> tuple[int, int, float]:
    """(layer, head, share): the head whose last position gives the object the most weight, averaged over the
    sentences: the head that brings the object to where the next sentence is chosen."""
    shares = torch.stack([t.attention_stack()[:, :, -1, list(span)].sum(-1) for t, span in zip(traces, spans)])
    shares = shares.mean(0)                                                             # (n_layer, nh)
    layer, head = divmod(shares.argmax().item(), shares.size(1))
    return layer, head, shares[layer, head].item()


def cosine_at(traces, positions: tuple[int, int]) -> float:
    """Cosine of the two sentences' final-layer vectors at the given positions."""
    return F.cosine_similarity(traces[0].final[positions[0]], traces[1].final[positions[1]], dim=0).item()


def run(ctx: Context, sentences: tuple[str, str] = SENTENCES, layer: int | None = None,
        head: int | None = None) -> dict:
    tok = ctx.loaded.tokenizer
    sentences = tuple(before_next_word(tok, s) for s in sentences)      # up to where the next sentence is chosen
    traces = [trace(ctx.loaded, LINE_START + s) for s in sentences]
    spans = [object_span(ctx, s) for s in sentences]
    best_layer, best_head, share = pick_head(traces, spans)
    if layer is None or head is None:
        layer, head = best_layer, best_head
        n_heads = len(traces[0].attention) * traces[0].attention[0].size(0)
        ctx.say(f"Showing layer {layer} head {head}: of all {n_heads} heads, it gives the object the most weight from "
                f"the last token ({share:.0%} on average).")
    # that head on its own, every step written out (model.attention.SelfAttention), fed what the block feeds it
    block = ctx.loaded.model.blocks[layer]
    single = SelfAttention.from_head(block.attn, head).eval()
    with torch.no_grad():
        weights = [single(block.ln1(t.inputs if layer == 0 else t.residual[layer - 1])[None], return_weights=True)[1][0]
                   for t in traces]                                                     # each (T, T)
    gap = max((w - t.attention[layer][head]).abs().max().item() for w, t in zip(weights, traces))
    ctx.say(f"One head written out (SelfAttention: Q, K, V, softmax(Q Kᵀ / √{single.query.out_features} + mask)) "
            f"gives the model's own weights for it (largest difference {gap:.1e}).")
    for s, t, w, span in zip(sentences, traces, weights, spans):
        top = w[-1].topk(min(3, w.size(-1)))                                            # the last token's row
        where = ", ".join(f"{show_token(t.tokens[j])!r} {p:.0%}"
                          for p, j in zip(top.values.tolist(), top.indices.tolist()))
        ctx.say(f"  {s!r}: from the last token it looks at {where}; the object "
                f"{''.join(t.tokens[j] for j in span)!r} gets {w[-1, list(span)].sum().item():.0%} in all")

    broke = len(tok.encode(LINE_START + "He broke")) - 1                                # last token of "broke"
    stops = tuple(len(tok.encode(LINE_START + s.rstrip())) - 1 for s in sentences)      # the full stops
    cos = {"broke": cosine_at(traces, (broke, broke)), "full stop": cosine_at(traces, stops),
           "last": cosine_at(traces, (-1, -1))}
    stages = ["input"] + [f"block {i}" for i in range(len(traces[0].residual))]
    vectors = [[t.inputs[-1]] + [r[-1] for r in t.residual] for t in traces]
    cos_by_stage = dict(zip(stages, (F.cosine_similarity(a, b, dim=0).item() for a, b in zip(*vectors))))
    guesses = [tok.decode([t.logits[-1].argmax().item()]) for t in traces]
    follow_ups = [greedy_text(ctx.loaded, LINE_START + s, min_chars=30).split("\n")[0] for s in sentences]
    last = show_token(traces[0].tokens[-1])

    ctx.say("\nCosine similarity of the two sentences' final-layer vectors (1 = the same direction):")
    ctx.say(f"  at 'broke' (the object not seen yet)          {cos['broke']:.4f}   identical: a GPT only looks back")
    changed = "the object has changed the vector"
    if stops[0] == len(traces[0].tokens) - 1:
        ctx.say(f"  at the full stop (next sentence chosen)       {cos['last']:.4f}   {changed}")
    else:
        ctx.say(f"  at the full stop (a space comes next anyway)  {cos['full stop']:.4f}")
        ctx.say(f"  at the space after it (next sentence chosen)  {cos['last']:.4f}   {changed}")
    ctx.say(f"  at that last token {last!r}, after each stage: "
            + ", ".join(f"{k} {v:.3f}" for k, v in cos_by_stage.items()))
    for s, guess, follow in zip(sentences, guesses, follow_ups):
        ctx.say(f"  {s!r}: next token {guess!r}; the model continues {s + follow!r}")
    figure = ctx.save(draw(sentences, traces, weights, layer, head), "4_attend")
    return {"sentences": sentences, "layer": layer, "head": head, "weights": weights, "single_head_gap": gap,
            "cos_at_broke": cos["broke"],
            "cos_at_full_stop": cos["full stop"], "cos_final": cos["last"], "cos_by_stage": cos_by_stage,
            "next_tokens": guesses, "follow_ups": follow_ups, "figure": figure}


def draw(sentences, traces, weights, layer: int, head: int):
    fig = new_figure(12, 6)
    for i, (s, t, w) in enumerate(zip(sentences, traces, weights)):
        ax = fig.add_subplot(1, 2, i + 1)
        image = ax.imshow(w.cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
        labels = [show_token(tok) for tok in t.tokens]
        ax.set_xticks(range(len(labels)), labels, family="DejaVu Sans Mono", parse_math=False)
        ax.set_yticks(range(len(labels)), labels, family="DejaVu Sans Mono", parse_math=False)
        ax.set_xlabel("looked at (key)")
        ax.set_ylabel("looking (query)")
        ax.set_title(f"{s!r}\nlayer {layer}, head {head}")
    fig.colorbar(image, ax=fig.axes, shrink=0.6, label="attention weight (each row sums to 1)")
    fig.suptitle("One attention head: where each token looks (future masked)")
    return fig
