"""Lesson 3, position: attention alone cannot see word order; the positional encoding adds it.

"The dog chased the cat." and "The cat chased the dog." hold exactly the same tokens. Attention mixes tokens by
content, so without a sign of where each token stands, "Who chased? the" would have to get the same answer after
both. The transformer adds a fixed vector to each position's embedding (Vaswani et al., 2017, §3.5):

    PE(pos, 2i) = sin(pos / 10000^(2i/d))          PE(pos, 2i+1) = cos(pos / 10000^(2i/d))

Every position gets its own pattern of waves (fast ones in the first dimensions, slow ones in the last).
To see what it is worth, the same model is trained twice for the same short run on the toy corpus's word-order
lines, once with the encoding and once without (``model.positional=none``), and both are asked who chased whom.
"""
import random
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from data.make_toy_corpus import order_lines, toy_facts
from data.toy_eval import LINE_START, fact_known
from inference import Loaded, encode_prompt, load_for_inference
from lessons.common import Context, new_figure
from model.generation import generate
from model.positional import sinusoidal_table
from training.config import config_from_dict, config_to_dict, merge, parse_overrides
from training.trainer import train

ORDER = re.compile(r"The (\w+) (\w+) the (\w+)\. Who (\w+)\? the")
PAIR = ("The dog chased the cat. Who chased? the", "The cat chased the dog. Who chased? the")


