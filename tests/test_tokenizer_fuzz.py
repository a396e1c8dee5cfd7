"""Property tests: whatever Unicode they are given, tokenizers lose nothing, invent nothing, and fail only cleanly.

- byte-level BPE: decode(encode(text)) == text for any text, and streaming the ids one by one gives the same text;
- char: encode either round-trips or raises a UserError naming the first character it does not know;
- a prompt (``encode_prompt``, what generate.py uses) either round-trips or is refused with a UserError.

Hypothesis draws arbitrary strings (any code point but lone surrogates unless said otherwise) mixed with fragments
of the toy corpus, so the learned merges are exercised too. No example database is written.
"""
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.config import Config
from data.tokenization import CharTokenizer, stream_decoder, tokenizer_from_dict, train_tokenizer
from errors import UserError
from inference import Loaded, encode_prompt
from model.config import ModelConfig
from tests.conftest import ROOT

TOY = (ROOT / "data" / "toy_corpus.txt").read_text(encoding="utf-8")
FUZZ = settings(deadline=None, max_examples=200, database=None)
LONG_CONTEXT = Config(model=ModelConfig(block_size=10**6))               # no prompt is refused for its length

corpus_words = st.sampled_from(sorted(set(TOY.replace("\n", " \n ").split(" "))) + [" ", "\n"])
texts = st.one_of(st.text(), st.lists(corpus_words, max_size=30).map(" ".join),
                  st.lists(st.one_of(corpus_words, st.text(max_size=3)), max_size=20).map("".join))
# st.text() never yields lone surrogates, which is what a non-UTF-8 command-line argument becomes in Python
any_code_point = st.lists(st.one_of(st.characters(), st.characters(categories=["Cs"]))).map("".join)


@pytest.fixture(scope="module")
def bpe():
    """One BPE tokenizer for the module, trained on the toy corpus."""
    return train_tokenizer("bpe", TOY, 320)


@FUZZ
@given(text=texts)
def test_bpe_round_trips_any_text(bpe, text):
    ids = bpe.encode(text)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == text
    assert tokenizer_from_dict(bpe.to_dict()).encode(text) == ids       # as saved in a checkpoint


@FUZZ
@given(text=texts)
def test_streamed_pieces_add_up_to_the_text(bpe, text):
    decode = stream_decoder(bpe)
    assert "".join(decode([i]) for i in bpe.encode(text)) == text


@FUZZ
@given(ids=st.lists(st.integers(0, 319), max_size=40))
@example(ids=[237, 160])        # bytes ED A0 (a UTF-16 surrogate's start): held back, then two U+FFFD on flush
def test_streaming_any_ids_adds_up_to_the_decoded_text(bpe, ids):
    """Generated ids need not form valid UTF-8: the stream holds back at most one unfinished character's bytes
    (never garbling the text), and flushing them at the end gives exactly what ``decode`` gives."""
    decode = stream_decoder(bpe)
    streamed = "".join(decode([i]) for i in ids)
    held = decode([], final=True)
    assert streamed + held == bpe.decode(ids)
    assert set(held) <= {"\ufffd"} and len(held) <= 3


@FUZZ
@given(vocabulary=st.text(min_size=1), data=st.data())
def test_char_round_trips_or_names_the_unknown_character(vocabulary, data):
    text = data.draw(st.one_of(any_code_point, st.text(st.sampled_from(vocabulary))))   # unknown or known chars
    tok = CharTokenizer.train(vocabulary)
    unknown = [c for c in text if c not in tok.stoi]
    try:
        ids = tok.encode(text)
    except UserError as e:
        assert unknown and "not in this model's vocabulary" in str(e)
        named = list(dict.fromkeys(unknown))
        assert all(repr(c) in str(e) for c in named[:10])
        assert (len(named) > 10) == (f"and {len(named) - 10} more" in str(e))
    else:
        assert not unknown and tok.decode(ids) == text


@FUZZ
@given(text=st.one_of(texts, any_code_point))
def test_a_prompt_round_trips_or_is_refused(bpe, text):
    for tok in (bpe, CharTokenizer.train(TOY)):
        loaded = Loaded(model=None, tokenizer=tok, cfg=LONG_CONTEXT, device=torch.device("cpu"))
        try:
            ids = encode_prompt(loaded, text)
        except UserError:
            continue
        assert tok.decode(ids) == text
