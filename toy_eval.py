"""Does the toy model know its facts? Greedy generation against every fact the toy corpus teaches.

    python toy_eval.py                                   the word-level toy model (runs/toy_words/best.pt)
    python toy_eval.py --checkpoint runs/toy/best.pt     the character-level one

How a fact counts as known, and each kind's target: facts.py.
"""
import argparse
import sys
from collections import Counter

from errors import run_command


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check a toy checkpoint against the toy corpus's facts.")
    parser.add_argument("--checkpoint", default="runs/toy_words/best.pt",
                        help="a toy model's best.pt (default: the word-level one; runs/toy/best.pt is the char one)")
    parser.add_argument("--show-failures", type=int, default=3, metavar="N", help="failed facts to print per category")
    args = parser.parse_args(argv)
    return run_command(lambda: report(args))


def report(args) -> None:
    from data.toy_facts import toy_facts
    from facts import evaluate_facts
    from inference import load_for_inference

    loaded, facts = load_for_inference(args.checkpoint), toy_facts()
    counts = Counter(category for category, _, _ in facts)
    print(f"checking {len(facts)} facts by greedy generation "
          f"({', '.join(f'{category} {n}' for category, n in counts.items())})...", file=sys.stderr, flush=True)
    results = evaluate_facts(loaded, facts)
    print(f"{'fact':<18} {'correct':>9} {'accuracy':>9} {'target':>7}")
    for category, entry in results.items():
        target = entry["target"]
        mark = "ok" if entry["accuracy"] >= target else "BELOW"
        print(f"{category:<18} {entry['correct']:>4}/{entry['total']:<4} {entry['accuracy']:>9.1%} {target:>7.0%}  {mark}")
        if entry["example"]:
            print(f"    e.g. {entry['example'][0]!r} → {entry['example'][1]!r}")
        for prompt, expected, got in entry["failures"][: args.show_failures]:
            print(f"    {prompt!r} → {got!r} (expected {expected!r})")


if __name__ == "__main__":
    sys.exit(main())
