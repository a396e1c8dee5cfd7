import random

import pytest
import tiktoken

from data.tokenization import (BPETokenizer, CharTokenizer, NamedTiktokenTokenizer, stream_decoder,
                               tokenizer_from_dict, train_tokenizer)
from errors import UserError

TEXT = "The dog chased the cat. Le chien a chassé le chat. 犬が猫を追いかけた。 🐕→🐈\n" * 30


def random_unicode(rng: random.Random, n: int) -> str:
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x370, 0x3FF), (0x4E00, 0x4FFF), (0x1F300, 0x1F64F), (0x0, 0x1F)]
    return "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(n))


def test_char_round_trip_and_unknown_character_error():
    tok = CharTokenizer.train(TEXT)
    assert tok.decode(tok.encode(TEXT)) == TEXT
    with pytest.raises(UserError, match="^characters 'Z', 'b', 'r' are not in this model's vocabulary"):
        tok.encode("Zebra")
    with pytest.raises(UserError, match=r"^characters 'Z', 'Q', 'u', 'ü' are not in this model's vocabulary"):
        tok.encode("Zoe ate the Quiche üZ")    # every unknown character named once, in order


def test_bpe_round_trips_any_utf8_including_emoji():
    tok = train_tokenizer("bpe", TEXT, 300)
    assert isinstance(tok, BPETokenizer) and tok.vocab_size == 300
    rng = random.Random(0)
    for _ in range(50):
        text = random_unicode(rng, rng.randint(0, 60))
        assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(TEXT)) < len(TEXT.encode("utf-8"))         # merges actually compress


def test_saved_tokenizers_come_back_identical():
    for tok in (train_tokenizer("char", TEXT, 0), train_tokenizer("bpe", TEXT, 280)):
        again = tokenizer_from_dict(tok.to_dict())
        assert again.encode(TEXT) == tok.encode(TEXT) and again.fingerprint() == tok.fingerprint()


def test_stream_decoder_waits_for_whole_characters():
    tok = train_tokenizer("bpe", "abc", 256)                         # bytes only: "🐕" is 4 tokens
    ids = tok.encode("a🐕b")
    decode = stream_decoder(tok)
    pieces = [decode([i]) for i in ids]
    assert pieces == ["a", "", "", "", "🐕", "b"]
    cut = stream_decoder(tok)
    assert [cut([i]) for i in ids[:3]] + [cut([], final=True)] == ["a", "", "", "\ufffd"]    # stopped mid-emoji
    assert tok.decode(ids[:3]) == "a\ufffd"


def test_named_tiktoken_offline_gives_one_line_error(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")
    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    with pytest.raises(UserError, match="not available offline"):
        NamedTiktokenTokenizer("gpt2")


def test_named_tiktoken_uses_the_encoding_when_available(monkeypatch):
    ranks = {bytes([i]): i for i in range(256)}
    fake = tiktoken.Encoding(name="fake", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={})
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: fake)
    tok = train_tokenizer("tiktoken:fake", "", 0)
    assert tok.kind == "tiktoken:fake" and tok.decode(tok.encode("héllo")) == "héllo"
    assert tokenizer_from_dict(tok.to_dict()).encode("x") == tok.encode("x")
