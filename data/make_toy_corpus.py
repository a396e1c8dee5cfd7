"""Build the toy corpus that the mini-GPT is trained on by default.

It teaches four tiny lessons (animal facts, word order, context, single-digit
sums) that a small character-level model can learn in a minute or two on a
CPU, so that greedy generation can then be checked against `toy_facts()`.
"""

import argparse
import random
from pathlib import Path

ANIMALS = {  # what the animal does -> which animal it is; each starts with its own letter (see order_lines)
    "barks": "dog",
    "meows": "cat",
    "croaks": "frog",
    "hoots": "owl",
    "neighs": "horse",
    "roars": "lion",
    "hisses": "snake",
    "chirps": "bird",
}
FRUITS = {"is yellow": "banana", "is sour": "lemon", "is purple": "grape", "is fuzzy": "peach"}
TOOLS = {"cuts": "knife", "digs": "shovel", "sweeps": "broom", "pounds": "hammer"}
KINDS = {"animal": ANIMALS, "fruit": FRUITS, "tool": TOOLS}

VERBS = {"chased": "chased", "bit": "bitten", "saw": "seen", "followed": "followed"}  # active -> passive

SUBJECTS = {"He": "He", "She": "She", "Tom": "He", "Anna": "She"}  # subject -> pronoun
BROKE = {  # what was broken -> sentences that may follow ({P} is the subject's pronoun)
    "glass": ["{P} swept up the pieces."],
    "window": ["Cold air blew into the room."],
    "record": ["{P} won a gold medal."],
    "news": ["Everyone went quiet.", "Mom started to cry."],
    "promise": ["{P} said sorry.", "{P} felt bad about it."],
    "silence": ["{P} asked a question.", "Everyone looked up.", "The baby woke up."],
}

DIGITS = range(10)


def kind_lines(repeats=30):
    """Lesson 1: 'This animal barks. This animal is a dog.' and the same for fruits and tools."""
    return [f"This {kind} {trait}. This {kind} is a {name}."
            for kind, facts in KINDS.items() for trait, name in facts.items() for _ in range(repeats)]


def order_lines(repeats=3):
    """Lesson 2: who did what to whom, asked in both directions. The animals start with different letters: with
    both "cat" and "cow", a char model that had found the subject's first letter often finished the word from the
    other animal ("The cat chased the dog. Who chased? the cow"), a spelling slip that hid what the lines test."""
    names = list(ANIMALS.values())
    return [f"The {a} {verb} the {b}. Who {verb}? the {a}. Who was {passive}? the {b}."
            for a in names for b in names if a != b
            for verb, passive in VERBS.items() for _ in range(repeats)]


def context_lines(rng, repeats=8):
    """Lesson 3: what follows 'broke the ...' depends on the object, not the subject."""
    lines = []
    for subject, pronoun in SUBJECTS.items():
        for thing, follow_ups in BROKE.items():
            for _ in range(repeats * len(follow_ups)):
                follow = rng.choice(follow_ups).format(P=pronoun)
                lines.append(f"{subject} broke the {thing}. {follow}")
    return lines


def sum_lines(rng, repeats=15, chains=400):
    """Lesson 4: every single-digit sum on its own line, plus short chains of sums."""
    sums = [f"{a}+{b}={a + b}" for a in DIGITS for b in DIGITS]
    lines = sums * repeats
    lines += [". ".join(rng.sample(sums, rng.randint(2, 4))) + "." for _ in range(chains)]
    return lines


def build_corpus(seed: int = 1337) -> str:
    """Return the whole corpus: all lessons' lines, shuffled together, one per line."""
    rng = random.Random(seed)
    lines = kind_lines() + order_lines() + context_lines(rng) + sum_lines(rng)
    rng.shuffle(lines)
    return "\n".join(lines) + "\n"


def main(argv=None):
    """Write the corpus to a file and print its path, characters and lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("toy_corpus.txt"))
    args = parser.parse_args(argv)
    text = build_corpus(args.seed)
    args.out.write_bytes(text.encode("ascii"))
    print(f"{args.out} {len(text)} characters {text.count(chr(10))} lines")


if __name__ == "__main__":
    main()
