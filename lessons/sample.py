"""Lesson 8, sample: the model gives a probability to every possible next token; sampling picks one.

    p_i = exp(z_i / τ) / Σ_j exp(z_j / τ)          z: the logits, τ: the temperature

τ = 0 always takes the likeliest token (greedy: accurate, and the same every time); τ = 1 samples from the
model's own distribution; τ > 1 flattens it, so unlikely tokens get picked ("creative", and soon wrong). The
spread of a distribution is its entropy, H = −Σ p log₂ p, in bits: 0 when one token is certain, log₂ k when
k tokens are equally likely.
"""
import math

import torch

from data.corpus import read_corpus
from data.toy_facts import LINE_START
from errors import UserError
from inference import complete, encode_prompt
from lessons.common import Context, before_next_word, new_figure, show_token
from model.sampling import entropy_bits, next_token_probs

# where the playground page (python play.py) shows the same, printed under the lesson's title
PANEL = "5 Next token (its \"He broke the\" button and temperature table) and 7 Generate"

PROMPT = "He broke the"                # then the object: " glass" for a word model, "g" after the space for a char one
TEMPERATURES = (0.0, 0.5, 1.0, 2.0)


def corpus_lines(ctx: Context) -> set[str] | None:
    """The training corpus's lines, to tell a sample the model learned by heart from a new one (None: not found)."""
    try:
        return set(read_corpus(ctx.loaded.cfg.data.path).splitlines())
    except UserError:
        return None


def run(ctx: Context, prompt: str = PROMPT, temperatures=TEMPERATURES, samples: int = 4, max_new_tokens: int = 40,
        seed: int = 1337, top: int = 10) -> dict:
    prompt = before_next_word(ctx.loaded.tokenizer, prompt, " glass")
    ids = encode_prompt(ctx.loaded, LINE_START + prompt)
    with torch.no_grad():
        logits, _ = ctx.loaded.model(torch.tensor([ids], device=ctx.loaded.device), last_only=True)
    known = corpus_lines(ctx)
    ctx.say(f"Prompt {prompt!r} after a line start. The next token's distribution at each temperature, then "
            f"{samples} samples (seed {seed}, up to the end of the line):")
    ranked = logits[0, -1].topk(min(top, logits.size(-1))).indices.tolist()           # the same order at every τ > 0
    results = {}
    for temperature in temperatures:
        probs = next_token_probs(logits[:, -1, :], temperature)[0]                     # (V,)
        candidates = [(ctx.loaded.tokenizer.decode([i]), probs[i].item()) for i in ranked]
        generator = torch.Generator(device=ctx.loaded.device).manual_seed(seed)
        texts = [""] * samples
        stream = complete(ctx.loaded, ids, max_new_tokens, temperature, generator=generator, num_samples=samples)
        for s, piece in stream:
            texts[s] += piece
        lines = [prompt + text.split("\n")[0] for text in texts]
        in_corpus = None if known is None else sum(line in known for line in lines) / samples
        results[temperature] = {"probs": probs, "top": candidates, "entropy_bits": entropy_bits(probs),
                                "samples": lines, "share_in_corpus": in_corpus}
        ctx.say(f"\nτ = {temperature}: entropy {entropy_bits(probs):.2f} bits; likeliest: "
                + ", ".join(f"{show_token(tok)!r} {p:.1%}" for tok, p in candidates[:6]))
        for line in lines:
            ctx.say(f"    {line!r}" + ("" if known is None else ("   (a corpus line)" if line in known else "")))
        if in_corpus is not None:
            ctx.say(f"  {in_corpus:.0%} of the samples are lines of the training corpus")
    ctx.say(f"\nThe entropy grows with τ, towards log₂ V = {math.log2(probs.numel()):.2f} bits (all {probs.numel()}"
            " tokens equally likely).")
    figure = ctx.save(draw(prompt, results), "8_sample")
    return {"prompt": prompt, "temperatures": results, "figure": figure}


def draw(prompt: str, results: dict):
    words = max(len(show_token(tok)) for r in results.values() for tok, _ in r["top"]) > 2    # labels turned
    fig = new_figure(4 * len(results), 4.8 if words else 4)
    axes = fig.subplots(1, len(results), sharey=True)
    for ax, (temperature, r) in zip(axes, results.items()):
        tokens, probs = zip(*r["top"])
        ax.bar(range(len(tokens)), probs, color="tab:blue")
        ax.set_xticks(range(len(tokens)), [show_token(tok) for tok in tokens], family="DejaVu Sans Mono",
                      parse_math=False, rotation=60 if words else 0, ha="right" if words else "center",
                      rotation_mode="anchor")
        ax.set_ylim(0, 1)
        ax.set_title(f"τ = {temperature}: entropy {r['entropy_bits']:.2f} bits")
        ax.set_xlabel(f"top {len(tokens)} next tokens")
    axes[0].set_ylabel("probability")
    fig.suptitle(f"Next token after {prompt!r} at four temperatures (␣ = space)")
    return fig
