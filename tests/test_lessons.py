"""The lessons, run on a tiny model: each saves its figure and returns numbers that agree with the maths."""
import math
import warnings

import pytest
import torch
import yaml

from core.config import load_config, parse_overrides
from data.make_toy_corpus import BROKE
from data.toy_facts import LINE_START, PROBES
from inference import load_for_inference, trace
from inference import continuation_prob
from lessons import attend, common, embed, feedforward, heads, position, sample, tokenize, train
from lessons.common import SENTENCES, Context
from model.sampling import next_token_probs
from tests.conftest import ROOT, run_cli, tiny_overrides
from training import toy
from training.trainer import train as train_model


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A tiny model trained for a few steps on the first lines of the toy corpus (so every prompt's characters are
    in its vocabulary), with a context long enough for the lessons' sentences."""
    tmp = tmp_path_factory.mktemp("lessons")
    corpus = tmp / "corpus.txt"
    lines = (ROOT / "data" / "toy_corpus.txt").read_text(encoding="utf-8").splitlines()[:300]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = load_config(None, tiny_overrides(tmp / "run", corpus, **{"model.block_size": 48, "train.max_iters": 20,
                                                                    "train.eval_interval": 20}))
    train_model(cfg, progress=False, log=lambda *_: None)
    return tmp / "run" / "best.pt"


@pytest.fixture
def ctx(tiny_checkpoint, tmp_path):
    return Context(load_for_inference(tiny_checkpoint), tmp_path / "figures", say=lambda *_: None)


def test_trace_gives_the_models_own_logits(ctx):
    text = LINE_START + "He broke the glass."
    t = trace(ctx.loaded, text)
    logits, _ = ctx.loaded.model(torch.tensor([ctx.loaded.tokenizer.encode(text)]))
    assert torch.allclose(t.logits, logits[0], atol=1e-5)
    assert len(t.attention) == len(t.after_attention) == len(t.ffn_out) == len(t.residual) == ctx.loaded.cfg.model.n_layer
    assert torch.allclose(t.residual[0], t.after_attention[0] + t.ffn_out[0])       # the FFN adds its change


def test_continuation_prob_is_the_product_of_next_token_probabilities(ctx):
    model, tok = ctx.loaded.model, ctx.loaded.tokenizer
    expected = 1.0
    for i, char in enumerate(" dog"):
        logits, _ = model(torch.tensor([tok.encode("\nThis animal is a" + " dog"[:i])]))
        expected *= next_token_probs(logits[:, -1, :])[0, tok.encode(char)[0]].item()
    assert continuation_prob(model, tok, "\nThis animal is a", " dog") == pytest.approx(expected, rel=1e-4)


def test_tokenize_round_trips_every_tokenizer(ctx):
    r = tokenize.run(ctx)
    assert r["figure"].is_file()
    kinds = r["tokenizers"]
    assert all(k["round_trip"] for k in kinds.values())
    assert kinds["char"]["count"] == len(r["sentence"])
    bpe = next(v for name, v in kinds.items() if name.startswith("bpe"))
    assert bpe["count"] < kinds["char"]["count"] and "".join(bpe["tokens"]) == r["sentence"]


def test_embed_neighbours_and_projection(ctx):
    r = embed.run(ctx)
    assert r["figure"].is_file()
    V = ctx.loaded.tokenizer.vocab_size
    assert r["projection"].shape == (V, 2)
    for token, neighbours in r["neighbours"].items():
        assert token not in [n for n, _ in neighbours]
        sims = [s for _, s in neighbours]
        assert sims == sorted(sims, reverse=True) and all(-1 <= s <= 1 for s in sims)
    for definition in r["by_definition"].values():
        assert definition["matrix"].shape == (len(r["words"]),) * 2
        assert torch.allclose(definition["matrix"].diagonal(), torch.ones(len(r["words"])), atol=1e-5)
        assert -1 <= definition["dog_cat"] <= 1 and -1 <= definition["dog_glass"] <= 1


