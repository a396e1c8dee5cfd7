"""Lesson 3, position: attention alone cannot see word order; the positional encoding adds it.

"The dog chased the cat." and "The cat chased the dog." hold exactly the same tokens. Attention mixes tokens by
content: the last token's new vector is a weighted average over the vectors of all the tokens it sees, and an
average does not change when the tokens are shuffled. So without a sign of where each token stands, one attention
layer gives "Who chased? the" the same answer after both sentences (with words or with letters as tokens alike).
The transformer adds a fixed vector to each position's embedding (Vaswani et al., 2017, §3.5):

    PE(pos, 2i) = sin(pos / 10000^(2i/d))          PE(pos, 2i+1) = cos(pos / 10000^(2i/d))

Every position gets its own pattern of waves (fast ones in the first dimensions, slow ones in the last).
The lesson asks the checkpoint both questions of the toy corpus's word-order lines, "Who chased? the" (who did
it) and "Who was chased? the" (to whom). Then it trains, on those lines alone, with the same steps and seed, one
model per way of giving positions (``ENCODINGS``: the paper's sinusoidal table, GPT-2's learned table, Llama's RoPE,
none), as deep as the checkpoint, and one block without positions, and asks them the same. The guarantee above is
for the first question; the second comes after the first answer, which names one of the animals a second time, so
the two orders no longer hold the same tokens.

Last, each reads texts twice as long as its context. A model accepts at most block_size tokens (``GPT.forward``):
its tables and caches end there. Sinusoidal, RoPE and no positions are formulas (or nothing), so the same weights
can be rebuilt with a longer context (``longer_context``) and read positions they never trained on; a learned table
has no rows past block_size, so that model can only read the long text a window at a time.
"""
import dataclasses
import random
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

from core.config import config_from_dict, config_to_dict, merge, parse_overrides
from data.make_toy_corpus import order_lines
from data.toy_facts import LINE_START, fact_known, toy_facts
from inference import Loaded, encode_prompt, load_for_inference
from lessons.common import Context, new_figure, write_shuffled
from model.generation import generate
from model.gpt import GPT
from model.positional import sinusoidal_table
from training.trainer import train

# where the playground page (python play.py) shows the same, printed under the lesson's title
PANEL = "3 Positions (its button trains the same model without positions)"

ORDER = re.compile(r"The (\w+) \w+ the (\w+)\. ")
QUESTIONS = ("order: who did it", "order: to whom")        # the toy facts' categories, asked in this order
PAIR = ("The dog chased the cat. Who chased? the", "The cat chased the dog. Who chased? the")
ENCODINGS = ("sinusoidal", "learned", "rope", "none")     # model.positional, in the order the table shows them
LONG_TEXTS = 8                                             # texts of twice the context each model reads


def order_corpus(path: Path, seed: int) -> Path:
    """The toy corpus's word-order lines alone, shuffled: every step of a short run is spent on word order."""
    return write_shuffled(path, order_lines(), random.Random(seed))


def short_run(ctx: Context, n_layer: int, steps: int, folder: Path, corpus: Path,
              positional: str = "none") -> Loaded:
    """A model of the checkpoint's width with ``n_layer`` blocks and ``positional`` positions (none unless asked),
    trained from scratch on ``corpus`` with the checkpoint's training settings and seed."""
    t = ctx.loaded.cfg.train
    out = folder / f"{n_layer}_blocks_{positional}"
    overrides = [f"model.n_layer={n_layer}", f"model.positional={positional}", f"data.path={corpus}",
                 f"data.cache_dir={folder / 'cache'}", "data.val_fraction=0.05", f"train.out_dir={out}",
                 f"train.max_iters={steps}", f"train.warmup_iters={min(t.warmup_iters, steps // 10)}",
                 f"train.eval_interval={steps}", "train.eval_iters=10", "train.device=cpu", "train.compile=false"]
    cfg = config_from_dict(merge(config_to_dict(ctx.loaded.cfg), parse_overrides(overrides)), "short run")
    if train(cfg, overwrite=True, progress=False, log=lambda *_: None).interrupted:
        raise KeyboardInterrupt
    return load_for_inference(out / "last.pt")


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


def longer_context(model: GPT, block_size: int) -> GPT | None:
    """The same weights in a model whose context is ``block_size`` tokens, or None for a learned table, which has no
    rows past its own block_size. Sinusoidal and RoPE tables are buffers computed from the formula (not saved), so
    the longer model reads positions the short one never trained on with the same formula."""
    if model.cfg.positional == "learned":
        return None
    longer = GPT(dataclasses.replace(model.cfg, block_size=block_size), model.vocab_size)
    longer.load_state_dict(model.state_dict())
    return longer.to(model.embed.token.weight.device).eval()


