"""Shared fixtures: a tiny config, a tiny corpus and a helper to run the real command lines.

Tests run with one intra-op thread per process (subprocesses inherit it): the tensors here are tiny, and on a busy
2-core CI machine OpenMP threads spin-waiting for each other made a 12-step run take 25 s instead of 2 s.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.config import load_config

ROOT = Path(__file__).resolve().parent.parent
# the device tests run on: the CPU always, a GPU where there is one (CI has none; run them on a GPU by hand)
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
# the same, with the training step recorded as a CUDA graph on the GPU (train.cuda_graphs)
STEPS = [{"train.device": d} for d in DEVICES] + [{"train.device": "cuda", "train.cuda_graphs": True}
                                                  for d in DEVICES if d == "cuda"]
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def tiny_overrides(out_dir: Path, corpus: Path, **extra) -> list[str]:
    """A model small enough to train in a second or two on a CPU."""
    values = {"model.block_size": 16, "model.n_layer": 2, "model.n_head": 2, "model.n_embd": 32,
              "data.path": str(corpus), "data.cache_dir": str(out_dir.parent / "cache"),
              "train.out_dir": str(out_dir), "train.batch_size": 4, "train.max_iters": 12, "train.warmup_iters": 2,
              "train.eval_interval": 4, "train.eval_iters": 2, "train.log_interval": 1, "train.device": "cpu",
              "train.dtype": "float32",       # the same precision on every CI machine (auto picks bf16 with AMX)
              "sample.max_new_tokens": 10}
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("The dog chased the cat. Who chased? the dog.\n2+2=4\nThis animal barks. This animal is a dog.\n" * 20,
                    encoding="utf-8")
    return path


@pytest.fixture
def tiny_cfg(tmp_path, corpus):
    def make(**extra):
        return load_config(None, tiny_overrides(tmp_path / "run", corpus, **extra))
    return make


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One tiny trained run shared by the tests that only read its checkpoints."""
    from training.trainer import train

    tmp = tmp_path_factory.mktemp("trained")
    corpus = tmp / "corpus.txt"
    corpus.write_text("hello world, this is a tiny corpus.\n" * 40, encoding="utf-8")
    cfg = load_config(None, tiny_overrides(tmp / "run", corpus))
    train(cfg, progress=False, log=lambda *_: None)
    return tmp / "run"


def run_cli(*args, cwd=ROOT, timeout=120, env=None) -> subprocess.CompletedProcess:
    """Run a project command line as a user would, with a clean Python path (and ``env`` added to the environment)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


# The fast tier, `make test-fast` (pytest -m fast): the model, tokenizer, config and API tests, well under a minute
# on 2 cores, for a quick check while changing them. `make test` runs these and every other test.
FAST = {"test_model.py", "test_attention.py", "test_positional.py", "test_rope.py", "test_sampling.py",
        "test_generation.py", "test_checkpoint.py", "test_schedule.py", "test_tokenization.py",
        "test_tokenizer_fuzz.py", "test_corpus.py", "test_config.py", "test_imports.py", "test_playground_api.py"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.name in FAST:
            item.add_marker(pytest.mark.fast)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def train_play_model(tmp: Path, tokenizer: str) -> Path:
    """A tiny model on the toy corpus (so every example sentence of the page is in its vocabulary): 40 steps."""
    from training.trainer import train

    cfg = load_config(None, tiny_overrides(tmp / "run", ROOT / "data" / "toy_corpus.txt", **{
        "model.block_size": 64, "data.tokenizer": tokenizer, "data.bpe_vocab_size": 300, "train.max_iters": 40,
        "train.batch_size": 8, "train.eval_interval": 20}))
    train(cfg, progress=False, log=lambda *_: None)
    return tmp / "run" / "best.pt"


@pytest.fixture(scope="session")
def play_checkpoint(tmp_path_factory) -> Path:
    """A char-level checkpoint for the playground tests."""
    return train_play_model(tmp_path_factory.mktemp("play_char"), "char")


@pytest.fixture(scope="session")
def play_word_checkpoint(tmp_path_factory) -> Path:
    """A word-level checkpoint: " dog" is one token."""
    return train_play_model(tmp_path_factory.mktemp("play_word"), "word")


@pytest.fixture(scope="session")
def play_bpe_checkpoint(tmp_path_factory) -> Path:
    return train_play_model(tmp_path_factory.mktemp("play_bpe"), "bpe")
