"""Lesson 2, embed: every token id picks one row of a learned table, a vector of n_embd numbers.

Training moves the rows so that tokens used alike end up pointing in similar directions; cosine similarity,
cos(a, b) = a·b / (‖a‖ ‖b‖), measures that (1: same direction, 0: unrelated). What the table holds depends on the
tokenizer: a word-level model has one row per word (" dog" and " cat" each have their own, learned from every line
they stand in), a char model only letters, digits and marks (a word such as "dog" has no row: its meaning has to
be built by the layers above from the letters and their context); a bpe model has rows for frequent pieces of
words, so a common word may be one token.

Two ways to give a word a vector are compared here:
  - table: the embedding rows of the tokens the word is read as, averaged (for a word model, the word's own row;
    for a char model, the mean of its letters' rows, which only knows which letters the word is made of);
  - context: the model's final-layer vector at the word's last token, read in the same frame for every word
    ("The WORD" at the start of a line). That is the vector the model predicts the next token from, so two words
    get similar vectors when the model expects the same things after them ("you shall know a word by the company
    it keeps"). In the toy corpus an animal at the start of a line is always about to chase, bite, see or follow
    another animal; no fruit, tool or broken thing ever stands there.
"""
import itertools

import torch
import torch.nn.functional as F

from data.make_toy_corpus import KINDS
from inference import WORD_FRAME, embedding_map, neighbours, word_tokens, word_vectors
from lessons.common import Context, new_figure, show_token

# where the playground page (python play.py) shows the same, printed under the lesson's title
PANEL = "2 Embeddings (the map, the nearest neighbours, the words in context)"

# what the nearest-neighbour probes are: words where the vocabulary has them as tokens, else single characters
PROBE_WORDS = (" dog", " banana", " knife", " chased", "7")
PROBE_CHARACTERS = ("a", "d", "7", "T", ".")
ANIMALS = ("dog", "cat", "frog", "horse", "bird")
OTHERS = ("glass", "news", "window", "banana", "knife")
PAIRS = (("dog", "cat"), ("dog", "banana"))          # two animals; an animal and a fruit
KIND_OF = {word: kind for kind, table in KINDS.items() for word in table.values()}
KIND_COLOURS = {"animal": "tab:blue", "fruit": "tab:orange", "tool": "tab:purple"}


def one_token(tokenizer, text: str) -> bool:
    """``text`` is one token of the vocabulary (not read as an unknown word)."""
    ids = tokenizer.encode(text)
    return len(ids) == 1 and tokenizer.decode(ids) == text


def probes(tokenizer) -> list[str]:
    """The probe words that are one token of this vocabulary (a word model's, GPT-2's); single characters where
    fewer than three are (a char model's)."""
    words = [p for p in PROBE_WORDS if one_token(tokenizer, p)]
    return words if len(words) >= 3 else [p for p in PROBE_CHARACTERS if one_token(tokenizer, p)]


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


def read_as(tokenizer, word: str) -> str:
    """How the tokenizer reads a word: "' dog'" (one token) or "'d' 'o' 'g'"."""
    return " ".join(repr(show_token(tokenizer.decode([i]))) for i in word_tokens(tokenizer, word))


