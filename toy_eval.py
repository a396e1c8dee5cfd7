"""Does the toy model know its facts? Greedy generation against every fact the toy corpus teaches.

    python toy_eval.py                                   the word-level toy model (runs/toy_words/best.pt)
    python toy_eval.py --checkpoint runs/toy/best.pt     the character-level one

A fact counts as known when the greedy continuation of its prompt starts with the expected text (one of them, where
the corpus follows a prompt in several ways) and the next character ends the word (so "2+2=" → "45" does not pass as "4"). Every fact in the corpus starts a line, so each
prompt is given after a newline, as the model saw it in training (the newline plays the part of a start token).
"""
import argparse
import sys
from collections import Counter, defaultdict

from data.toy_facts import LINE_START, fact_known, toy_facts
from errors import run_command

TARGETS = {"sum": 0.95, "sum in a chain": 0.9, "animal": 1.0, "fruit": 1.0, "tool": 1.0, "order: who did it": 0.95,
           "order: to whom": 0.95, "context": 0.9}                  # what `make demo` promises, for both toy models


def evaluate_facts(loaded, facts=None) -> dict:
    """{category: {"correct": n, "total": n, "accuracy": a, "failures": [(prompt, expected, got)],
    "example": (prompt, got) of the first fact known, or None}}."""
    from inference import greedy_text

    results = defaultdict(lambda: {"correct": 0, "total": 0, "failures": [], "example": None})
    for category, prompt, expected in facts if facts is not None else toy_facts():
        answers = expected if isinstance(expected, tuple) else (expected,)
        got = greedy_text(loaded, LINE_START + prompt, min_chars=max(map(len, answers)) + 1)
        entry = results[category]
        entry["total"] += 1
        if fact_known(got, expected):
            entry["correct"] += 1
            entry["example"] = entry["example"] or (prompt, got.split("\n")[0])
        else:
            entry["failures"].append((prompt, expected, got))
    for entry in results.values():
        entry["accuracy"] = entry["correct"] / entry["total"]
    return dict(results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check a toy checkpoint against the toy corpus's facts.")
    parser.add_argument("--checkpoint", default="runs/toy_words/best.pt",
                        help="a toy model's best.pt (default: the word-level one; runs/toy/best.pt is the char one)")
    parser.add_argument("--show-failures", type=int, default=3, metavar="N", help="failed facts to print per category")
    args = parser.parse_args(argv)
    return run_command(lambda: report(args))


def report(args) -> None:
    from inference import load_for_inference

    loaded, facts = load_for_inference(args.checkpoint), toy_facts()
    counts = Counter(category for category, _, _ in facts)
    print(f"checking {len(facts)} facts by greedy generation "
          f"({', '.join(f'{category} {n}' for category, n in counts.items())})...", file=sys.stderr, flush=True)
    results = evaluate_facts(loaded, facts)
    print(f"{'fact':<18} {'correct':>9} {'accuracy':>9} {'target':>7}")
    for category, entry in results.items():
        target = TARGETS.get(category, 0.0)
        mark = "ok" if entry["accuracy"] >= target else "BELOW"
        print(f"{category:<18} {entry['correct']:>4}/{entry['total']:<4} {entry['accuracy']:>9.1%} {target:>7.0%}  {mark}")
        if entry["example"]:
            print(f"    e.g. {entry['example'][0]!r} → {entry['example'][1]!r}")
        for prompt, expected, got in entry["failures"][: args.show_failures]:
            print(f"    {prompt!r} → {got!r} (expected {expected!r})")


if __name__ == "__main__":
    sys.exit(main())
