"""Lesson 1, tokenize: text becomes a list of integer ids before the model sees anything.

The same sentence is split by each kind of tokenizer, each learned right here from the model's corpus:
characters (one token per character: the char toy model's), words (a word with the space before it, each digit and
punctuation mark: the word toy model's), a byte-pair encoding (frequent character runs become one token), then
GPT-2's and GPT-4's published encodings when tiktoken has them cached. Fewer tokens mean a shorter sequence for the
same text; every one of them decodes back to the original.
"""
from matplotlib.patches import Rectangle

from data.corpus import read_corpus
from data.tokenization import CharTokenizer, WordTokenizer, train_tokenizer
from errors import UserError
from lessons.common import Context, new_figure, show_token

# where the playground page (python play.py) shows the same, printed under the lesson's title
PANEL = "1 Tokens (its \"What to notice\": a word the vocabulary never saw)"

SENTENCE = "The dog chased the cat. Who chased? the dog."
BPE_VOCAB_SIZE = 300
PUBLISHED = ("tiktoken:gpt2", "tiktoken:cl100k_base")


def tokenizers(ctx: Context) -> dict:
    """{name: tokenizer}: char, word and a small BPE from the checkpoint's corpus, this checkpoint's own where it is
    none of those, then any published encoding found."""
    text = read_corpus(ctx.loaded.cfg.data.path)
    found = {"char": CharTokenizer.train(text), "word": WordTokenizer.train(text),
             f"bpe ({BPE_VOCAB_SIZE} tokens, trained here)": train_tokenizer("bpe", text, BPE_VOCAB_SIZE)}
    if ctx.loaded.tokenizer.kind not in ("char", "word"):
        found[f"this checkpoint's ({ctx.loaded.tokenizer.kind})"] = ctx.loaded.tokenizer
    for spec in PUBLISHED:
        try:
            found[spec] = train_tokenizer(spec, text, BPE_VOCAB_SIZE)
        except UserError as e:
            ctx.say(f"{spec}: skipped ({e})")
    return found


def run(ctx: Context, sentence: str = SENTENCE) -> dict:
    ctx.say(f"The sentence: {sentence!r} ({len(sentence)} characters)\n")
    results = {}
    for name, tokenizer in tokenizers(ctx).items():
        ids = tokenizer.encode(sentence)
        tokens = tokenizer.token_strings(ids)
        decoded = tokenizer.decode(ids)
        results[name] = {"tokens": tokens, "ids": ids, "count": len(ids), "vocab_size": tokenizer.vocab_size,
                         "round_trip": decoded == sentence}
        ctx.say(f"{name}: {len(ids)} tokens from a vocabulary of {tokenizer.vocab_size}")
        ctx.say("  tokens: " + " | ".join(show_token(t) for t in tokens))
        ctx.say("  ids:    " + " ".join(map(str, ids)))
        ctx.say(f"  decode(ids) == sentence: {decoded == sentence}")
    char_count = results["char"]["count"]
    if ctx.loaded.tokenizer.kind in ("char", "word"):
        ctx.say(f"\nThis model reads {ctx.loaded.tokenizer.kind} tokens ({ctx.loaded.tokenizer.vocab_size} in its "
                "vocabulary): each token above is one row of its embedding table and one position of its context.")
    ctx.say("\nToken counts side by side (characters per token):")
    for name, r in results.items():
        ctx.say(f"  {name:<36} {r['count']:>3}  ({char_count / r['count']:.1f})")
    ctx.say("A larger vocabulary packs more text into each token: the model sees a shorter sequence, so its context"
            " holds more text, but each token's embedding must be learned from fewer examples.")
    figure = ctx.save(draw(sentence, results, ctx.loaded.tokenizer.kind), "1_tokenize")
    return {"sentence": sentence, "tokenizers": results, "figure": figure}


def draw(sentence: str, results: dict, kind: str):
    """Each tokenizer's tokens as coloured boxes, one row per tokenizer, box width proportional to its characters."""
    fig = new_figure(13, 1.0 + 0.75 * len(results))
    ax = fig.add_subplot()
    colours = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462")
    for row, (name, r) in enumerate(results.items()):
        y, x = len(results) - 1 - row, 0.0
        for i, token in enumerate(r["tokens"]):
            width = max(len(token), 1)
            ax.add_patch(Rectangle((x, y + 0.1), width, 0.8, facecolor=colours[i % len(colours)], edgecolor="grey"))
            ax.text(x + width / 2, y + 0.5, show_token(token), ha="center", va="center", family="DejaVu Sans Mono",
                    fontsize=9, parse_math=False)
            x += width
        mine = " (this model's)" if name == kind else ""
        ax.text(-1, y + 0.5, f"{name}{mine}\n{r['count']} tokens", ha="right", va="center", fontsize=10,
                weight="bold" if mine else "normal")
    ax.set_xlim(-1, len(sentence) + 1)
    ax.set_ylim(0, len(results))
    ax.axis("off")
    ax.set_title(f"One sentence, {len(results)} tokenizers: each box is one token (␣ = space)")
    return fig
