"""What every lesson shares: the checkpoint it looks at, where its figure goes, how a token is shown on an axis
(``data.tokenization.show_token``, which the playground page shows too).

The forward pass that keeps every intermediate result is ``inference.trace``: the playground page shows the same.
"""
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data.tokenization import Tokenizer, show_token
from data.toy_facts import LINE_START
from inference import Loaded, load_for_inference
from model.gpt import GPT
from training.toy import DEFAULT_TOY, toy_checkpoint

# one verb, two objects, two meanings: the example pair of the attention lessons
SENTENCES = ("He broke the glass.", "He broke the news.")


@dataclass
class Context:
    loaded: Loaded                               # the trained model, its tokenizer and config
    out_dir: Path                                # where the figures go
    say: Callable[[str], None] = print           # where the explanation goes

    def save(self, fig: Figure, name: str) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{name}.png"
        fig.savefig(path, dpi=120)
        self.say(f"figure: {path}")
        return path


def load_context(checkpoint: str | Path | None, out_dir: str | Path, say=print, toy: str = DEFAULT_TOY) -> Context:
    """The lessons' checkpoint: the given one, or the ``toy`` toy model's best.pt (word or char), trained first if it
    is not there yet."""
    return Context(load_for_inference(checkpoint or toy_checkpoint(toy, log=say)), Path(out_dir), say)


def before_next_word(tokenizer: Tokenizer, text: str, next_word: str = " He") -> str:
    """``text`` up to the token where the model chooses ``next_word`` (a word after a space), read after a line start.

    A tokenizer that reads a word with the space before it (" dog": a word model's, GPT-2's) chooses the word right
    after ``text``; one that reads the space as a token of its own (a char model's) has a space to write first, and
    chooses the word at the token after that space, so ``text`` gets the space."""
    head, whole = tokenizer.encode(LINE_START + text), tokenizer.encode(LINE_START + text + next_word)
    after = whole[len(head) : len(head) + 1] if whole[: len(head)] == head else []       # the token after text
    if after and tokenizer.decode(after).isspace():
        return text + next_word[: len(next_word) - len(next_word.lstrip())]
    return text


def write_shuffled(path: Path, lines: list[str], rng: random.Random) -> Path:
    """A small corpus for a lesson's short run: ``lines`` in a shuffled order, one per line."""
    rng.shuffle(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def new_figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg (PNG) renderer, with no pyplot window or global state behind it."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig
