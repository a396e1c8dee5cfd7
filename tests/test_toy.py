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
    from facts import TARGETS
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


@pytest.mark.parametrize("kind", ["char", "word"])
def test_the_batched_evaluation_asks_as_one_greedy_generation_per_fact_would(kind, play_checkpoint,
                                                                          play_word_checkpoint):
    """evaluate_facts runs the facts of equal token length as one batch: each continuation is still the fact's own
    greedy one (inference.greedy_text, a prompt at a time), and a question longer than the context is a fact not
    known, never an error (the char test model's context, 64, is shorter than the order lines)."""
    from facts import TOO_LONG, evaluate_facts
    from inference import greedy_text, load_for_inference

    loaded = load_for_inference(play_checkpoint if kind == "char" else play_word_checkpoint)
    facts = [f for f in toy_facts() if f[0] in {"sum", "animal", "order: to whom"}][::7]
    results = evaluate_facts(loaded, facts)
    failed = {prompt: got for entry in results.values() for prompt, _, got in entry["failures"]}
    for category, prompt, expected in facts:
        if len(loaded.tokenizer.encode("\n" + prompt)) > loaded.cfg.model.block_size:
            assert failed[prompt] == TOO_LONG
            continue
        answers = expected if isinstance(expected, tuple) else (expected,)
        one = greedy_text(loaded, "\n" + prompt, min_chars=max(map(len, answers)) + 1)
        assert (prompt not in failed) == fact_known(one, expected), (prompt, one, failed.get(prompt))
    assert (kind == "char") == any(got == TOO_LONG for got in failed.values())
    assert sum(e["total"] for e in results.values()) == len(facts)


@pytest.mark.slow
def test_the_toy_model_learns_its_facts(tmp_path):
    """What `make demo` promises: the toy config, trained from scratch, meets every target of toy_eval.py."""
    from facts import TARGETS, evaluate_facts
    from core.config import load_config
    from inference import load_for_inference
    from training.trainer import train

    cfg = load_config(ROOT / "configs" / "toy.yaml", [f"train.out_dir={tmp_path / 'toy'}",
                                                      f"data.cache_dir={tmp_path / 'cache'}"])
    train(cfg, progress=False, log=lambda *_: None)
    results = evaluate_facts(load_for_inference(tmp_path / "toy" / "best.pt"))
    for category, target in TARGETS.items():
        assert results[category]["accuracy"] >= target, (category, results[category]["failures"][:3])
