"""Does a toy model know its facts? Every fact the toy corpus teaches (``data.toy_facts``), asked by greedy
generation: what ``toy_eval.py``, the tests and the playground's views of toy runs share.

A fact counts as known when the greedy continuation of its prompt starts with the expected text (one of them, where
the corpus follows a prompt in several ways) and the next character ends the word (so "2+2=" → "45" does not pass
as "4"). Every fact in the corpus starts a line, so each prompt is given after a newline, as the model saw it in
training (the newline plays the part of a start token).
"""
from collections import defaultdict

from data.toy_facts import LINE_START, fact_known, toy_facts
from inference import Loaded, greedy_texts

TARGETS = {"sum": 0.95, "sum in a chain": 0.9, "animal": 1.0, "fruit": 1.0, "tool": 1.0, "order: who did it": 0.95,
           "order: to whom": 0.95, "context": 0.9}                  # what `make demo` promises, for both toy models
TOO_LONG = "(the question is longer than the model's context)"


def evaluate_facts(loaded: Loaded, facts=None) -> dict:
    """{category: {"correct": n, "total": n, "accuracy": a, "target": t, "failures": [(prompt, expected, got)],
    "example": (prompt, got) of the first fact known, or None}}, in the order the categories first appear."""
    facts = toy_facts() if facts is None else facts
    prompts = [LINE_START + prompt for _, prompt, _ in facts]
    answers = [expected if isinstance(expected, tuple) else (expected,) for _, _, expected in facts]
    # a prompt longer than the model's context cannot be asked: such a fact is not known (a char model with a short
    # context, say, and the two-question order lines)
    fits = [len(loaded.tokenizer.encode(p)) <= loaded.cfg.model.block_size for p in prompts]
    asked = greedy_texts(loaded, [p for p, ok in zip(prompts, fits) if ok],
                         min_chars=[max(map(len, a)) + 1 for a, ok in zip(answers, fits) if ok])
    answered = iter(asked)
    continuations = [next(answered) if ok else TOO_LONG for ok in fits]
    results = defaultdict(lambda: {"correct": 0, "total": 0, "failures": [], "example": None})
    for (category, prompt, expected), got in zip(facts, continuations):
        entry = results[category]
        entry["total"] += 1
        if fact_known(got, expected):
            entry["correct"] += 1
            entry["example"] = entry["example"] or (prompt, got.split("\n")[0])
        else:
            entry["failures"].append((prompt, expected, got))
    for category, entry in results.items():
        entry["accuracy"] = entry["correct"] / entry["total"]
        entry["target"] = TARGETS.get(category, 0.0)
    return dict(results)


def all_at_target(results: dict) -> bool:
    """Every category at or above its target."""
    return all(entry["accuracy"] >= entry["target"] for entry in results.values())
