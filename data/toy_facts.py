"""What the toy corpus teaches, as questions with answers: one list that the toy evaluation (``python
toy_eval.py``), the lessons and the tests all ask from.

Every fact starts a line of the corpus, so a prompt is given after a newline (``LINE_START``), as the model saw it in
training: the newline plays the part of a start token.
"""
from data.make_toy_corpus import ANIMALS, BROKE, DIGITS, SUBJECTS, VERBS

LINE_START = "\n"
# the two questions the training lesson and the playground's Train panel ask while a model learns
PROBES = (("This animal barks. This animal is a", " dog"), ("2+2=", "4"))


def toy_facts() -> list[tuple[str, str, str]]:
    """Return (category, prompt, expected greedy continuation) triples the corpus teaches."""
    facts = [("sum", f"{a}+{b}=", f"{a + b}") for a in DIGITS for b in DIGITS]
    facts += [("animal", f"This animal {sound}. This animal is a", f" {name}")
              for sound, name in ANIMALS.items()]
    names = list(ANIMALS.values())
    facts += [("order", f"The {a} {verb} the {b}. Who {verb}? the", f" {a}")
              for a in names for b in names if a != b for verb in VERBS]
    facts += [("context", f"{subject} broke the {thing}.", " " + follow_ups[0].format(P=pronoun))
              for subject, pronoun in SUBJECTS.items()
              for thing, follow_ups in BROKE.items() if len(follow_ups) == 1]
    return facts


def fact_known(continuation: str, expected: str) -> bool:
    """The continuation starts with the expected text and the next character ends the word ("45" is not "4")."""
    if not continuation.startswith(expected):
        return False
    after = continuation[len(expected) : len(expected) + 1]
    return not after.isalnum()
