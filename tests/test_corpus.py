import numpy as np
import pytest

from data.corpus import encode_cached, get_batch, read_corpus, split_tokens
from data.tokenization import CharTokenizer
from errors import UserError

import torch


def test_folder_of_txt_files_is_joined_in_name_order(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first\n")
    (tmp_path / "skip.md").write_text("not text corpus")
    assert read_corpus(tmp_path) == "first\nsecond\n"


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"), (b"  \n\n", "is empty"), (b"\x00\x01binary", "looks binary"),
    (b"caf\xe9 latin-1", "is not UTF-8"),
])
def test_bad_corpora(tmp_path, content, message):
    path = tmp_path / "c.txt"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        read_corpus(path)


def test_missing_corpus(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_corpus(tmp_path / "nope.txt")


def test_cache_is_reused_and_invalidated(tmp_path):
    text = "abcabc" * 10
    tok = CharTokenizer.train(text)
    ids = encode_cached(text, tok, tmp_path)
    assert ids.dtype == np.uint16 and tok.decode(list(ids)) == text
    assert len(list(tmp_path.glob("*.npy"))) == 1
    encode_cached(text, tok, tmp_path)                               # same text + tokenizer: cache hit
    assert len(list(tmp_path.glob("*.npy"))) == 1
    encode_cached(text + "d", CharTokenizer.train(text + "d"), tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_truncated_cache_is_rebuilt(tmp_path):
    text = "hello world " * 5
    tok = CharTokenizer.train(text)
    encode_cached(text, tok, tmp_path)
    cache = next(tmp_path.glob("*.npy"))
    cache.write_bytes(cache.read_bytes()[:20])
    assert tok.decode(list(encode_cached(text, tok, tmp_path))) == text


@pytest.mark.parametrize("swap", ["out of the vocabulary", "another dtype", "two dimensions"])
def test_a_swapped_cache_is_rebuilt_not_trusted(tmp_path, swap):
    text = "hello world " * 5
    tok = CharTokenizer.train(text)
    encode_cached(text, tok, tmp_path)
    cache = next(tmp_path.glob("*.npy"))
    bad = {"out of the vocabulary": np.full(60, 999, dtype=np.uint16), "another dtype": np.zeros(60, dtype=np.int64),
           "two dimensions": np.zeros((6, 10), dtype=np.uint16)}[swap]
    np.save(cache, bad)
    assert tok.decode(list(encode_cached(text, tok, tmp_path))) == text


def test_corpus_size_is_checked_before_reading(tmp_path):
    (tmp_path / "a.txt").write_text("x" * 600)
    (tmp_path / "b.txt").write_text("y" * 600)
    assert len(read_corpus(tmp_path, limit=1300)) == 1202
    with pytest.raises(UserError, match=f"corpus {tmp_path} is over"):
        read_corpus(tmp_path, limit=1000)                          # two files, each under the limit


def test_split_and_too_short_corpus():
    splits = split_tokens(np.arange(100), 0.1, 8, "c")
    assert len(splits.train) == 90 and splits.val[0] == 90
    with pytest.raises(UserError, match="too short"):
        split_tokens(np.arange(50), 0.1, 8, "c")


def test_batches_are_shifted_windows():
    data = torch.arange(100)
    x, y = get_batch(data, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y, x + 1)
