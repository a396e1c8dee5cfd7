"""Tokenization: text split into tokens, each token mapped to an integer id the model can embed.

Three kinds behind one interface (encode, decode, vocab_size, to_dict / from_dict for checkpoints):

- ``char``: one token per character, vocabulary = the characters of the training corpus. Tiny vocabulary, long
  sequences; a character never seen in training has no id (a clear error, not a silent substitute).
- ``bpe``: byte-level byte-pair encoding trained on the user's corpus. It starts from the 256 byte values, so any
  UTF-8 text can be encoded, and repeatedly merges the most frequent adjacent pair into a new token until the
  vocabulary has the requested size. Trained with ``rustbpe`` (Rust), applied with ``tiktoken``.
- ``tiktoken:<name>`` (e.g. ``tiktoken:gpt2``): a published encoding, if tiktoken has it cached on this machine.
"""
import codecs
import hashlib
import json

import tiktoken

from errors import UserError


class Tokenizer:
    """The common interface. ``decode_bytes`` exists so that output can be streamed: a byte-level token may hold
    only part of a UTF-8 character, and an incremental decoder (see ``stream_decoder``) waits for the rest."""

    kind: str
    vocab_size: int

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode_bytes(self, ids: list[int]) -> bytes:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        """Plain data (str, int, bytes, lists, dicts) for checkpoints loaded with ``weights_only=True``."""
        raise NotImplementedError

    def token_strings(self, ids: list[int]) -> list[str]:
        """Each id shown on its own, for printing tokens to a learner."""
        return [self.decode([i]) for i in ids]

    def fingerprint(self) -> str:
        """A short hash of the vocabulary: token caches and checkpoints are only reused with the same one."""
        data = self.to_dict()
        blob = json.dumps(data, sort_keys=True, default=lambda b: b.hex()).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def show_token(token: str) -> str:
    """A token as a learner reads it, on a lesson's axis or on the playground page: the newline and spaces made
    visible, other characters that print nothing (a byte-level tokenizer's control bytes) written as \\xNN, which
    every font can draw."""
    token = token.replace("\n", "⏎").replace(" ", "␣")
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in token)


class CharTokenizer(Tokenizer):
    kind = "char"

    def __init__(self, chars: list[str]):
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}
        self.vocab_size = len(chars)

    @classmethod
    def train(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            raise UserError(f"{name_unknown(text, self.stoi)} (a char tokenizer knows only the {self.vocab_size} "
                            "characters of its training corpus)") from None

    def decode_bytes(self, ids: list[int]) -> bytes:
        return "".join(self.chars[i] for i in ids).encode("utf-8")

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": "".join(self.chars)}


def name_unknown(text: str, known, shown: int = 10) -> str:
    """"character 'Z' is not …" or "characters 'Z', 'é' are not …": every distinct unknown character, in order of
    first appearance, so that a learner can fix the text in one go (at most ``shown`` named, then a count)."""
    unknown = list(dict.fromkeys(c for c in text if c not in known))
    names = ", ".join(repr(c) for c in unknown[:shown])
    if len(unknown) > shown:
        names += f" and {len(unknown) - shown} more"
    if len(unknown) == 1:
        return f"character {names} is not in this model's vocabulary"
    return f"characters {names} are not in this model's vocabulary"


class TiktokenTokenizer(Tokenizer):
    """Shared by ``bpe`` (ranks we trained) and ``tiktoken:<name>`` (ranks published by OpenAI)."""

    def __init__(self, kind: str, encoding: tiktoken.Encoding):
        self.kind, self.encoding = kind, encoding
        self.vocab_size = encoding.n_vocab

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.encoding.encode_ordinary_batch(texts)

    def decode_bytes(self, ids: list[int]) -> bytes:
        return self.encoding.decode_bytes(ids)


class BPETokenizer(TiktokenTokenizer):
    def __init__(self, pattern: str, ranks: dict[bytes, int]):
        self.pattern, self.ranks = pattern, ranks
        super().__init__("bpe", tiktoken.Encoding(name="playground-bpe", pat_str=pattern,
                                                  mergeable_ranks=ranks, special_tokens={}))

    @classmethod
    def train(cls, texts, vocab_size: int) -> "BPETokenizer":
        """Learn vocab_size - 256 merges from an iterable of strings (GPT-4's pre-split pattern: merges never
        cross word, number or whitespace boundaries)."""
        import rustbpe

        if vocab_size < 256:
            raise UserError(f"bpe vocab size must be >= 256 (the byte alphabet), got {vocab_size}")
        trainer = rustbpe.Tokenizer()
        trainer.train_from_iterator(texts, vocab_size=vocab_size)
        ranks = {bytes(token): rank for token, rank in trainer.get_mergeable_ranks()}
        return cls(trainer.get_pattern(), ranks)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "pattern": self.pattern,
                "ranks": [token for token, _ in sorted(self.ranks.items(), key=lambda kv: kv[1])]}


class NamedTiktokenTokenizer(TiktokenTokenizer):
    def __init__(self, name: str):
        self.name = name
        try:
            encoding = tiktoken.get_encoding(name)
        except ValueError:
            raise UserError(f"unknown tiktoken encoding {name!r}; known: {', '.join(tiktoken.list_encoding_names())}") from None
        except Exception:
            raise UserError(f"tiktoken encoding {name!r} is not available offline: it is downloaded on first use, "
                            "so run once with network access (or set TIKTOKEN_CACHE_DIR to a folder holding it)") from None
        super().__init__(f"tiktoken:{name}", encoding)

    def to_dict(self) -> dict:
        return {"kind": self.kind}


def check_tokenizer_spec(spec: str) -> str | None:
    """None if ``spec`` names a tokenizer kind, else the problem (used by config validation)."""
    if spec in ("char", "bpe") or (spec.startswith("tiktoken:") and len(spec) > len("tiktoken:")):
        return None
    return f"tokenizer must be 'char', 'bpe' or 'tiktoken:<name>', got {spec!r}"


def train_tokenizer(spec: str, text: str, bpe_vocab_size: int) -> Tokenizer:
    """Build the tokenizer named by ``spec`` for a corpus: char and bpe learn from ``text``, tiktoken loads."""
    if spec == "char":
        return CharTokenizer.train(text)
    if spec == "bpe":
        return BPETokenizer.train(text.splitlines(keepends=True), bpe_vocab_size)
    return NamedTiktokenTokenizer(spec.removeprefix("tiktoken:"))


def tokenizer_from_dict(data: dict) -> Tokenizer:
    kind = data.get("kind", "")
    if kind == "char":
        return CharTokenizer(list(data["chars"]))
    if kind == "bpe":
        return BPETokenizer(data["pattern"], {bytes(token): rank for rank, token in enumerate(data["ranks"])})
    if kind.startswith("tiktoken:"):
        return NamedTiktokenTokenizer(kind.removeprefix("tiktoken:"))
    raise UserError(f"unknown tokenizer kind {kind!r}")


def stream_decoder(tokenizer: Tokenizer):
    """A function (ids, final=False) → text that holds back incomplete UTF-8 characters until their last byte
    arrives. ``final=True`` flushes what is held back (as U+FFFD, like ``decode``, if the stream stopped mid-character
    or the bytes can never form one), so the pieces add up to ``tokenizer.decode`` of all the ids."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return lambda ids, final=False: decoder.decode(tokenizer.decode_bytes(ids), final)
