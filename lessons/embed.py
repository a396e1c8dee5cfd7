"""Lesson 2, embed: every token id picks one row of a learned table, a vector of n_embd numbers.

Training moves the rows so that tokens used alike end up pointing in similar directions; cosine similarity,
cos(a, b) = a·b / (‖a‖ ‖b‖), measures that (1: same direction, 0: unrelated). The toy model reads characters,
so its table holds letters, digits and punctuation, and a word such as "dog" has no row of its own: its
meaning has to be built by the layers above from the characters and their context. (A bpe model has rows for
frequent pieces of words too, so a common word may be one token.)

Two ways to give a word a vector are compared here:
  - spelling: the mean of its tokens' embedding rows (its letters, for a char model). It only knows which pieces
    the word is made of;
  - context: the model's final-layer vector at the word's last token, read in the same frame for every word
    ("The WORD" at the start of a line). That is the vector the model predicts the next token from, so two words
    get similar vectors when the model expects the same things after them ("you shall know a word by the company
    it keeps"). In the toy corpus an animal at the start of a line is always about to chase, bite, see or follow
    another animal; no fruit, tool or broken thing ever stands there.
"""
import itertools

import torch
import torch.nn.functional as F

from inference import WORD_FRAME, neighbours, pca_2d, word_vectors
from lessons.common import Context, new_figure, show_token

PROBES = ("a", "d", "7", "T", ".")
ANIMALS = ("dog", "cat", "frog", "horse", "bird")
OTHERS = ("glass", "news", "window", "banana", "knife")


def cosine_matrix(vectors: torch.Tensor) -> torch.Tensor:
    unit = F.normalize(vectors, dim=-1)                                                 # (n, C)
    return unit @ unit.T                                                                # (n, n)


def similarity(sims: torch.Tensor, words: list[str], a: str, b: str) -> float:
    return sims[words.index(a), words.index(b)].item()


def group_means(sims: torch.Tensor, words: list[str]) -> tuple[float, float]:
    """Mean cosine between two animals, and between an animal and another word."""
    a = [i for i, w in enumerate(words) if w in ANIMALS]
    o = [i for i, w in enumerate(words) if w not in ANIMALS]
    within = torch.stack([sims[i, j] for i, j in itertools.combinations(a, 2)]).mean().item()
    between = sims[a][:, o].mean().item()
    return within, between


@torch.no_grad()
def run(ctx: Context, k: int = 5) -> dict:
    tok = ctx.loaded.tokenizer
    table = ctx.loaded.model.embed.token.weight.detach().cpu()                          # (V, C)
    ctx.say(f"The embedding table: {table.shape[0]} tokens × {table.shape[1]} numbers.")
    ctx.say(f"Nearest neighbours by cosine similarity (top {k}):")
    near = {}
    for probe in PROBES:
        index = tok.encode(probe)[0]
        near[probe] = [(tok.decode([i]), s) for i, s in neighbours(table, index, k)]
        ctx.say(f"  {show_token(probe)!r:>5}: " + ", ".join(f"{show_token(t)!r} {s:.2f}" for t, s in near[probe]))
    projection, explained = pca_2d(table)
    ctx.say(f"The first two principal directions hold {explained:.0%} of the table's variance (plotted).")

    words = [*ANIMALS, *OTHERS]
    unit = "letter" if tok.kind == "char" else "token"
    definitions = {
        "spelling": (f"the mean of its {unit}s' embedding rows",
                     torch.stack([word_vectors(ctx.loaded, w)[0] for w in words])),                      # (n, C)
        "context": (f"the final-layer vector at the last {unit} of {WORD_FRAME.format('WORD')!r} after a line start",
                    torch.stack([word_vectors(ctx.loaded, w)[1] for w in words])),
    }
    cos = {}
    for name, (how, vectors) in definitions.items():
        sims = cosine_matrix(vectors)
        pair = {(a, b): similarity(sims, words, a, b) for a, b in (("dog", "cat"), ("dog", "glass"))}
        within, between = group_means(sims, words)
        cos[name] = {"matrix": sims, "dog_cat": pair["dog", "cat"], "dog_glass": pair["dog", "glass"],
                     "animal_animal": within, "animal_other": between}
        grouped = pair["dog", "cat"] > pair["dog", "glass"] and within > between
        ctx.say(f"\nA word's vector by {name}: {how}.")
        ctx.say(f"  cos(dog, cat) = {pair['dog', 'cat']:.2f}, cos(dog, glass) = {pair['dog', 'glass']:.2f}; two "
                f"animals {within:.2f} on average, an animal and another word {between:.2f}: the animals "
                f"{'are' if grouped else 'are not'} grouped together.")
    figure = ctx.save(draw(tok, projection, explained, words, cos["context"]["matrix"]), "2_embed")
    return {"neighbours": near, "projection": projection, "explained": explained, "words": words,
            "by_definition": cos, "figure": figure}


def draw(tok, projection: torch.Tensor, explained: float, words: list[str], sims: torch.Tensor):
    fig = new_figure(15, 6.5)
    ax = fig.add_subplot(1, 2, 1)
    for i, (x, y) in enumerate(projection.tolist()):
        token = tok.decode([i])
        colour = ("tab:blue" if token.islower() else "tab:red" if token.isupper() else
                  "tab:green" if token.isdigit() else "tab:grey")
        ax.text(x, y, show_token(token), color=colour, fontsize=11, ha="center", va="center", family="DejaVu Sans Mono",
                parse_math=False)
    pad = projection.abs().max().item() * 0.08
    ax.set_xlim(projection[:, 0].min().item() - pad, projection[:, 0].max().item() + pad)
    ax.set_ylim(projection[:, 1].min().item() - pad, projection[:, 1].max().item() + pad)
    ax.set_xlabel("principal direction 1")
    ax.set_ylabel("principal direction 2")
    ax.set_title(f"Token embeddings, 2-D PCA ({explained:.0%} of the variance)\n"
                 "blue: lower case, red: upper case, green: digits, grey: other")
    ax = fig.add_subplot(1, 2, 2)
    image = ax.imshow(sims.numpy(), cmap="viridis", vmin=min(0.0, sims.min().item()), vmax=1)
    ax.set_xticks(range(len(words)), words, rotation=45)
    ax.set_yticks(range(len(words)), words)
    for i, j in itertools.product(range(len(words)), repeat=2):
        ax.text(j, i, f"{sims[i, j]:.2f}", ha="center", va="center", fontsize=7,
                color="black" if sims[i, j] > 0.6 else "white")
    ax.set_title(f"Cosine similarity of word vectors in context\n(final layer, last letter of "
                 f"{WORD_FRAME.format('WORD')!r} at a line start)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig
