"""Lesson 6, feedforward: after attention has moved information between tokens, each token is processed on its own.

    FFN(x) = W₂ · GELU(W₁ x)          W₁: C → 4C (hidden units),  W₂: 4C → C

The FFN's output is added to the token's vector (the residual stream): its norm says how much the FFN changes
that token at that block. Each hidden unit fires for some pattern of its input; the few that fire hardest for a
token write most of the change. Leaving one block's FFN out and measuring the prediction again shows what it
contributes (most of a transformer's parameters, and much of what it "knows", live here).
"""
import torch

from data.toy_facts import LINE_START
from inference import trace
from lessons.common import Context, before_next_word, new_figure, show_token

# where the playground page (python play.py) shows the same, printed under the lesson's title
PANEL = "6 Feed-forward (its button leaves each FFN out in turn on this prompt)"

PROMPT = "This animal barks. This animal is a"
ANSWER = " dog"


def first_token_of(tokenizer, prompt: str, answer: str) -> str:
    """The token the model must predict next: the answer's first token as the tokenizer splits prompt + answer
    (" dog" for a word model, "d" for a char model after the prompt's space, maybe " dog" for a bpe one)."""
    head, whole = tokenizer.encode(LINE_START + prompt), tokenizer.encode(LINE_START + prompt + answer)
    if whole[: len(head)] == head and len(whole) > len(head):
        return tokenizer.decode(whole[len(head) : len(head) + 1])
    return answer[:1]


def run(ctx: Context, prompt: str = PROMPT, expected: str | None = None, top: int = 5) -> dict:
    prompt = before_next_word(ctx.loaded.tokenizer, prompt, ANSWER)      # a char model picks "d" after the space
    answer = ANSWER[len(prompt) - len(PROMPT):] if prompt.startswith(PROMPT) else ANSWER
    expected = expected or first_token_of(ctx.loaded.tokenizer, prompt, answer)
    t = trace(ctx.loaded, LINE_START + prompt)
    norms = torch.stack([change.norm(dim=-1) for change in t.ffn_out])                 # (n_layer, T)
    stream = torch.stack(t.after_attention).norm(dim=-1)                                # (n_layer, T) what FFNs read
    n_layer, T = norms.shape
    ctx.say(f"{prompt!r} after a line start: {T} tokens, {n_layer} blocks, each FFN with "
            f"{t.ffn_hidden[0].size(-1)} hidden units.")
    ctx.say("Size of the change each FFN adds to each token (‖FFN output‖), and relative to the vector it is added "
            "to:")
    for l in range(n_layer):
        biggest = norms[l].argmax().item()
        ctx.say(f"  block {l}: mean {norms[l].mean():.2f} ({(norms[l] / stream[l]).mean():.0%} of the token's vector),"
                f" largest at {show_token(t.tokens[biggest])!r} (position {biggest}) {norms[l, biggest]:.2f}")

    position = T - 1
    units = []
    ctx.say(f"\nThe hidden units that fire hardest at the last token {show_token(t.tokens[position])!r}, "
            f"where the model must predict {expected!r}:")
    for l, hidden in enumerate(t.ffn_hidden):
        values, indices = hidden[position].topk(top)
        units.append(list(zip(indices.tolist(), values.tolist())))
        ctx.say(f"  block {l}: " + ", ".join(f"unit {i} = {v:.2f}" for i, v in units[-1])
                + f"   ({(hidden[position] > 0).float().mean():.0%} of units positive)")

    expected_id = ctx.loaded.tokenizer.encode(expected)[0]
    p_full = t.logits[-1].softmax(-1)[expected_id].item()
    p_without = [trace(ctx.loaded, LINE_START + prompt, drop_ffn=l).logits[-1].softmax(-1)[expected_id].item()
                 for l in range(n_layer)]
    ctx.say(f"\nP({expected!r} next) with every FFN: {p_full:.1%}; leaving out one block's FFN: "
            + ", ".join(f"block {l} {p:.1%}" for l, p in enumerate(p_without)))
    figure = ctx.save(draw(prompt, t.tokens, norms, expected), "6_feedforward")
    return {"prompt": prompt, "expected": expected, "tokens": t.tokens, "norms": norms,
            "hidden_shape": tuple(t.ffn_hidden[0].shape),
            "out_shape": tuple(t.ffn_out[0].shape), "top_units": units, "p_expected": p_full,
            "p_expected_without": p_without, "figure": figure}


def draw(prompt: str, tokens: list[str], norms: torch.Tensor, expected: str):
    n_layer, T = norms.shape
    labels = [show_token(tok) for tok in tokens]
    fig = new_figure(max(8, 0.12 * sum(max(3, len(label)) for label in labels) + 2), 1.8 * n_layer + 1)
    axes = fig.subplots(n_layer, 1, sharex=True, squeeze=False)[:, 0]
    for l, ax in enumerate(axes):
        ax.bar(range(T), norms[l].cpu().numpy(), color=["tab:orange"] * (T - 1) + ["tab:red"])
        ax.set_ylabel(f"block {l}\n‖FFN out‖")
    axes[-1].set_xticks(range(T), labels, family="DejaVu Sans Mono", parse_math=False)
    axes[-1].set_xlabel("token")
    fig.suptitle(f"How much each block's feed-forward network changes each token of\n{prompt!r}\n"
                 f"(red: the last token, where the model picks the next token, {show_token(expected)!r})")
    return fig
