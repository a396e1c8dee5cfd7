"""The "Learn" playground: one runnable lesson per step of the transformer, in the order data flows through it.

Each lesson module (named as in ``ORDER``) has ``run(ctx) -> dict``: it prints an explanation with the numbers it
measured on the model in ``ctx`` (see ``lessons.common.Context``), saves a figure, and returns those numbers so
that tests can check them.
"""

ORDER = ("tokenize", "embed", "position", "attend", "heads", "feedforward", "train", "sample")
