"""The lessons, run on two tiny models, one reading characters and one reading words: each lesson saves its figure
and returns numbers that agree with the maths, whichever tokens the model reads."""
import itertools
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
import yaml

from core.config import load_config, parse_overrides
from data.make_toy_corpus import BROKE
from data.tokenization import WordTokenizer
from data.toy_facts import LINE_START, PROBES
from inference import continuation_prob, encode_prompt, load_for_inference, trace, word_tokens
from lessons import attend, common, embed, feedforward, heads, position, sample, tokenize, train
from lessons.common import SENTENCES, Context
from model.sampling import next_token_probs
from tests.conftest import ROOT, run_cli, tiny_overrides
from training import toy
from training.trainer import train as train_model


def tiny_lesson_model(tmp_path_factory, tokenizer: str):
    """A tiny model trained for a few steps on the first lines of the toy corpus (so every prompt's characters and
    words are in its vocabulary), with a context long enough for the lessons' sentences (both word-order questions:
    65 characters)."""
    tmp = tmp_path_factory.mktemp(f"lessons_{tokenizer}")
    corpus = tmp / "corpus.txt"
    lines = (ROOT / "data" / "toy_corpus.txt").read_text(encoding="utf-8").splitlines()[:300]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = load_config(None, tiny_overrides(tmp / "run", corpus, **{"model.block_size": 80, "train.max_iters": 20,
                                                                    "train.eval_interval": 20,
                                                                    "data.tokenizer": tokenizer}))
    train_model(cfg, progress=False, log=lambda *_: None)
    return tmp / "run" / "best.pt"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return tiny_lesson_model(tmp_path_factory, "char")


@pytest.fixture(scope="module")
def tiny_word_checkpoint(tmp_path_factory):
    return tiny_lesson_model(tmp_path_factory, "word")


@pytest.fixture(params=["char", "word"])
def ctx(request, tmp_path):
    """The lessons' context on the tiny char model, then on the tiny word model."""
    checkpoint = request.getfixturevalue("tiny_checkpoint" if request.param == "char" else "tiny_word_checkpoint")
    return Context(load_for_inference(checkpoint), tmp_path / "figures", say=lambda *_: None)


def test_trace_gives_the_models_own_logits(ctx):
    text = LINE_START + "He broke the glass."
    t = trace(ctx.loaded, text)
    logits, _ = ctx.loaded.model(torch.tensor([ctx.loaded.tokenizer.encode(text)]))
    assert torch.allclose(t.logits, logits[0, -1:], atol=1e-5)                         # the last position's
    assert len(t.attention) == len(t.after_attention) == len(t.ffn_out) == len(t.residual) == ctx.loaded.cfg.model.n_layer
    assert torch.allclose(t.residual[0], t.after_attention[0] + t.ffn_out[0])       # the FFN adds its change


def test_continuation_prob_is_the_product_of_next_token_probabilities(ctx):
    model, tok = ctx.loaded.model, ctx.loaded.tokenizer
    prompt, answer = tok.encode("\nThis animal is a"), tok.encode(" dog")
    assert len(answer) == {"char": 4, "word": 1}[tok.kind]              # " ", "d", "o", "g" or " dog"
    expected = 1.0
    for i, token in enumerate(answer):
        logits, _ = model(torch.tensor([prompt + answer[:i]]))
        expected *= next_token_probs(logits[:, -1, :])[0, token].item()
    assert continuation_prob(model, tok, "\nThis animal is a", " dog") == pytest.approx(expected, rel=1e-4)


def test_tokenize_round_trips_every_tokenizer(ctx):
    r = tokenize.run(ctx)
    assert r["figure"].is_file()
    kinds = r["tokenizers"]
    assert all(k["round_trip"] for k in kinds.values())
    assert kinds["char"]["count"] == len(r["sentence"])
    bpe = next(v for name, v in kinds.items() if name.startswith("bpe"))
    assert bpe["count"] < kinds["char"]["count"] and "".join(bpe["tokens"]) == r["sentence"]
    # "The" " dog" " chased" " the" " cat" "." " Who" " chased" "?" " the" " dog" ".": a word with its space
    assert kinds["word"]["tokens"] == WordTokenizer.split(r["sentence"]) and kinds["word"]["count"] == 12
    assert set(kinds) >= {"char", "word"} and not any(name.startswith("this checkpoint") for name in kinds)