def long_texts(loaded: Loaded, seed: int, n: int = LONG_TEXTS) -> torch.Tensor:
    """``n`` texts of 2·block_size tokens (n, 2T), each word-order lines in another shuffled order, as the model's
    training text runs: one line after another."""
    T, texts = loaded.cfg.model.block_size, []
    for i in range(n):
        lines = order_lines()
        random.Random(seed + 1 + i).shuffle(lines)
        ids, k = [], 0
        while len(ids) < 2 * T:
            ids += loaded.tokenizer.encode(LINE_START + lines[k])
            k += 1
        texts.append(ids[: 2 * T])
    return torch.tensor(texts, device=loaded.device)


@torch.no_grad()
def extrapolation(loaded: Loaded, texts: torch.Tensor) -> dict:
    """Next-token losses on ``texts`` (n, 2T), T = block_size: ``by_position`` (2T - 1,) their mean at each
    position when the whole text is read at once (None for a learned table, which cannot), ``inside`` and
    ``beyond`` its mean at positions < T and ≥ T, and ``window``: the mean loss of the same tokens past T when each
    is read after only the T - 1 tokens before it (positions the model trained on), as generation reads them."""
    T = loaded.cfg.model.block_size
    x, y = texts[:, :-1], texts[:, 1:]                                                  # (n, 2T-1) each
    result = {"by_position": None, "inside": None, "beyond": None}
    longer = longer_context(loaded.model, x.size(1))
    if longer is not None:
        logits, _ = longer(x)                                                           # (n, 2T-1, V)
        loss = F.cross_entropy(logits.transpose(1, 2).float(), y, reduction="none")     # (n, 2T-1)
        by_position = loss.mean(dim=0)                                                  # (2T-1,)
        result.update(by_position=by_position.cpu(), inside=by_position[:T].mean().item(),
                      beyond=by_position[T:].mean().item())
    # target at position t ≥ T, read in the window of the T tokens ending at t: its last position predicts it
    ends = torch.arange(T, x.size(1), device=x.device)                                  # (T - 1,)
    windows = x[:, ends[:, None] + torch.arange(-T + 1, 1, device=x.device)]            # (n, T - 1, T)
    logits, _ = loaded.model(windows.flatten(0, 1))                                     # (n·(T-1), T, V)
    window = F.cross_entropy(logits[:, -1].float(), y[:, T:].flatten(), reduction="none")
    result["window"] = window.mean().item()
    return result


def swapped(prompt: str) -> str:
    """The same prompt with the two animals swapped everywhere: "The dog chased the cat. Who chased? the" → "The
    cat chased the dog. Who chased? the"."""
    a, b = ORDER.match(prompt).groups()
    return re.sub(rf"\b({a}|{b})\b", lambda m: b if m[0] == a else a, prompt)


def order_test(loaded: Loaded, facts) -> dict:
    """Accuracy on the order facts of each question (``QUESTIONS``: None for one not asked), how often a "who did
    it" sentence and its swapped twin get the same answer, and the answers to the two sentences of ``PAIR``."""
    said = answers(loaded, [*PAIR, *(prompt for _, prompt, _ in facts)])
    accuracy = {}
    for question in QUESTIONS:
        asked = [(prompt, expected) for category, prompt, expected in facts if category == question]
        accuracy[question] = (sum(fact_known(said[p], e) for p, e in asked) / len(asked)) if asked else None
    twins = [(p, swapped(p)) for category, p, _ in facts if category == QUESTIONS[0] and swapped(p) in said]
    same = sum(said[p] == said[q] for p, q in twins)
    return {"accuracy": accuracy[QUESTIONS[0]], "accuracy_to_whom": accuracy[QUESTIONS[1]],
            "same_answer_share": same / max(1, len(twins)), "pair": [said[p] for p in PAIR]}


