from pathlib import Path

import pytest

from data.make_toy_corpus import build_corpus
from data.toy_facts import fact_known, toy_facts

ROOT = Path(__file__).resolve().parent.parent


def test_committed_corpus_is_what_the_script_generates():
    assert (ROOT / "data" / "toy_corpus.txt").read_text(encoding="utf-8") == build_corpus()
    assert build_corpus(seed=1) != build_corpus()


def test_every_fact_is_taught_by_the_corpus():
    """Each fact's prompt and answer start a line of the corpus (for several answers, each does); a sum in a chain
    is the same sum after another one, and the corpus has it after a ". " in its chains."""
    from toy_eval import TARGETS
    lines = set(build_corpus().splitlines())
    facts = toy_facts()
    assert {c for c, _, _ in facts} == set(TARGETS)
    assert sum(c == "sum" for c, _, _ in facts) == sum(c == "sum in a chain" for c, _, _ in facts) == 100
    assert sum(c == "order: to whom" for c, _, _ in facts) == sum(c == "order: who did it" for c, _, _ in facts)
    for category, prompt, expected in facts:
        if category == "sum in a chain":
            asked = prompt.split(". ")[-1] + expected
            assert any(f". {asked}." in line for line in lines), prompt
            continue
        for answer in expected if isinstance(expected, tuple) else (expected,):
            assert any(line.startswith(prompt + answer) for line in lines), (prompt, answer)


def test_a_fact_is_known_only_with_a_whole_word():
    assert fact_known("4\n3+3=6", "4") and fact_known(" dog. Who", " dog")
    assert not fact_known("45", "4") and not fact_known(" dogs", " dog") and not fact_known(" cat", " dog")
    assert fact_known(" Mom started to cry.", (" Everyone went quiet.", " Mom started to cry."))
    assert not fact_known(" Mom swept up the pieces.", (" Everyone went quiet.", " Mom started to cry."))


@pytest.mark.slow
def test_the_toy_model_learns_its_facts(tmp_path):
    """What `make demo` promises: the toy config, trained from scratch, meets every target of toy_eval.py."""
    from toy_eval import TARGETS, evaluate_facts
    from core.config import load_config
    from inference import load_for_inference
    from training.trainer import train

    cfg = load_config(ROOT / "configs" / "toy.yaml", [f"train.out_dir={tmp_path / 'toy'}",
                                                      f"data.cache_dir={tmp_path / 'cache'}"])
    train(cfg, progress=False, log=lambda *_: None)
    results = evaluate_facts(load_for_inference(tmp_path / "toy" / "best.pt"))
    for category, target in TARGETS.items():
        assert results[category]["accuracy"] >= target, (category, results[category]["failures"][:3])