def test_embed_neighbours_and_projection(ctx):
    r = embed.run(ctx)
    assert r["figure"].is_file()
    tok, table = ctx.loaded.tokenizer, ctx.loaded.model.embed.token.weight.detach()    # (V, C)
    assert r["projection"].shape == (tok.vocab_size, 2)
    unit = F.normalize(table, dim=-1)
    for token, neighbours in r["neighbours"].items():              # the k rows of highest cosine, itself left out
        index = tok.encode(token)[0]
        cos = unit @ unit[index]                                                            # (V,)
        cos[index] = -2.0
        assert token not in [n for n, _ in neighbours]
        assert [s for _, s in neighbours] == pytest.approx(cos.topk(len(neighbours)).values.tolist(), abs=1e-5)
        assert all(cos[tok.encode(n)[0]].item() == pytest.approx(s, abs=1e-5) for n, s in neighbours)
    # the probes are words where each is one token (a word model), else characters
    probes = {"char": embed.PROBE_CHARACTERS, "word": embed.PROBE_WORDS}[tok.kind]
    assert len(r["neighbours"]) >= 3 and set(r["neighbours"]) <= set(probes)
    # a word's two vectors, as the lesson defines them: the mean of the rows of the tokens it is read as (its letters
    # for a char model; for a word model its own row); the final-layer vector at its last token in "The WORD"
    spelled = {"char": ["d", "o", "g"], "word": [" dog"]}[tok.kind]
    assert tok.token_strings(word_tokens(tok, "dog")) == spelled and r["one_token_each"] == (tok.kind == "word")
    vectors = {"table": lambda w: table[word_tokens(tok, w)].mean(0),
               "context": lambda w: trace(ctx.loaded, LINE_START + "The " + w).final[-1]}
    for name, vector in vectors.items():
        definition = r["by_definition"][name]
        cos = {(a, b): F.cosine_similarity(vector(a), vector(b), dim=0).item()
               for a in embed.ANIMALS for b in r["words"]}
        assert definition["matrix"].shape == (len(r["words"]),) * 2
        assert definition["dog_cat"] == pytest.approx(cos["dog", "cat"], abs=1e-5)
        assert definition["dog_banana"] == pytest.approx(cos["dog", "banana"], abs=1e-5)
        within = [cos[a, b] for a, b in itertools.combinations(embed.ANIMALS, 2)]
        between = [cos[a, b] for a in embed.ANIMALS for b in embed.OTHERS]
        assert definition["animal_animal"] == pytest.approx(sum(within) / len(within), abs=1e-5)
        assert definition["animal_other"] == pytest.approx(sum(between) / len(between), abs=1e-5)
    if tok.kind == "word":                     # cos(" dog", " cat") read straight from two rows of the table
        dog, cat = (table[tok.encode(w)[0]] for w in (" dog", " cat"))
        assert r["by_definition"]["table"]["dog_cat"] == pytest.approx(F.cosine_similarity(dog, cat, dim=0).item(),
                                                                        abs=1e-5)


def test_a_bpe_checkpoints_byte_tokens_draw_without_missing_glyphs(play_bpe_checkpoint, tmp_path):
    """The 256 byte tokens of a bpe vocabulary include control bytes no font draws: the figures write them as
    \\xNN instead of warning once per glyph."""
    bpe = Context(load_for_inference(play_bpe_checkpoint), tmp_path, say=lambda *_: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embed.run(bpe)
    assert not [w for w in caught if "Glyph" in str(w.message)]
    assert common.show_token("\x00 \n\t") == "\\x00␣⏎\\x09"


def test_position_table_is_the_formula_and_the_four_encodings_are_measured(tiny_word_checkpoint, tmp_path):
    ctx = Context(load_for_inference(tiny_word_checkpoint), tmp_path / "figures", say=lambda *_: None)
    facts = [f for q in position.QUESTIONS for f in position.toy_facts() if f[0] == q][::56]        # 4 + 4
    assert [f[0] for f in facts] == ["order: who did it"] * 4 + ["order: to whom"] * 4
    r = position.run(ctx, steps=4, facts=facts, texts=1)
    assert r["figure"].is_file()
    table = r["pe_table"]
    T, d = table.shape
    pos = torch.arange(T, dtype=torch.float64).unsqueeze(1)                  # (T, 1)
    i = torch.arange(d // 2, dtype=torch.float64)                             # (d/2,)
    angle = pos / 10000 ** (2 * i / d)
    assert torch.allclose(table[:, 0::2].double(), torch.sin(angle), atol=1e-5)
    assert torch.allclose(table[:, 1::2].double(), torch.cos(angle), atol=1e-5)
    trained = [f"2 blocks, {kind}, 4 steps" for kind in position.ENCODINGS]
    assert list(r["results"]) == ["this checkpoint: 2 blocks, sinusoidal", "1 block, none, 4 steps", *trained]
    one = r["results"]["1 block, none, 4 steps"]             # whatever its training: the same answer to both orders
    assert one["same_answer_share"] == 1.0 and one["pair"][0] == one["pair"][1]
    for result in r["results"].values():                     # both questions asked, each a share of 4 facts
        assert result["accuracy"] in {0, 0.25, 0.5, 0.75, 1} and result["accuracy_to_whom"] in {0, 0.25, 0.5, 0.75, 1}
    for name in ["1 block, none, 4 steps", *trained]:
        result = r["results"][name]
        assert 0 < result["val_loss"] < 10 and 0 < result["window"] < 10
        if ", learned," in name:                             # no rows past its table: read a window at a time only
            assert result["by_position"] is result["inside"] is result["beyond"] is None
            continue
        by_position = result["by_position"]
        assert by_position.shape == (2 * T - 1,)
        assert result["inside"] == pytest.approx(by_position[:T].mean().item())
        assert result["beyond"] == pytest.approx(by_position[T:].mean().item())
    assert position.swapped(facts[4][1]) == "The cat chased the dog. Who chased? the cat. Who was chased? the"


@pytest.mark.parametrize("positional", ["sinusoidal", "rope", "none", "learned"])
def test_a_longer_context_computes_the_same_inside_the_old_one_and_the_window_loss_is_per_token(positional):
    """``longer_context``: the same weights, the same logits at the positions the short model has (a learned table
    has no rows past its own: None). ``extrapolation``'s window loss is each token read after the T - 1 before it."""
    from core.config import Config
    from inference import Loaded
    from model import GPT, ModelConfig
    torch.manual_seed(4)
    cfg = ModelConfig(block_size=8, n_layer=2, n_head=2, n_embd=16, positional=positional)
    model = GPT(cfg, vocab_size=13).eval()
    texts = torch.randint(0, 13, (3, 16))
    longer = position.longer_context(model, 15)
    with torch.no_grad():
        if positional == "learned":
            assert longer is None
        else:
            assert torch.allclose(longer(texts[:, :8])[0], model(texts[:, :8])[0], atol=1e-6)
            assert torch.allclose(longer(texts[:, :15])[0][:, :8], model(texts[:, :8])[0], atol=1e-5)
        got = position.extrapolation(Loaded(model, None, Config(model=cfg), torch.device("cpu")), texts)
        losses = [F.cross_entropy(model(texts[:, t - 7 : t + 1])[0][:, -1], texts[:, t + 1], reduction="none")
                  for t in range(8, 15)]                     # target t + 1 after the 8 tokens ending at t
    assert got["window"] == pytest.approx(torch.cat(losses).mean().item(), rel=1e-5)
    assert (got["beyond"] is None) == (positional == "learned")


def test_without_positions_one_block_gives_both_word_orders_the_same_prediction(ctx, tmp_path):
    """The position lesson's claim, exact for any weights: one block without positions gives the last token of
    "The dog chased the cat. Who chased? the" and of its swapped twin the same vector, so the same next token. A
    second block (through the causal mask) or the positional encoding tells the two apart."""
    corpus = position.order_corpus(tmp_path / "order.txt", seed=0)

    def last_logits(loaded):                                                         # each (V,)
        return [loaded.model(torch.tensor([encode_prompt(loaded, LINE_START + p)]))[0][0, -1] for p in position.PAIR]

    first, swapped = last_logits(position.short_run(ctx, 1, 4, tmp_path, corpus))
    assert (first - swapped).abs().max().item() < 1e-6                   # rounding alone (3e-8 when measured)
    for loaded in (position.short_run(ctx, 2, 4, tmp_path, corpus), ctx.loaded):
        first, swapped = last_logits(loaded)
        assert (first - swapped).abs().max().item() > 1e-5               # 7e-5 and 1e-4, barely trained as they are


def test_attend_rows_sum_to_one_and_the_causal_vector_at_broke_is_shared(ctx):
    r = attend.run(ctx)
    assert r["figure"].is_file() and r["single_head_gap"] < 1e-5       # SelfAttention.from_head = the model's head
    for w in r["weights"]:
        assert torch.allclose(w.sum(-1), torch.ones(w.size(0)), atol=1e-5)
        assert torch.equal(w.triu(1), torch.zeros_like(w))                   # nothing looks at the future
    assert r["cos_at_broke"] == pytest.approx(1.0, abs=1e-5)                 # same prefix, same vector
    # the next sentence is chosen at the full stop by a word model (" He" is one token), after the space by a char one
    assert r["sentences"] == {"char": tuple(s + " " for s in SENTENCES), "word": SENTENCES}[ctx.loaded.tokenizer.kind]
    glass, news = (trace(ctx.loaded, LINE_START + s).final[-1] for s in r["sentences"])
    assert r["cos_final"] == pytest.approx(F.cosine_similarity(glass, news, dim=0).item(), abs=1e-5)
    assert (glass - news).abs().max().item() > 1e-4           # at the last token the object has changed the vector
    # (measured on these barely trained models: 2e-3 for words, more for characters; rounding alone gives 1e-7)


def test_heads_are_compared_with_a_symmetric_divergence(ctx):
    r = heads.run(ctx)
    assert r["figure"].is_file()
    maps, div = r["maps"], r["divergence"]
    cfg = ctx.loaded.cfg.model
    assert maps.shape[:2] == (cfg.n_layer, cfg.n_head)
    assert torch.allclose(maps.sum(-1), torch.ones(maps.shape[:-1]), atol=1e-5)
    assert torch.equal(div, div.T) and torch.all(div.diagonal() == 0)
    assert torch.all((div >= 0) & (div <= 1 + 1e-6))
    pairs = [div[a, b].item() for a, b in itertools.permutations(range(div.size(0)), 2)]
    assert r["mean_divergence"] == pytest.approx(sum(pairs) / len(pairs), abs=1e-6)
    assert heads.js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(1.0)
    assert heads.js_divergence(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5])).item() == 0.0
    tokens = trace(ctx.loaded, LINE_START + SENTENCES[0]).tokens
    assert r["habits"] == [[heads.habits(maps[l, h], tokens) for h in range(cfg.n_head)] for l in range(cfg.n_layer)]
    from inference import head_habits                 # the playground's Attention panel captions its heads with it
    assert heads.head_habits is head_habits and r["habits"] == head_habits(trace(ctx.loaded, LINE_START + SENTENCES[0]))


def test_a_heads_habits_name_where_it_looks():
    tokens = ["\n", "H", "e", " ", "b", "r", "o", "k", "e"]
    T = len(tokens)
    previous = torch.eye(T).roll(-1, dims=1).tril()                       # row i: all on i − 1 (row 0 on itself)
    previous[0, 0] = 1.0
    habits = heads.habits(previous, tokens)
    assert (habits["previous"], habits["itself"], habits["mean distance"]) == (1.0, 0.0, 1.0)
    assert habits["line start"] == pytest.approx(1 / (T - 1))             # only row 1's previous token is the start
    assert heads.describe(habits).startswith("mostly the previous token (100%)")
    start = torch.zeros(T, T)
    start[:, 0] = 1.0                                                     # every row on the line start
    habits = heads.habits(start, tokens)
    assert (habits["line start"], habits["previous"]) == (1.0, pytest.approx(1 / (T - 1)))
    assert habits["mean distance"] == pytest.approx(sum(range(1, T)) / (T - 1))
    assert habits["word start"] == 0.0                                  # "He" starts after the line start
    assert "word start" in heads.places(tokens)                           # "broke" is five tokens here


def test_a_word_models_heads_are_not_told_by_their_words_first_token():
    """Every word of a word model is one token (its space included): its word's first token is the token itself,
    so that place is left out of the habits; a mark belongs to the word before it."""
    tokens = ["\n", "He", " broke", " the", " glass", "."]
    assert heads.word_starts(tokens) == [0, 1, 2, 3, 4, 4]
    assert "word start" not in heads.places(tokens)
    only_itself = torch.eye(len(tokens))
    assert heads.describe(heads.habits(only_itself, tokens), heads.places(tokens)).startswith("mostly itself (100%)")


def test_feedforward_shapes_and_top_units(ctx):
    r = feedforward.run(ctx)
    assert r["figure"].is_file()
    cfg = ctx.loaded.cfg.model
    T = len(r["tokens"])
    assert r["hidden_shape"] == (T, cfg.ffn_mult * cfg.n_embd) and r["out_shape"] == (T, cfg.n_embd)
    t = trace(ctx.loaded, LINE_START + r["prompt"])
    changes = torch.stack([after - before for after, before in zip(t.residual, t.after_attention)])  # (n_layer, T, C)
    assert torch.allclose(r["norms"], changes.norm(dim=-1), atol=1e-5)       # the size of what each FFN adds
    for units, hidden in zip(r["top_units"], t.ffn_hidden):                   # the hardest-firing units at the end
        assert [v for _, v in units] == pytest.approx(hidden[-1].topk(len(units)).values.tolist(), abs=1e-6)
    # P(" dog" next) for a word model, P("d" next) after "is a " for a char model, with every FFN and with one block's
    # FFN output replaced by zeros: leaving one out changes it
    tok = ctx.loaded.tokenizer
    assert (r["prompt"], r["expected"]) == {"char": (feedforward.PROMPT + " ", "d"),
                                            "word": (feedforward.PROMPT, " dog")}[tok.kind]
    ids = torch.tensor([tok.encode(LINE_START + r["prompt"])])
    expected = tok.encode(r["expected"])[0]

    def p_expected() -> float:
        return ctx.loaded.model(ids)[0][0, -1].softmax(-1)[expected].item()

    assert r["p_expected"] == pytest.approx(p_expected(), rel=1e-4)
    assert len(r["p_expected_without"]) == cfg.n_layer
    for block, p_without in zip(ctx.loaded.model.blocks, r["p_expected_without"]):
        handle = block.ffn.register_forward_hook(lambda ffn, args, out: torch.zeros_like(out))
        try:
            assert p_without == pytest.approx(p_expected(), rel=1e-4)
        finally:
            handle.remove()
        assert p_without != pytest.approx(r["p_expected"], rel=1e-3)