@torch.no_grad()
def run(ctx: Context, k: int = 5) -> dict:
    tok = ctx.loaded.tokenizer
    table = ctx.loaded.model.embed.token.weight.detach().float().cpu()                  # (V, C)
    ctx.say(f"The embedding table: {table.shape[0]} tokens × {table.shape[1]} numbers ({tok.kind} tokens).")
    ctx.say(f"Nearest neighbours by cosine similarity (top {k}):")
    near = {}
    for probe in probes(tok):
        index = tok.encode(probe)[0]
        near[probe] = [(tok.decode([i]), s) for i, s in neighbours(table, index, k)]
        ctx.say(f"  {show_token(probe)!r:>10}: " + ", ".join(f"{show_token(t)!r} {s:.2f}" for t, s in near[probe]))
    drawn, projection, explained = embedding_map(table)
    ctx.say(f"The first two principal directions hold {explained:.0%} of the table's variance (plotted)."
            if len(drawn) == len(table) else
            f"The first two principal directions of the first {len(drawn):,} tokens' rows hold {explained:.0%} of "
            f"their variance (plotted: {len(drawn):,} labels are as many as a figure can show).")

    words = [*ANIMALS, *OTHERS]
    whole = all(len(word_tokens(tok, w)) == 1 for w in words)
    ctx.say(f"\nThe words are read as {read_as(tok, 'dog')}, {read_as(tok, 'banana')}, …"
            + (": each is one token, with a row of its own." if whole else
               ": several tokens, so no word has a row of its own."))
    definitions = {
        "table": ("its own row of the embedding table" if whole else "the mean of its tokens' embedding rows",
                  torch.stack([word_vectors(ctx.loaded, w)[0] for w in words])),                          # (n, C)
        "context": (f"the final-layer vector at its last token in {WORD_FRAME.format('WORD')!r} after a line start",
                    torch.stack([word_vectors(ctx.loaded, w)[1] for w in words])),
    }
    cos = {}
    for name, (how, vectors) in definitions.items():
        sims = cosine_matrix(vectors.float())
        pair = {p: similarity(sims, words, *p) for p in PAIRS}
        within, between = group_means(sims, words)
        cos[name] = {"matrix": sims, "dog_cat": pair["dog", "cat"], "dog_banana": pair["dog", "banana"],
                     "animal_animal": within, "animal_other": between}
        grouped = pair["dog", "cat"] > pair["dog", "banana"] and within > between
        ctx.say(f"A word's vector by {name}: {how}.")
        ctx.say(f"  cos(dog, cat) = {pair['dog', 'cat']:.2f}, cos(dog, banana) = {pair['dog', 'banana']:.2f}; two "
                f"animals {within:.2f} on average, an animal and another word {between:.2f}: the animals "
                f"{'are' if grouped else 'are not'} grouped together.")
    figure = ctx.save(draw(tok, drawn, projection, explained, words, cos, whole), "2_embed")
    return {"neighbours": near, "drawn": drawn, "projection": projection, "explained": explained, "words": words,
            "one_token_each": whole, "by_definition": cos, "figure": figure}


def colours(tokens: list[str]) -> tuple[list[str], str]:
    """A colour per token and what the colours mean: the toy corpus's animals, fruits and tools where the
    vocabulary has them as tokens (a word model), else the characters' case."""
    kinds = [KIND_OF.get(t.strip(), "") for t in tokens]
    if any(kinds):
        legend = ", ".join(f"{c.removeprefix('tab:')}: {k}s" for k, c in KIND_COLOURS.items())
        return ([KIND_COLOURS[k] if k else "tab:green" if t.strip().isdigit() else "tab:grey"
                 for t, k in zip(tokens, kinds)], f"{legend}, green: digits, grey: other")
    return (["tab:blue" if t.islower() else "tab:red" if t.isupper() else "tab:green" if t.isdigit() else "tab:grey"
             for t in tokens], "blue: lower case, red: upper case, green: digits, grey: other")


def draw(tok, drawn: list[int], projection: torch.Tensor, explained: float, words: list[str], cos: dict,
         whole: bool):
    fig = new_figure(21, 6.5)
    ax = fig.add_subplot(1, 3, 1)
    tokens = [tok.decode([i]) for i in drawn]
    colour, legend = colours(tokens)
    for (x, y), token, c in zip(projection.tolist(), tokens, colour):
        ax.text(x, y, show_token(token), color=c, fontsize=9 if whole else 11, ha="center", va="center",
                family="DejaVu Sans Mono", parse_math=False)
    pad = projection.abs().max().item() * 0.08
    ax.set_xlim(projection[:, 0].min().item() - pad, projection[:, 0].max().item() + pad)
    ax.set_ylim(projection[:, 1].min().item() - pad, projection[:, 1].max().item() + pad)
    ax.set_xlabel("principal direction 1")
    ax.set_ylabel("principal direction 2")
    which = "" if len(drawn) == tok.vocab_size else f"the first {len(drawn):,} of {tok.vocab_size:,} tokens, "
    ax.set_title(f"Token embeddings, 2-D PCA ({which}{explained:.0%} of the variance)\n{legend}")
    titles = {"table": "each word's own row of the embedding table" if whole else
                       "each word as the mean of its tokens' embedding rows",
              "context": f"final layer, last token of {WORD_FRAME.format('WORD')!r} at a line start"}
    for column, (name, title) in enumerate(titles.items(), start=2):
        ax = fig.add_subplot(1, 3, column)
        sims = cos[name]["matrix"]
        image = ax.imshow(sims.numpy(), cmap="viridis", vmin=min(0.0, sims.min().item()), vmax=1)
        ax.set_xticks(range(len(words)), words, rotation=45)
        ax.set_yticks(range(len(words)), words)
        for i, j in itertools.product(range(len(words)), repeat=2):
            ax.text(j, i, f"{sims[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if sims[i, j] > 0.6 else "white")
        ax.set_title(f"Cosine similarity of word vectors by {name}\n({title})")
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig
