"""The word tokenizer: words with the space before them, each digit and mark alone, <unk> for the rest."""
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.checkpoint import checkpoint_state, load_checkpoint, model_from_checkpoint, save_checkpoint
from core.config import Config
from data.tokenization import WordTokenizer, tokenizer_from_dict, train_tokenizer
from model import GPT, ModelConfig
from tests.conftest import ROOT

TOY = (ROOT / "data" / "toy_corpus.txt").read_text(encoding="utf-8")
TOY_WORDS = WordTokenizer.train(TOY)


def test_the_brief_s_splits():
    assert WordTokenizer.split("The dog chased the cat.") == ["The", " dog", " chased", " the", " cat", "."]
    assert WordTokenizer.split("2+2=4\n14") == ["2", "+", "2", "=", "4", "\n", "1", "4"]     # a digit each
    assert WordTokenizer.split("a  b\tc!?") == ["a", " ", " b", "\t", "c", "!", "?"]        # more space: a token
    assert WordTokenizer.split("café, naïve") == ["café", ",", " naïve"]                     # letters of any script


def test_the_toy_vocabulary_is_its_tokens_most_frequent_first_plus_unk():
    assert TOY_WORDS.tokens[0] == "<unk>" and TOY_WORDS.unk_id == 0
    assert TOY_WORDS.vocab_size == len(set(WordTokenizer.split(TOY))) + 1 == 118
    counts = [TOY.count(t) for t in TOY_WORDS.tokens[1:4]]
    assert TOY_WORDS.tokens[1:3] == [".", "\n"] and counts == sorted(counts, reverse=True)
    for word in (" dog", " cat", " banana", "This", " is", " a"):
        assert len(TOY_WORDS.encode(word)) == 1, word


@settings(deadline=None, max_examples=300, database=None)
@given(st.lists(st.sampled_from(TOY_WORDS.tokens[1:]), max_size=40).map("".join))
def test_text_made_of_the_corpus_s_tokens_round_trips_exactly_where_they_stay_tokens(text):
    """Joined, two tokens may read as one new word ("The" + "She" is "TheShe"): that one is unknown and becomes
    <unk>; every other piece comes back exactly, so a text without unknown words round-trips."""
    ids = TOY_WORDS.encode(text)
    pieces = TOY_WORDS.pieces(text, ids)
    assert TOY_WORDS.decode(ids) == "".join("<unk>" if i == 0 else piece for i, piece in zip(ids, pieces))
    if not TOY_WORDS.unknown(text):
        assert TOY_WORDS.decode(ids) == text and pieces == [TOY_WORDS.decode([i]) for i in ids]


@settings(deadline=None, max_examples=200, database=None)
@given(st.text(max_size=60))
def test_any_text_splits_into_pieces_that_add_up_to_it(text):
    assert "".join(WordTokenizer.split(text)) == text
    ids = TOY_WORDS.encode(text)
    assert len(ids) == len(TOY_WORDS.pieces(text, ids))
    assert all((i == 0) == (piece in TOY_WORDS.unknown(text)) for i, piece in zip(ids, TOY_WORDS.pieces(text, ids)))


def test_an_unknown_word_is_unk_and_named_once():
    text = "The cat sat on the mat. The cat sat."
    ids = TOY_WORDS.encode(text)
    assert TOY_WORDS.unknown(text) == [" sat", " on", " mat"]
    assert [p for i, p in zip(ids, TOY_WORDS.pieces(text, ids)) if i == 0] == [" sat", " on", " mat", " sat"]
    assert TOY_WORDS.decode(ids) == "The cat<unk><unk> the<unk>. The cat<unk>."


def test_the_vocabulary_cap_keeps_the_most_frequent_words():
    capped = train_tokenizer("word", TOY, 0, word_vocab_size=20)
    assert capped.vocab_size == 20 and capped.tokens == TOY_WORDS.tokens[:20]
    rare = TOY_WORDS.tokens[-1]
    assert capped.encode(rare) == [0] and capped.unknown(rare) == [rare]


def test_saved_in_a_checkpoint_as_plain_data_and_loaded_with_weights_only(tmp_path):
    cfg = Config(model=ModelConfig(block_size=8, n_layer=1, n_head=1, n_embd=8))
    cfg.data.tokenizer = "word"
    model = GPT(cfg.model, TOY_WORDS.vocab_size)
    optimizer = model.configure_optimizer(1e-3, 0.0, (0.9, 0.95), fused=False)
    state = checkpoint_state(model, optimizer, cfg, TOY_WORDS, 0, float("inf"), torch.Generator(), False)
    save_checkpoint(tmp_path / "w.pt", state)
    loaded = load_checkpoint(tmp_path / "w.pt")                  # weights_only=True inside
    _, tokenizer, _ = model_from_checkpoint(loaded, tmp_path / "w.pt")
    assert isinstance(tokenizer, WordTokenizer) and tokenizer.tokens == TOY_WORDS.tokens
    assert tokenizer_from_dict(TOY_WORDS.to_dict()).fingerprint() == TOY_WORDS.fingerprint()


@pytest.fixture(scope="module")
def word_checkpoint(tmp_path_factory):
    from tests.conftest import tiny_overrides
    from core.config import load_config
    from training.trainer import train

    out = tmp_path_factory.mktemp("words")
    corpus = out / "corpus.txt"
    corpus.write_text(TOY[:20_000], encoding="utf-8")
    cfg = load_config(None, tiny_overrides(out / "run", corpus, **{"data.tokenizer": "word", "model.block_size": 16}))
    train(cfg, progress=False, log=lambda *_: None)
    return out / "run" / "best.pt"


def test_generate_warns_about_unknown_words_and_runs(word_checkpoint):
    result = subprocess.run([sys.executable, str(ROOT / "generate.py"), "--checkpoint", str(word_checkpoint),
                             "--prompt", "The cat sat on the mat.", "--max-new-tokens", "3", "--temperature", "0"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        "warning: not in this model's vocabulary, read as <unk>: ' sat', ' on', ' mat'"]
    assert result.stdout.startswith("The cat sat on the mat.")
