"""The numbers the playground accepts, in one place: the server checks every request against them and serves them
to the page (GET /api/limits), which sets its inputs' ranges and starting values from them.

The sampling formula's own limits (τ ≥ 0, top-k ≥ 1, 0 < top-p ≤ 1) are ``model.sampling``'s; the seed's are the
config's (64 bits); the Train panel's ranges and defaults (the word toy config's model and schedule) are
``playground.live``'s. What is added here is the page's: the slider's end, how long one generation may be.
"""
from core.config import MAX_SEED
from model.sampling import MAX_TOP_P, MIN_TEMPERATURE, MIN_TOP_K, TOP_P_ABOVE
from playground.live import (KNOB_LIMITS, MAX_TEXT_BYTES, MIN_TEXT_CHARS, POSITIONAL, TOKENIZERS, default_knobs,
                             tokens_needed)

MAX_TEMPERATURE = 2.0        # the temperature slider's end: at τ = 2 a trained model's guesses are already flat
MAX_NEW_TOKENS = 500         # tokens one generation from the page may add
NEW_TOKENS = 60              # ... and adds unless asked for another number
SEED = 1337                  # the seed a generation starts from unless asked for another
MAX_LISTED = 50              # POST /api/next lists at most this many


def limits_view(vocab_size: int) -> dict:
    """Every input's range (and starting value, where it has one) as the page reads them; top-k's end is the
    vocabulary of the model the page shows now."""
    knobs = default_knobs()
    train = {name: {"min": low, "max": high, "default": getattr(knobs, name)}
             for name, (low, high) in KNOB_LIMITS.items()}
    train["lr"] = {"above": train["lr"]["min"], "max": train["lr"]["max"], "default": knobs.lr}
    train["positional"] = {"choices": list(POSITIONAL), "default": knobs.positional}
    train["tokenizer"] = {"choices": list(TOKENIZERS), "default": knobs.tokenizer}
    train["text"] = {"min_chars": MIN_TEXT_CHARS, "max_bytes": MAX_TEXT_BYTES,
                     "min_tokens": {kind: tokens_needed(kind) for kind in TOKENIZERS}}
    return {"sampling": {"temperature": {"min": MIN_TEMPERATURE, "max": MAX_TEMPERATURE, "default": 1.0},
                         "top_k": {"min": MIN_TOP_K, "max": vocab_size},
                         "top_p": {"above": TOP_P_ABOVE, "max": MAX_TOP_P},
                         "max_new_tokens": {"min": 1, "max": MAX_NEW_TOKENS, "default": NEW_TOKENS},
                         "seed": {"min": 0, "max": MAX_SEED, "default": SEED}},
            "train": train}
