"""Lesson 5, heads: several attention heads per block, each free to look for something different.

Each head has its own query, key and value maps, so one head can follow the previous token (the word before, or
for a char model the letters of the current word), another the start of the line (a resting place when there is
nothing useful to look at), another the word that decides what comes next. Their outputs are placed side by side
and mixed by one projection.

How different two heads are is measured on their attention rows: the Jensen-Shannon divergence between where
head a and head b look from the same token, in bits (0 = they look at exactly the same places, 1 = no overlap),
averaged over the tokens.
"""
import itertools

import torch

from data.toy_facts import LINE_START
from inference import PLACES, describe, habits, head_habits, places, trace, word_starts  # noqa: F401 (the lesson's own)
from lessons.common import SENTENCES, Context, new_figure, show_token

# where the playground page (python play.py) shows the same, printed under the lesson's title
PANEL = "4 Attention (each head's heatmap captioned with its habit, measured as here)"


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = ½ (p + q), in bits, over the last dimension."""
    m = (p + q) / 2

    def kl(a, b):                                   # Σ a log₂(a / b), with 0 · log 0 = 0
        return torch.where(a > 0, a * (a / b).log2(), torch.zeros_like(a)).sum(-1)

    return (kl(p, m) + kl(q, m)) / 2


def mean_between(divergence: torch.Tensor) -> float:
    """Mean over the pairs of different heads (the off-diagonal entries); 0 for a single head."""
    n = divergence.size(0)
    return divergence[~torch.eye(n, dtype=torch.bool)].mean().item() if n > 1 else 0.0


def run(ctx: Context, sentence: str = SENTENCES[0]) -> dict:
    t = trace(ctx.loaded, LINE_START + sentence)
    maps = t.attention_stack()                                                          # (n_layer, nh, T, T)
    n_layer, n_head = maps.shape[:2]
    table = head_habits(t)                       # the playground's Attention panel captions its heads with these
    ctx.say(f"{sentence!r}: {n_layer} blocks × {n_head} heads. Where each head looks, averaged over the tokens:")
    where = places(t.tokens)
    for l, h in itertools.product(range(n_layer), range(n_head)):
        ctx.say(f"  layer {l} head {h}: {describe(table[l][h], where)}")

    flat = maps.flatten(0, 1)[:, 1:]                                                    # (n_layer·nh, T-1, T)
    n = flat.size(0)
    divergence = torch.zeros(n, n)
    for a, b in itertools.combinations(range(n), 2):
        divergence[a, b] = divergence[b, a] = js_divergence(flat[a], flat[b]).mean()
    mean_all = mean_between(divergence)
    mean_within = [mean_between(divergence[l * n_head : (l + 1) * n_head, l * n_head : (l + 1) * n_head])
                   for l in range(n_layer)]
    ctx.say(f"\nHow different the heads are (Jensen-Shannon divergence, bits, 0 = same, 1 = disjoint): "
            f"{mean_all:.2f} on average over all {n * (n - 1) // 2} pairs of heads; within each block: "
            + ", ".join(f"layer {l} {d:.2f}" for l, d in enumerate(mean_within)))
    figure = ctx.save(draw(sentence, t.tokens, maps, table, where), "5_heads")
    return {"maps": maps, "habits": table, "divergence": divergence, "mean_divergence": mean_all,
            "mean_divergence_within_layer": mean_within, "figure": figure}


def draw(sentence: str, tokens: list[str], maps: torch.Tensor, table, where: dict[str, str]):
    n_layer, n_head = maps.shape[:2]
    fig = new_figure(3.2 * n_head + 1, 3.2 * n_layer + 0.6)
    labels = [show_token(tok) for tok in tokens]
    for l, h in itertools.product(range(n_layer), range(n_head)):
        ax = fig.add_subplot(n_layer, n_head, l * n_head + h + 1)
        image = ax.imshow(maps[l, h].cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, family="DejaVu Sans Mono", parse_math=False, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, family="DejaVu Sans Mono", parse_math=False, fontsize=7)
        first = max(where, key=table[l][h].get)
        ax.set_title(f"layer {l} head {h}\n{table[l][h][first]:.0%} on {where[first]}", fontsize=9)
    fig.colorbar(image, ax=fig.axes, shrink=0.5, label="attention weight (rows: looking, columns: looked at)")
    fig.suptitle(f"Every head of every block on {sentence!r}", fontsize=13)
    return fig
