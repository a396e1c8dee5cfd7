"""What the toy corpus teaches, as questions with answers: one list that the toy evaluation (``python
toy_eval.py``), the lessons and the tests all ask from.

Every fact starts a line of the corpus, so a prompt is given after a newline (``LINE_START``), as the model saw it in
training: the newline plays the part of a start token.
"""
from data.make_toy_corpus import BROKE, DIGITS, KINDS, SUBJECTS, VERBS

LINE_START = "\n"
# the two questions the training lesson and the playground's Train panel ask while a model learns
PROBES = (("This animal barks. This animal is a", " dog"), ("2+2=", "4"))


def toy_facts() -> list[tuple[str, str, str | tuple[str, ...]]]:
    """(category, prompt, expected greedy continuation) for every kind of fact the corpus teaches; where the corpus
    follows a prompt with one of several lines ("He broke the news." → " Everyone went quiet." or " Mom started to
    cry."), the expected continuation is the tuple of them, and any one is right."""
    sums = [(a, b) for a in DIGITS for b in DIGITS]
    facts = [("sum", f"{a}+{b}=", f"{a + b}") for a, b in sums]
    # the same sums inside a chain ("3+4=7. 5+2=7."), after a sum that differs from the line's own
    facts += [("sum in a chain", f"{(a + 3) % 10}+{b}={(a + 3) % 10 + b}. {a}+{b}=", f"{a + b}") for a, b in sums]
    facts += [(kind, f"This {kind} {trait}. This {kind} is a", f" {name}")
              for kind, names in KINDS.items() for trait, name in names.items()]
    names = list(KINDS["animal"].values())
    pairs = [(a, b, verb, passive) for a in names for b in names if a != b for verb, passive in VERBS.items()]
    facts += [("order: who did it", f"The {a} {verb} the {b}. Who {verb}? the", f" {a}")
              for a, b, verb, _ in pairs]
    facts += [("order: to whom", f"The {a} {verb} the {b}. Who {verb}? the {a}. Who was {passive}? the", f" {b}")
              for a, b, verb, passive in pairs]
    facts += [("context", f"{subject} broke the {thing}.",
               tuple(" " + follow_up.format(P=pronoun) for follow_up in follow_ups))
              for subject, pronoun in SUBJECTS.items() for thing, follow_ups in BROKE.items()]
    return facts


def fact_known(continuation: str, expected: str | tuple[str, ...]) -> bool:
    """The continuation starts with the expected text (one of them, for a tuple) and the next character ends the
    word ("45" is not "4")."""
    if isinstance(expected, tuple):
        return any(fact_known(continuation, e) for e in expected)
    if not continuation.startswith(expected):
        return False
    after = continuation[len(expected) : len(expected) + 1]
    return not after.isalnum()
