"""Tokenization: text split into tokens, each token mapped to an integer id the model can embed.

Four kinds behind one interface (encode, decode, vocab_size, to_dict / from_dict for checkpoints):

- ``word``: one token per word, digit or punctuation mark; a word keeps the space before it (" dog"), so that the
  tokens add up to the text exactly. Vocabulary = the corpus's tokens, most frequent first (optionally capped), plus
  ``<unk>`` for every word it never saw. The way to start: "split the text into words, turn them into numbers".
- ``char``: one token per character, vocabulary = the characters of the training corpus. Tiny vocabulary, long
  sequences; a character never seen in training has no id (a clear error, not a silent substitute).
- ``bpe``: byte-level byte-pair encoding trained on the user's corpus. It starts from the 256 byte values, so any
  UTF-8 text can be encoded, and repeatedly merges the most frequent adjacent pair into a new token until the
  vocabulary has the requested size. Trained with ``rustbpe`` (Rust), applied with ``tiktoken``.
- ``tiktoken:<name>`` (e.g. ``tiktoken:gpt2``): a published encoding, if tiktoken has it cached on this machine.
- ``gpt2-bpe``: GPT-2's byte-level BPE read from a Hugging Face folder's ``vocab.json`` and ``merges.txt`` (it comes
  with GPT-2's weights, ``core.hub``), applied with ``tiktoken``.
"""
import codecs
import hashlib
import json
import re
from collections import Counter

import tiktoken

from errors import UserError


class Tokenizer:
    """The common interface. ``decode_bytes`` exists so that output can be streamed: a byte-level token may hold
    only part of a UTF-8 character, and an incremental decoder (see ``stream_decoder``) waits for the rest."""

    kind: str
    vocab_size: int
    unk_id: int | None = None       # the id a token outside the vocabulary is read as (only the word kind has one)

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode_bytes(self, ids: list[int]) -> bytes:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def to_dict(self) -> dict:
        """Plain data (str, int, bytes, lists, dicts) for checkpoints loaded with ``weights_only=True``."""
        raise NotImplementedError

    def unknown(self, text: str) -> list[str]:
        """The parts of ``text`` this tokenizer reads as ``unk_id`` (only the word kind has such a token)."""
        return []

    def pieces(self, text: str, ids: list[int]) -> list[str]:
        """``text``, whose tokens are ``ids``, cut where its tokens are, one string per token: what a learner
        typed, also where a token is read as unknown (only the word kind has such a token: the others show the
        tokens' own text, without encoding again)."""
        return self.token_strings(ids)

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


class WordTokenizer(Tokenizer):
    """Words, each digit and each punctuation mark, a word with the one space before it:

        "The dog chased the cat.\n2+2=4"  →  "The" " dog" " chased" " the" " cat" "." "\n" "2" "+" "2" "=" "4"

    Digits stand alone so that a sum is read digit by digit ("14" is "1" "4"), as the char model reads it. Any other
    whitespace (a second space, a tab, the newline) is a token of its own. So decode(encode(text)) == text for every
    text made of known tokens; a token the vocabulary lacks becomes ``<unk>`` (``unk_id`` 0), and ``unknown`` names
    it."""
    kind = "word"
    UNK = "<unk>"
    unk_id = 0
    # a word (letters) with its space; a digit or a mark (anything not a letter, digit or space) with its space;
    # then any single whitespace character
    PATTERN = re.compile(r" ?[^\W\d_]+| ?\d| ?(?:[^\w\s]|_)|\s")

    def __init__(self, tokens: list[str]):
        self.tokens = [self.UNK] + [t for t in tokens if t != self.UNK]
        self.stoi = {t: i for i, t in enumerate(self.tokens)}
        self.vocab_size = len(self.tokens)

    @classmethod
    def split(cls, text: str) -> list[str]:
        return cls.PATTERN.findall(text)

    @classmethod
    def train(cls, text: str, max_vocab: int = 0) -> "WordTokenizer":
        """The corpus's tokens, most frequent first (ties in order of first appearance), at most ``max_vocab``
        tokens with ``<unk>`` (0: all of them)."""
        counts = Counter(cls.split(text))                       # a Counter keeps first-appearance order on ties
        tokens = [t for t, _ in sorted(counts.items(), key=lambda kv: -kv[1])]
        return cls(tokens[: max_vocab - 1] if max_vocab > 0 else tokens)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(t, self.unk_id) for t in self.split(text)]

    def pieces(self, text: str, ids: list[int]) -> list[str]:
        return self.split(text)

    def unknown(self, text: str) -> list[str]:
        """The tokens of ``text`` this vocabulary lacks (each once, in order): what ``encode`` turns into ``<unk>``."""
        return list(dict.fromkeys(t for t in self.split(text) if t not in self.stoi))

    def decode_bytes(self, ids: list[int]) -> bytes:
        return self.decode(ids).encode("utf-8")

    def decode(self, ids: list[int]) -> str:
        return "".join(self.tokens[i] for i in ids)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens[1:]}


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



# GPT-2's pre-split: contractions, words, numbers and runs of other marks (each with the space before it), spaces.
# Merges never cross these boundaries.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def gpt2_byte_alphabet() -> dict[int, str]:
    """GPT-2's files write each byte as one printable character: the printable Latin-1 bytes as themselves, the
    others (control bytes, space, 0x7f-0xa0, 0xad) as the characters from U+0100 on, in byte order. So a space is
    'Ġ' (U+0120) and a newline 'Ċ' (U+010A) in vocab.json and merges.txt."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    alphabet, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            alphabet[byte] = chr(byte)
        else:
            alphabet[byte] = chr(0x100 + extra)
            extra += 1
    return alphabet


class GPT2Tokenizer(TiktokenTokenizer):
    """GPT-2's byte-level BPE, read from a Hugging Face folder's ``vocab.json`` (token → id) and ``merges.txt`` (the
    merges in the order they were learned), applied by tiktoken. Byte-pair encoding merges, inside each pre-split
    piece, the adjacent pair that was merged earliest in training, until no learned merge applies; tiktoken does the
    same by merging the pair whose merged token has the lowest id, which is the same rule because GPT-2 numbered
    its tokens in merge order (checked on reading). Tokens that are neither a byte nor a merge (``<|endoftext|>``)
    are special: they have ids, but ``encode`` never makes them from text."""

    kind = "gpt2-bpe"

    def __init__(self, ranks: dict[bytes, int], special: dict[str, int]):
        self.ranks, self.special = ranks, special
        super().__init__(self.kind, tiktoken.Encoding(name="gpt2-files", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                                      special_tokens=special))

    @classmethod
    def from_vocab_and_merges(cls, vocab, merges: str) -> "GPT2Tokenizer":
        """``vocab``: vocab.json's content; ``merges``: merges.txt's text. A one-line UserError names what is wrong."""
        if not isinstance(vocab, dict) or not all(isinstance(k, str) and type(v) is int for k, v in vocab.items()):
            raise UserError("vocab.json is not a JSON object of token → id")
        if sorted(vocab.values()) != list(range(len(vocab))):
            raise UserError(f"vocab.json's ids are not 0..{len(vocab) - 1}, each once")
        to_byte = {c: b for b, c in gpt2_byte_alphabet().items()}
        missing = [c for c in to_byte if c not in vocab]
        if missing:
            raise UserError(f"vocab.json lacks {len(missing)} of the 256 byte tokens (e.g. {missing[0]!r}); "
                            "it is not a byte-level BPE vocabulary like GPT-2's")
        ranks = {bytes([to_byte[c]]): vocab[c] for c in to_byte}
        last = -1
        lines = merges.splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip() or (number == 1 and line.startswith("#version")):
                continue
            pair = line.split(" ")
            if len(pair) != 2 or not all(pair):
                raise UserError(f"merges.txt line {number} is not two tokens separated by a space: {line[:40]!r}")
            merged = pair[0] + pair[1]
            if merged not in vocab:
                raise UserError(f"merges.txt line {number} makes {merged!r}, which vocab.json does not have")
            if vocab[merged] <= last:
                raise UserError(f"merges.txt line {number} makes {merged!r} (id {vocab[merged]}) after id {last}: "
                                "vocab.json must number merged tokens in merge order")
            try:
                ranks[bytes(to_byte[c] for c in merged)] = last = vocab[merged]
            except KeyError as e:
                raise UserError(f"merges.txt line {number} holds {e.args[0]!r}, not one of GPT-2's byte "
                                "characters") from None
        if len(ranks) != len(set(ranks.values())):
            raise UserError("merges.txt makes the same token twice")
        mergeable = set(ranks.values())
        special = {token: i for token, i in vocab.items() if i not in mergeable}
        return cls(ranks, special)

    def vocab_and_merges(self) -> tuple[dict[str, int], str]:
        """The inverse of ``from_vocab_and_merges``: vocab.json's content and merges.txt's text. Each merged token's
        pair is found by encoding its bytes with the merges made before it (the last merge that made it)."""
        alphabet = gpt2_byte_alphabet()
        shown = lambda token: "".join(alphabet[b] for b in token)                             # noqa: E731
        vocab = {shown(token): i for token, i in self.ranks.items()}
        merges = ["#version: 0.2"]
        for token, i in sorted(self.ranks.items(), key=lambda kv: kv[1]):
            if len(token) > 1:
                left, right = bpe_pair(token, self.ranks, below=i)
                merges.append(f"{shown(left)} {shown(right)}")
        return {**vocab, **self.special}, "\n".join(merges) + "\n"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "ranks": [token for token, _ in sorted(self.ranks.items(), key=lambda kv: kv[1])],
                "special": dict(self.special)}


def bpe_pair(token: bytes, ranks: dict[bytes, int], below: int) -> tuple[bytes, bytes]:
    """The two tokens byte-pair encoding joins last to make ``token``, using only merges of rank < ``below``."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        candidates = [(ranks.get(parts[j] + parts[j + 1], below), j) for j in range(len(parts) - 1)]
        rank, j = min(candidates)
        if rank >= below:
            raise ValueError(f"{token!r} cannot be made from merges ranked below {below}")
        parts[j : j + 2] = [parts[j] + parts[j + 1]]
    return parts[0], parts[1]