def test_a_bpe_checkpoints_byte_tokens_draw_without_missing_glyphs(play_bpe_checkpoint, tmp_path):
    """The 256 byte tokens of a bpe vocabulary include control bytes no font draws: the figures write them as
    \\xNN instead of warning once per glyph."""
    bpe = Context(load_for_inference(play_bpe_checkpoint), tmp_path, say=lambda *_: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embed.run(bpe)
    assert not [w for w in caught if "Glyph" in str(w.message)]
    assert common.show_token("\x00 \n\t") == "\\x00␣⏎\\x09"


def test_position_table_is_the_formula_and_both_short_runs_are_measured(ctx):
    facts = [f for f in position.toy_facts() if f[0] == "order"][:6]
    r = position.run(ctx, steps=4, facts=facts)
    assert r["figure"].is_file()
    table = r["pe_table"]
    T, d = table.shape
    pos = torch.arange(T, dtype=torch.float64).unsqueeze(1)                  # (T, 1)
    i = torch.arange(d // 2, dtype=torch.float64)                             # (d/2,)
    angle = pos / 10000 ** (2 * i / d)
    assert torch.allclose(table[:, 0::2].double(), torch.sin(angle), atol=1e-5)
    assert torch.allclose(table[:, 1::2].double(), torch.cos(angle), atol=1e-5)
    assert len(r["results"]) == 3
    for result in r["results"].values():
        assert 0 <= result["accuracy"] <= 1 and 0 <= result["same_answer_share"] <= 1 and len(result["pair"]) == 2


def test_attend_rows_sum_to_one_and_the_causal_vector_at_broke_is_shared(ctx):
    r = attend.run(ctx)
    assert r["figure"].is_file() and r["single_head_gap"] < 1e-5       # SelfAttention.from_head = the model's head
    for w in r["weights"]:
        assert torch.allclose(w.sum(-1), torch.ones(w.size(0)), atol=1e-5)
        assert torch.equal(w.triu(1), torch.zeros_like(w))                   # nothing looks at the future
    assert r["cos_at_broke"] == pytest.approx(1.0, abs=1e-5)                 # same prefix, same vector
    assert -1 <= r["cos_final"] <= 1 + 1e-6


def test_heads_are_compared_with_a_symmetric_divergence(ctx):
    r = heads.run(ctx)
    assert r["figure"].is_file()
    maps, div = r["maps"], r["divergence"]
    cfg = ctx.loaded.cfg.model
    assert maps.shape[:2] == (cfg.n_layer, cfg.n_head)
    assert torch.allclose(maps.sum(-1), torch.ones(maps.shape[:-1]), atol=1e-5)
    assert torch.equal(div, div.T) and torch.all(div.diagonal() == 0)
    assert torch.all((div >= 0) & (div <= 1 + 1e-6)) and 0 <= r["mean_divergence"] <= 1
    assert heads.js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(1.0)
    for layer in r["habits"]:
        for h in layer:
            assert all(0 <= h[k] <= 1 for k in ("previous", "itself", "line start")) and h["mean distance"] >= 0


def test_feedforward_shapes_and_top_units(ctx):
    r = feedforward.run(ctx)
    assert r["figure"].is_file()
    cfg = ctx.loaded.cfg.model
    T = len(r["tokens"])
    assert r["norms"].shape == (cfg.n_layer, T) and torch.all(r["norms"] >= 0)
    assert r["hidden_shape"] == (T, cfg.ffn_mult * cfg.n_embd) and r["out_shape"] == (T, cfg.n_embd)
    for units in r["top_units"]:
        values = [v for _, v in units]
        assert values == sorted(values, reverse=True)
    assert 0 <= r["p_expected"] <= 1 and len(r["p_expected_without"]) == cfg.n_layer


def test_train_lesson_records_loss_and_probabilities(ctx):
    r = train.run(ctx, max_steps=6, every=3)
    assert r["figure"].is_file()
    assert [h["step"] for h in r["history"]] == [0, 3, 6] and len(r["losses"]) == 6
    for h in r["history"]:
        assert 0 < h[" dog"] < 1 and 0 < h["4"] < 1
    assert r["losses"][0] == pytest.approx(math.log(ctx.loaded.tokenizer.vocab_size), rel=0.2)   # a fresh model guesses


def test_sample_probabilities_sum_to_one_and_entropy_grows_with_temperature(ctx):
    r = sample.run(ctx, samples=2, max_new_tokens=12)
    assert r["figure"].is_file()
    temps = r["temperatures"]
    for t in temps.values():
        assert t["probs"].sum().item() == pytest.approx(1.0, abs=1e-5)
        assert all(line.startswith(r["prompt"]) for line in t["samples"])
    entropies = [temps[t]["entropy_bits"] for t in sorted(temps)]
    assert entropies[0] == 0.0 and entropies == sorted(entropies) and entropies[-1] > entropies[1]
    assert sample.run(ctx, samples=2, max_new_tokens=12)["temperatures"][1.0]["samples"] == temps[1.0]["samples"]


def test_without_a_checkpoint_the_toy_model_is_trained_first(tmp_path, corpus, monkeypatch):
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump(parse_overrides(tiny_overrides(tmp_path / "run", corpus))), encoding="utf-8")
    monkeypatch.setattr(toy, "TOY_CONFIG", config)
    said = []
    ctx = common.load_context(None, tmp_path / "figures", say=said.append)
    assert said[0].startswith(f"{tmp_path / 'run' / 'best.pt'} not found: training the toy model first")
    assert ctx.loaded.cfg.train.out_dir == str(tmp_path / "run")
    said.clear()
    common.load_context(None, tmp_path / "figures", say=said.append)
    assert said == []                                                        # trained once, then reused


def test_learn_cli_runs_a_lesson_and_fails_cleanly(tiny_checkpoint, tmp_path):
    ok = run_cli("learn.py", "tokenize", "--checkpoint", tiny_checkpoint, "--out", tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "decode(ids) == sentence: True" in ok.stdout and (tmp_path / "1_tokenize.png").is_file()
    bad = run_cli("learn.py", "attend", "--checkpoint", tmp_path / "missing.pt")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "does not exist" in bad.stderr


@pytest.mark.slow
def test_the_toy_model_shows_what_the_lessons_claim(tmp_path):
    """Train the real toy model, then check the facts the lessons print about it."""
    cfg = load_config(ROOT / "configs" / "toy.yaml", [f"train.out_dir={tmp_path / 'toy'}", "train.device=cpu",
                                                      f"data.path={ROOT / 'data' / 'toy_corpus.txt'}",
                                                      f"data.cache_dir={tmp_path / 'cache'}"])
    train_model(cfg, progress=False, log=lambda *_: None)
    ctx = Context(load_for_inference(tmp_path / "toy" / "best.pt"), tmp_path / "figures", say=lambda *_: None)

    words = embed.run(ctx)["by_definition"]["context"]
    assert words["dog_cat"] > words["dog_glass"] and words["animal_animal"] > words["animal_other"]

    order = position.order_test(ctx.loaded, [f for f in position.toy_facts() if f[0] == "order"])
    assert order["accuracy"] >= 0.95 and order["pair"] == [" dog", " cat"]

    context = attend.run(ctx)
    assert context["cos_at_broke"] == pytest.approx(1.0, abs=1e-5) and context["cos_final"] < 0.9
    for sentence, token in zip(SENTENCES, context["next_tokens"]):   # the start of a line that follows it
        thing = sentence.split()[-1].rstrip(".")
        assert token in {follow.format(P="He")[0] for follow in BROKE[thing]}, (sentence, token)

    learned = train.run(ctx, questions=PROBES[:1])
    assert learned["reached"] and learned["final"]["probs"][" dog"] >= 0.9
