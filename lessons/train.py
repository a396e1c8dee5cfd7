"""Lesson 7, train: a fresh model starts knowing nothing and learns the toy facts by next-token prediction.

Each step takes random windows of the corpus, measures how surprised the model is by every true next token
(cross-entropy) and moves every weight a little to be less surprised (AdamW):

    loss = −(1/N) Σ log p(true next token)          w ← w − lr · AdamW(∂loss/∂w)

The fresh model trains on the toy corpus's animal, fruit, tool and sum lines (the word-order and context lines
left out, so that the short run spends its steps on the two facts). Every few steps the lesson asks it two
questions. A word model reads " dog" as one token: its probability is one number of the model's next-token
distribution. A char model reads it as four tokens (" ", "d", "o", "g"): its probability is the product of the
four, each read with the true tokens before it fed in (teacher forcing); a bpe model may read it as one or two
tokens, and the same product applies. Training stops once both answers have probability ≥ 0.9.
"""
import math
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from data.make_toy_corpus import kind_lines, sum_lines
from data.toy_facts import LINE_START, PROBES
from inference import Loaded, continuation_prob, greedy_text
from lessons.common import Context, before_next_word, new_figure, show_token, write_shuffled
from training.loop import build, train_step
from training.schedule import lr_at

# where the playground page (python play.py) shows the same, printed under the lesson's title
PANEL = "9 Train (the same two questions, asked from step 0 on)"


def fact_corpus(path: Path, seed: int) -> Path:
    """The toy corpus's lines that teach the two answers, shuffled: what each animal, fruit and tool is, and the
    sums. Without the word-order and context lines, every step spends its tokens on these facts."""
    rng = random.Random(seed)
    return write_shuffled(path, kind_lines() + sum_lines(rng), rng)


@torch.no_grad()
def check(loaded: Loaded, questions) -> dict:
    """P(answer | question) for each question, the five likeliest tokens where the first answer's word is chosen
    (after 'is a' for a word model, after 'is a ' for a char model) and the greedy continuation of the first
    question."""
    loaded.model.eval()
    probs = {answer: continuation_prob(loaded.model, loaded.tokenizer, LINE_START + q, answer)
             for q, answer in questions}
    question, answer = questions[0]
    head = LINE_START + before_next_word(loaded.tokenizer, question, answer)             # up to the word itself
    logits, _ = loaded.model(torch.tensor([loaded.tokenizer.encode(head)], device=loaded.device))
    top = logits[0, -1].softmax(-1).topk(5)
    guesses = [(loaded.tokenizer.decode([i]), p) for i, p in zip(top.indices.tolist(), top.values.tolist())]
    greedy = greedy_text(loaded, LINE_START + question, min_chars=len(answer) + 1).split("\n")[0]
    loaded.model.train()
    return {"probs": probs, "guesses": guesses, "greedy": greedy}


def run(ctx: Context, max_steps: int = 1500, every: int = 50, target: float = 0.9, seed: int = 1337,
        questions=PROBES) -> dict:
    # the checkpoint's recipe, with the lr schedule spanning the step cap, on the fact lines, uncompiled
    t = replace(ctx.loaded.cfg.train, max_iters=max_steps, seed=seed, compile=False, grad_accum=1)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = fact_corpus(Path(tmp) / "facts.txt", seed)
        cfg = replace(ctx.loaded.cfg, data=replace(ctx.loaded.cfg.data, path=str(corpus), cache_dir=tmp), train=t)
        run = build(cfg, device=ctx.loaded.device, log=lambda *_: None)                 # splits are in memory
    model, splits = run.model, run.splits
    loaded = Loaded(model, run.tokenizer, cfg, run.device)
    ctx.say(f"A fresh model of the checkpoint's shape ({model.num_params():,} parameters), trained on "
            f"the toy corpus's fact and sum lines ({len(splits.train):,} tokens) with batches of "
            f"{t.batch_size} × {cfg.model.block_size} tokens, until P ≥ {target}.")
    ctx.say("Questions (after a line start): " + "; ".join(f"P({a!r} after {q!r})" for q, a in questions))
    ctx.say("The answers are read as " + "; ".join(
        f"{a!r}: " + " ".join(repr(show_token(t)) for t in run.tokenizer.token_strings(run.tokenizer.encode(a)))
        for _, a in questions) + "\n")
    chosen = "…" + before_next_word(run.tokenizer, *questions[0])[-5:]                  # where the word is chosen
    names = [f"P({a!r})" for _, a in questions]
    losses, history = [], []
    started = time.perf_counter()
    model.train()
    for step in range(max_steps + 1):
        if step % every == 0 or step == max_steps:
            seen = check(loaded, questions)
            history.append({"step": step, **seen["probs"]})
            ctx.say(f"step {step:>4}: " + ", ".join(f"{n} = {p:.3f}" for n, p in zip(names, seen["probs"].values()))
                    + f"   next token after {chosen!r}: "
                    + " ".join(f"{show_token(tok)} {p:.0%}" for tok, p in seen["guesses"])
                    + f"   greedy: {seen['greedy']!r}")
            if all(p >= target for p in seen["probs"].values()) or step == max_steps:
                break
        losses.append(train_step(run, lr_at(step, t)).item())     # the very step train.py takes
    seconds = time.perf_counter() - started
    reached = all(p >= target for p in seen["probs"].values())
    ctx.say(f"{'Reached' if reached else 'Did not reach'} P ≥ {target} for every answer after {step} steps "
            f"({seconds:.0f} s).")
    if losses:
        ctx.say(f"The loss went from {losses[0]:.2f} to {losses[-1]:.2f} nats per token (ln V = "
                f"{math.log(run.tokenizer.vocab_size):.2f} is a uniform guess over the {run.tokenizer.vocab_size} tokens).")
    figure = ctx.save(draw(losses, history, questions, target, run.tokenizer.vocab_size), "7_train")
    return {"steps": step, "seconds": seconds, "vocab_size": run.tokenizer.vocab_size, "reached": reached,
            "losses": losses, "history": history,
            "final": seen, "figure": figure}


def draw(losses: list[float], history: list[dict], questions, target: float, vocab_size: int):
    fig = new_figure(13, 4.5)
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(range(1, len(losses) + 1), losses, color="tab:blue", linewidth=1)
    ax.axhline(math.log(vocab_size), color="black", linestyle=":", linewidth=1,
               label=f"ln {vocab_size}: a uniform guess")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy, nats)")
    ax.set_title("Loss of each training batch")
    ax = fig.add_subplot(1, 2, 2)
    steps = [h["step"] for h in history]
    for question, answer in questions:
        ax.plot(steps, [h[answer] for h in history], marker="o", markersize=3,
                label=f"P({answer!r} after {question!r})")
    ax.axhline(target, color="black", linestyle=":", linewidth=1, label=f"target {target}")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("probability (teacher-forced)")
    ax.set_title("Probability of the right answer")
    ax.legend(loc="upper left", fontsize=8)
    return fig