def run(ctx: Context, steps: int = 300, facts=None, texts: int = LONG_TEXTS) -> dict:
    cfg, position = ctx.loaded.cfg.model, ctx.loaded.model.embed.position
    table = position.table.detach() if position is not None else sinusoidal_table(cfg.block_size, cfg.n_embd)
    table = table.cpu()                                                                 # (T, C)
    far = len(table) // 2
    near_cos, far_cos = (torch.cosine_similarity(table[0], table[i], dim=0).item() for i in (1, far))
    ctx.say(f"The PE table: {table.shape[0]} positions × {table.shape[1]} dimensions, values in [-1, 1]. Nearby "
            f"positions get similar rows: cosine of positions 0 and 1 {near_cos:.2f}, of 0 and {far} {far_cos:.2f}.")

    facts = facts or [f for f in toy_facts() if f[0] in QUESTIONS]
    fitting = [f for f in facts if len(ctx.loaded.tokenizer.encode(LINE_START + f[1])) < cfg.block_size]
    if len(fitting) < len(facts):
        ctx.say(f"{len(facts) - len(fitting)} of the {len(facts)} word-order questions are longer than this model's "
                f"context ({cfg.block_size} tokens): left out.")
    facts = fitting
    results = {f"this checkpoint: {cfg.n_layer} blocks, {cfg.positional}": order_test(ctx.loaded, facts)}
    runs = [(1, "none"), *((cfg.n_layer, kind) for kind in ENCODINGS if (cfg.n_layer, kind) != (1, "none"))]
    seed = ctx.loaded.cfg.train.seed
    with tempfile.TemporaryDirectory() as tmp:
        corpus = order_corpus(Path(tmp) / "order.txt", seed)
        ctx.say(f"\nModels trained {steps} steps on the word-order lines alone, the same steps and seed for each:")
        for n_layer, kind in runs:
            started = time.perf_counter()
            model = short_run(ctx, n_layer, steps, Path(tmp), corpus, kind)
            name = run_name(n_layer, kind, steps)
            ctx.say(f"   {name}: {time.perf_counter() - started:.0f} s")
            results[name] = {**order_test(model, facts), "val_loss": model.best_val,
                             **extrapolation(model, long_texts(model, seed, texts))}

    ctx.say("\nWho chased? Greedy answers after a line start:")
    for i, prompt in enumerate(PAIR):
        ctx.say(f"  {prompt!r}")
        for name, r in results.items():
            ctx.say(f"      {name:<36} → {r['pair'][i]!r}")
    counts = {q: sum(f[0] == q for f in facts) for q in QUESTIONS}
    ctx.say(f"\nOver the toy corpus's word-order facts ({counts[QUESTIONS[0]]} 'Who chased?'-like questions, "
            f"{counts[QUESTIONS[1]]} 'Who was chased?'-like ones), right answers and how often both orders of a "
            "'who did it' sentence get the same answer:")
    for name, r in results.items():
        to_whom = "" if r["accuracy_to_whom"] is None else f"   to whom {r['accuracy_to_whom']:6.1%}"
        ctx.say(f"  {name:<36} who did it {r['accuracy']:6.1%}{to_whom}   "
                f"same answer for both orders {r['same_answer_share']:6.1%}")
    T = cfg.block_size
    ctx.say(f"\nValidation loss of each short run, and texts of {2 * T} tokens, twice the context of {T}: the mean "
            f"loss at positions below {T}, at positions {T} and past (read at once), and of the same tokens read "
            f"after the {T - 1} before them only (positions the model trained on):")
    ctx.say(f"  {'':<36} {'val loss':>9} {'< ' + str(T):>9} {'≥ ' + str(T):>9} {'window':>9}")
    for name, r in results.items():
        if "val_loss" in r:
            cells = [r["val_loss"], r["inside"], r["beyond"], r["window"]]
            ctx.say(f"  {name:<36} " + " ".join("        —" if v is None else f"{v:9.3f}" for v in cells))
    one = results[run_name(1, "none", steps)]
    ctx.say(f"\nOne block without positions gives the same answer to both word orders {one['same_answer_share']:.0%} "
            f"of the time, so at most half of the 'who did it' facts can be right ({one['accuracy']:.0%} here): its "
            "last token averages over the same set of vectors in both sentences. That is not a matter of training; "
            "no number of steps changes it.")
    ctx.say("Deeper models without positions are not completely order-blind: under the causal mask each token sees "
            "only the tokens before it (the vector at 'cat' in 'The dog chased the cat' can know that 'dog' came "
            "earlier), and the blocks after the first can turn that into a sense of position (Haviv et al., 2022, "
            "'Transformer language models without positional encodings still learn positional information'). The "
            "encoding makes order visible from the first block on, and to every block alike.")
    ctx.say("Past the context: a learned table has no rows there, so that model reads long texts a window at a "
            "time. The sinusoidal table goes on by its formula, but the model has never seen those rows added to "
            "its tokens; RoPE turns q and k by angles it has not seen either, but a score depends only on how far "
            "apart two tokens are, and the offsets a line needs are short ones it trained on. Compare each row's "
            f"'≥ {T}' with its 'window': the gap is what reading unseen positions costs.")
    figure = ctx.save(draw(table, results, cfg.positional), "3_position")
    return {"pe_table": table, "results": results, "figure": figure}