def check_tokenizer_spec(spec: str) -> str | None:
    """None if ``spec`` names a tokenizer kind, else the problem (used by config validation)."""
    named = spec.startswith("tiktoken:") and len(spec) > len("tiktoken:")
    if spec in ("word", "char", "bpe", GPT2Tokenizer.kind) or named:
        return None
    return f"tokenizer must be 'word', 'char', 'bpe' or 'tiktoken:<name>' ('gpt2-bpe' comes with GPT-2), got {spec!r}"


def train_tokenizer(spec: str, text: str, bpe_vocab_size: int, word_vocab_size: int = 0) -> Tokenizer:
    """Build the tokenizer named by ``spec`` for a corpus: word, char and bpe learn from ``text``, tiktoken loads."""
    if spec == "word":
        return WordTokenizer.train(text, word_vocab_size)
    if spec == "char":
        return CharTokenizer.train(text)
    if spec == "bpe":
        return BPETokenizer.train(text.splitlines(keepends=True), bpe_vocab_size)
    if spec == GPT2Tokenizer.kind:
        raise UserError("the gpt2-bpe tokenizer is read with GPT-2's weights, not learned from a corpus: fine-tune "
                        "GPT-2 with train.py --init-from hf:openai-community/gpt2 (or a folder holding it)")
    return NamedTiktokenTokenizer(spec.removeprefix("tiktoken:"))


def tokenizer_from_dict(data: dict) -> Tokenizer:
    kind = data.get("kind", "")
    if kind == "word":
        return WordTokenizer(list(data["tokens"]))
    if kind == "char":
        return CharTokenizer(list(data["chars"]))
    if kind == "bpe":
        return BPETokenizer(data["pattern"], {bytes(token): rank for rank, token in enumerate(data["ranks"])})
    if kind.startswith("tiktoken:"):
        return NamedTiktokenTokenizer(kind.removeprefix("tiktoken:"))
    if kind == GPT2Tokenizer.kind:
        return GPT2Tokenizer({bytes(token): rank for rank, token in enumerate(data["ranks"])}, dict(data["special"]))
    raise UserError(f"unknown tokenizer kind {kind!r}")


def stream_decoder(tokenizer: Tokenizer):
    """A function (ids, final=False) → text that holds back incomplete UTF-8 characters until their last byte
    arrives. ``final=True`` flushes what is held back (as U+FFFD, like ``decode``, if the stream stopped mid-character
    or the bytes can never form one), so the pieces add up to ``tokenizer.decode`` of all the ids."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return lambda ids, final=False: decoder.decode(tokenizer.decode_bytes(ids), final)