def test_train_lesson_records_loss_and_probabilities(ctx):
    r = train.run(ctx, max_steps=6, every=3)
    assert r["figure"].is_file()
    assert [h["step"] for h in r["history"]] == [0, 3, 6] and len(r["losses"]) == 6
    # a fresh model guesses about uniformly over the fact lines' V tokens: P(" dog") ≈ (1/V)^n for its n tokens (four
    # characters, or one word)
    V, n = r["vocab_size"], {"char": 4, "word": 1}[ctx.loaded.tokenizer.kind]
    assert math.log(r["history"][0][" dog"]) == pytest.approx(-n * math.log(V), abs=0.3 * n)
    assert r["losses"][0] == pytest.approx(math.log(V), rel=0.2)
    assert r["losses"][-1] < r["losses"][0]                                   # and six steps lower its loss


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
    monkeypatch.setitem(toy.TOY_CONFIGS, "word", config)
    said = []
    ctx = common.load_context(None, tmp_path / "figures", say=said.append)
    assert said[0].startswith(f"{tmp_path / 'run' / 'best.pt'} not found: training the word toy model first")
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
@pytest.mark.parametrize("config", ["toy_words.yaml", "toy.yaml"])
def test_the_toy_model_shows_what_the_lessons_claim(tmp_path, config):
    """Train a real toy model (words, then characters), then check the facts the lessons print about it."""
    cfg = load_config(ROOT / "configs" / config, [f"train.out_dir={tmp_path / 'toy'}", "train.device=cpu",
                                                  f"data.path={ROOT / 'data' / 'toy_corpus.txt'}",
                                                  f"data.cache_dir={tmp_path / 'cache'}"])
    train_model(cfg, progress=False, log=lambda *_: None)
    ctx = Context(load_for_inference(tmp_path / "toy" / "best.pt"), tmp_path / "figures", say=lambda *_: None)
    tok = ctx.loaded.tokenizer

    words = embed.run(ctx)["by_definition"]
    assert words["context"]["dog_cat"] > words["context"]["dog_banana"]
    assert words["context"]["animal_animal"] > words["context"]["animal_other"]
    if tok.kind == "word":                  # " dog" and " cat" have their own rows, learned near each other
        assert words["table"]["dog_cat"] > words["table"]["dog_banana"] + 0.2
        assert words["table"]["animal_animal"] > words["table"]["animal_other"] + 0.2

    order = position.order_test(ctx.loaded, [f for f in position.toy_facts() if f[0] in position.QUESTIONS])
    assert order["accuracy"] >= 0.95 and order["accuracy_to_whom"] >= 0.95 and order["pair"] == [" dog", " cat"]

    context = attend.run(ctx)
    assert context["cos_at_broke"] == pytest.approx(1.0, abs=1e-5) and context["cos_final"] < 0.9
    for sentence, token in zip(context["sentences"], context["next_tokens"]):   # the start of a line that follows it
        thing = sentence.split()[-1].rstrip(".")
        starts = {tok.decode(tok.encode(LINE_START + sentence.rstrip() + " " + follow.format(P="He"))
                             [len(tok.encode(LINE_START + sentence))]) for follow in BROKE[thing]}
        assert token in starts, (sentence, token)

    learned = train.run(ctx, questions=PROBES[:1])
    assert learned["reached"] and learned["final"]["probs"][" dog"] >= 0.9


@pytest.mark.fast
def test_the_page_and_the_lessons_point_to_each_other():
    """Each lesson names the page's panel that shows the same (learn.py prints it under the lesson's title), and
    that panel names the lesson's command."""
    import importlib
    import re

    from lessons import ORDER
    from tests.conftest import ROOT

    page = (ROOT / "playground" / "static" / "index.html").read_text(encoding="utf-8")
    titles = dict(re.findall(r'<span class="step">(\d)</span> ([\w-]+)', page))
    sections = re.split(r'<section id="[\w-]+" class="panel', page)
    for name in ORDER:
        panel = importlib.import_module(f"lessons.{name}").PANEL
        number, title = re.match(r"(\d) ([\w-]+)", panel).groups()
        assert titles[number] == title, (name, panel)
        section = next(s for s in sections if f'<span class="step">{number}</span>' in s)
        assert f"python learn.py {name}" in section, (name, number)
    assert "{lesson.PANEL}" in (ROOT / "learn.py").read_text(encoding="utf-8")