def run_name(n_layer: int, positional: str, steps: int) -> str:
    return f"{n_layer} block{'s' if n_layer > 1 else ''}, {positional}, {steps} steps"


def draw(table: torch.Tensor, results: dict, kind: str):
    fig = new_figure(16, 9)
    ax = fig.add_subplot(2, 2, 1)
    image = ax.imshow(table.numpy(), cmap="RdBu", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xlabel("dimension (even: sin, odd: cos)")
    ax.set_ylabel("position")
    ax.set_title({"learned": "Learned position table (a row per position)",
                  "none": "Sinusoidal PE(pos, dim) (this model adds none)",
                  "rope": "Sinusoidal PE(pos, dim) (this model turns q, k instead)"}.get(
        kind, "Sinusoidal positional encoding PE(pos, dim)"))
    fig.colorbar(image, ax=ax)
    ax = fig.add_subplot(2, 2, 2)
    unit = table / table.norm(dim=1, keepdim=True)
    image = ax.imshow((unit @ unit.T).numpy(), cmap="viridis", vmax=1)
    ax.set_xlabel("position")
    ax.set_ylabel("position")
    ax.set_title("Cosine similarity of two positions' PE rows")
    fig.colorbar(image, ax=ax)
    ax = fig.add_subplot(2, 2, 3)
    names = list(results)
    rows = torch.arange(len(names), dtype=torch.float32)
    bars = (("accuracy", "tab:green", "'Who chased?' right"),
            ("accuracy_to_whom", "tab:blue", "'Who was chased?' right"),
            ("same_answer_share", "tab:grey", "same answer for both orders"))
    bars = [bar for bar in bars if all(r[bar[0]] is not None for r in results.values())]
    for n, (key, colour, label) in enumerate(bars):
        offset = (n - (len(bars) - 1) / 2) * 0.8 / len(bars)
        values = [r[key] for r in results.values()]
        ax.barh(rows + offset, values, height=0.76 / len(bars), color=colour, label=label)
        for y, v in zip(rows + offset, values):
            ax.text(v + 0.01, y, f"{v:.0%}", va="center", fontsize=9)
    ax.axvline(0.5, color="black", linestyle=":", linewidth=1)
    ax.set_yticks(rows, [n.replace(": ", ":\n").replace(", ", "\n", 1) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("share of the word-order facts")
    ax.set_title("Who chased? the …  Who was chased? the …")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8)
    ax = fig.add_subplot(2, 2, 4)
    curves = {name: r["by_position"] for name, r in results.items() if r.get("by_position") is not None}
    T = len(next(iter(curves.values()))) // 2 + 1 if curves else 0
    width = max(1, T // 8)                                   # a running mean: each position holds other tokens
    for name, losses in curves.items():
        smooth = torch.nn.functional.avg_pool1d(losses.view(1, 1, -1), width, stride=1).flatten()   # (2T - width,)
        line, = ax.plot(torch.arange(len(smooth)) + (width - 1) / 2, smooth.numpy(), linewidth=1.2,
                        label=name.rsplit(", ", 1)[0])
        ax.hlines(results[name]["window"], T, len(losses) - 1, colors=line.get_color(), linestyles=":")
    for name, r in results.items():                          # a learned table: past its rows, windows only
        if curves and r.get("by_position") is None and r.get("window") is not None:
            ax.hlines(r["window"], T, 2 * T - 2, colors="black", linestyles=":",
                      label=f"{name.rsplit(', ', 1)[0]} (a window at a time only)")
    if curves:
        ax.axvline(T - 0.5, color="black", linewidth=1)
        ax.text(T, 0.98, " past the trained context →", va="top", fontsize=9, transform=ax.get_xaxis_transform())
    ax.set_xlabel("position in a text twice the context long")
    ax.set_ylabel(f"next-token loss (mean of the texts, over {width} positions)")
    ax.set_title("Read at once (lines); the same tokens read a window at a time (dotted)")
    ax.legend(fontsize=8, loc="upper left")
    return fig
