"""What every lesson shares: the checkpoint it looks at, where its figure goes, and one forward pass that keeps
every intermediate result (the model's own ``forward`` returns only the logits).

Shapes: T tokens, C = n_embd, nh heads, V vocabulary.
"""
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data.tokenization import Tokenizer
from inference import Loaded, encode_prompt, load_for_inference
from model.gpt import GPT
from training.config import load_config
from training.trainer import train

TOY_CONFIG = Path("configs/toy.yaml")


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


def load_context(checkpoint: str | Path | None, out_dir: str | Path, say=print) -> Context:
    """The lessons' checkpoint: the given one, or the toy model's best.pt, trained first if it is not there yet."""
    if checkpoint is None:
        cfg = load_config(TOY_CONFIG)
        checkpoint = Path(cfg.train.out_dir) / "best.pt"
        if not checkpoint.exists():
            say(f"{checkpoint} not found: training the toy model first ({TOY_CONFIG}, about 2 minutes on 2 CPU cores)")
            if train(cfg, overwrite=True, log=say).interrupted:
                raise KeyboardInterrupt
    return Context(load_for_inference(checkpoint), Path(out_dir), say)


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


def show_token(token: str) -> str:
    """A token as it can be read on an axis: the newline and spaces made visible."""
    return token.replace("\n", "⏎").replace(" ", "␣")


@dataclass
class Trace:
    """One forward pass, kept: every block's attention weights, feed-forward activations and residual stream."""
    tokens: list[str]                                          # each token as text
    inputs: torch.Tensor                                       # (T, C) token embedding·√C + PE: what block 0 reads
    attention: list[torch.Tensor] = field(default_factory=list)    # per block (nh, T, T), each row sums to 1
    after_attention: list[torch.Tensor] = field(default_factory=list)  # per block (T, C): the stream the FFN reads
    ffn_hidden: list[torch.Tensor] = field(default_factory=list)       # per block (T, ffn_mult·C), after GELU
    ffn_out: list[torch.Tensor] = field(default_factory=list)      # per block (T, C): what the FFN adds to the stream
    residual: list[torch.Tensor] = field(default_factory=list)     # per block (T, C): the stream after the block
    final: torch.Tensor | None = None                          # (T, C) the last LayerNorm's output, read by the LM head
    logits: torch.Tensor | None = None                         # (T, V)

    def attention_stack(self) -> torch.Tensor:
        return torch.stack(self.attention)                     # (n_layer, nh, T, T)


@torch.no_grad()
def trace(loaded: Loaded, text: str, drop_ffn: int | None = None) -> Trace:
    """``GPT.forward`` spelled out block by block (``Block.forward``'s two lines, with the FFN's own two lines
    opened up) so that nothing computed on the way is lost. Gives the same logits as ``loaded.model``.

    ``drop_ffn`` names a block whose feed-forward change is recorded but not added: what the model predicts
    without it shows what that FFN contributes."""
    model = loaded.model
    ids = encode_prompt(loaded, text)
    x = model.embed(torch.tensor([ids], device=loaded.device))                         # (1, T, C)
    t = Trace(loaded.tokenizer.token_strings(ids), x[0])
    for i, block in enumerate(model.blocks):
        attended, weights = block.attn(block.ln1(x), return_weights=True)               # (1, T, C), (1, nh, T, T)
        x = x + attended
        t.attention.append(weights[0])
        t.after_attention.append(x[0])
        hidden = block.ffn.act(block.ffn.up(block.ln2(x)))                              # (1, T, ffn_mult·C)
        change = block.ffn.down(hidden)                                                 # (1, T, C)
        if i != drop_ffn:
            x = x + change
        t.ffn_hidden.append(hidden[0])
        t.ffn_out.append(change[0])
        t.residual.append(x[0])
    t.final = model.norm(x)[0]                                                          # (T, C)
    t.logits = model.lm_head(t.final)                                                   # (T, V)
    return t


@torch.no_grad()
def continuation_prob(model: GPT, tokenizer: Tokenizer, prompt: str, continuation: str) -> float:
    """P(continuation | prompt) = Π_t P(token_t | prompt, tokens before t), read off one teacher-forced pass: the
    true tokens are fed in, and the probability the model gave each of them is multiplied."""
    prompt_ids, cont_ids = tokenizer.encode(prompt), tokenizer.encode(continuation)
    idx = torch.tensor([prompt_ids + cont_ids], device=model.lm_head.weight.device)      # (1, T)
    logits, _ = model(idx)                                                               # (1, T, V)
    log_probs = logits[0, len(prompt_ids) - 1 : -1].float().log_softmax(dim=-1)          # (n_cont, V)
    return log_probs.gather(1, torch.tensor(cont_ids, device=idx.device).unsqueeze(1)).sum().exp().item()