def order_corpus(path: Path, seed: int) -> Path:
    """The toy corpus's word-order lines alone, shuffled: every step of a short run is spent on word order."""
    lines = order_lines()
    random.Random(seed).shuffle(lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def short_run(ctx: Context, positional: str, steps: int, folder: Path, corpus: Path) -> Loaded:
    """The checkpoint's model and training settings, with these overrides, trained from scratch."""
    t = ctx.loaded.cfg.train
    overrides = [f"model.positional={positional}", f"data.path={corpus}", f"data.cache_dir={folder / 'cache'}",
                 "data.val_fraction=0.05", f"train.out_dir={folder / positional}", f"train.max_iters={steps}",
                 f"train.warmup_iters={min(t.warmup_iters, steps // 10)}", f"train.eval_interval={steps}",
                 "train.eval_iters=2", "train.device=cpu", "train.compile=false"]
    cfg = config_from_dict(merge(config_to_dict(ctx.loaded.cfg), parse_overrides(overrides)), "short run")
    if train(cfg, overwrite=True, progress=False, log=lambda *_: None).interrupted:
        raise KeyboardInterrupt
    return load_for_inference(folder / positional / "last.pt")


def answers(loaded: Loaded, prompts, new_tokens: int = 8) -> dict[str, str]:
    """{prompt: greedy continuation up to the full stop} (the animal the model names). Prompts of the same length
    in tokens are generated together as one batch: hundreds of facts in a few calls of the model."""
    by_length = defaultdict(list)
    for prompt in prompts:
        by_length[len(encode_prompt(loaded, LINE_START + prompt))].append(prompt)
    found = {}
    for group in by_length.values():
        idx = torch.tensor([encode_prompt(loaded, LINE_START + p) for p in group], device=loaded.device)  # (B, T)
        new = torch.cat(list(generate(loaded.model, idx, new_tokens, temperature=0.0)), dim=1)          # (B, new)
        for prompt, ids in zip(group, new.tolist()):
            found[prompt] = loaded.tokenizer.decode(ids).split(".")[0]
    return found


def swapped(prompt: str) -> str:
    """"The dog chased the cat. Who chased? the" → "The cat chased the dog. Who chased? the"."""
    a, verb, b, asked = ORDER.fullmatch(prompt).groups()
    return f"The {b} {verb} the {a}. Who {asked}? the"


def order_test(loaded: Loaded, facts) -> dict:
    """Accuracy on the order facts, how often a sentence and its swapped twin get the same answer, and the
    answers to the two sentences of ``PAIR``."""
    said = answers(loaded, [*PAIR, *(prompt for _, prompt, _ in facts)])
    correct = sum(fact_known(said[prompt], expected) for _, prompt, expected in facts)
    twins = [(p, swapped(p)) for _, p, _ in facts if swapped(p) in said]
    same = sum(said[p] == said[q] for p, q in twins)
    return {"accuracy": correct / len(facts), "same_answer_share": same / max(1, len(twins)),
            "pair": [said[p] for p in PAIR]}


def run(ctx: Context, steps: int = 600, facts=None) -> dict:
    cfg, position = ctx.loaded.cfg.model, ctx.loaded.model.embed.position
    table = (position.table if position is not None else sinusoidal_table(cfg.block_size, cfg.n_embd)).cpu()  # (T, C)
    far = len(table) // 2
    near_cos, far_cos = (torch.cosine_similarity(table[0], table[i], dim=0).item() for i in (1, far))
    ctx.say(f"The PE table: {table.shape[0]} positions × {table.shape[1]} dimensions, values in [-1, 1]. Nearby "
            f"positions get similar rows: cosine of positions 0 and 1 {near_cos:.2f}, of 0 and {far} {far_cos:.2f}.")

    facts = facts or [f for f in toy_facts() if f[0] == "order"]
    results = {f"this checkpoint ({cfg.positional})": order_test(ctx.loaded, facts)}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = order_corpus(Path(tmp) / "order.txt", ctx.loaded.cfg.train.seed)
        for positional, name in (("sinusoidal", "with positions"), ("none", "without positions")):
            started = time.perf_counter()
            model = short_run(ctx, positional, steps, Path(tmp), corpus)
            ctx.say(f"trained {name} ({positional}): {steps} steps in {time.perf_counter() - started:.0f} s")
            results[f"{steps} steps {name}"] = order_test(model, facts)

    ctx.say("\nWho chased? Greedy answers after a line start:")
    for i, prompt in enumerate(PAIR):
        ctx.say(f"  {prompt!r}")
        for name, r in results.items():
            ctx.say(f"      {name:<32} → {r['pair'][i]!r}")
    ctx.say(f"\nOver all {len(facts)} word-order facts of the toy corpus:")
    for name, r in results.items():
        ctx.say(f"  {name:<36} accuracy {r['accuracy']:6.1%}   "
                f"same answer for both orders {r['same_answer_share']:6.1%}")
    with_pe, without_pe = (results[f"{steps} steps {name}"]["accuracy"]
                           for name in ("with positions", "without positions"))
    ctx.say(f"\nSame model, same {steps} steps: {with_pe:.0%} right with positions, {without_pe:.0%} without. "
            "Picking one of the two animals at random would be right half the time.")
    ctx.say("Attention itself is a weighted average over a set of tokens, and both sentences hold the same set. Yet a "
            "whole GPT without positions is not completely order-blind: under the causal mask each token sees only "
            "the tokens before it (the vector at 'cat' in 'The dog chased the cat' can know that 'dog' came earlier), "
            "and later blocks can learn to use that. The positional encoding makes order visible from the first "
            "block on. A run this short stops close to the step where the model catches on to word order, and that "
            "step varies from seed to seed: expect both numbers to move from one machine or seed to another.")
    figure = ctx.save(draw(table, results), "3_position")
    return {"pe_table": table, "results": results, "figure": figure}


def draw(table: torch.Tensor, results: dict):
    fig = new_figure(16, 4.8)
    ax = fig.add_subplot(1, 3, 1)
    image = ax.imshow(table.numpy(), cmap="RdBu", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xlabel("dimension (even: sin, odd: cos)")
    ax.set_ylabel("position")
    ax.set_title("Sinusoidal positional encoding PE(pos, dim)")
    fig.colorbar(image, ax=ax)
    ax = fig.add_subplot(1, 3, 2)
    unit = table / table.norm(dim=1, keepdim=True)
    image = ax.imshow((unit @ unit.T).numpy(), cmap="viridis", vmax=1)
    ax.set_xlabel("position")
    ax.set_ylabel("position")
    ax.set_title("Cosine similarity of two positions' PE rows")
    fig.colorbar(image, ax=ax)
    ax = fig.add_subplot(1, 3, 3)
    names = list(results)
    rows = torch.arange(len(names), dtype=torch.float32)
    for offset, key, colour, label in ((-0.2, "accuracy", "tab:green", "answered right"),
                                       (0.2, "same_answer_share", "tab:grey", "same answer for both orders")):
        values = [r[key] for r in results.values()]
        ax.barh(rows + offset, values, height=0.38, color=colour, label=label)
        for y, v in zip(rows + offset, values):
            ax.text(v + 0.01, y, f"{v:.0%}", va="center", fontsize=9)
    ax.axvline(0.5, color="black", linestyle=":", linewidth=1)
    ax.set_yticks(rows, [n.replace(" (", "\n(").replace(" with", "\nwith") for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("share of the word-order facts")
    ax.set_title("Who chased? the …")
    ax.legend(loc="lower right", fontsize=8)
    return fig
