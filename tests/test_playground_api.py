"""The playground's API: every number it sends equals the model's own, computed another way, and bad requests get
a one-line JSON error with a 4xx status. ``TestClient`` re-raises any server exception, so a 500 fails the test."""
import json
import re
import time
import urllib.request

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from core.config import Config, load_config
from data.tokenization import CharTokenizer, show_token
from inference import Loaded, load_for_inference, trace
from model import GPT, ModelConfig
from model.attention import SelfAttention
from model.sampling import next_token_probs
from play import is_loopback
from playground import views
from playground.load import start_server
from playground.server import MAX_BODY_BYTES, MAX_NEW_TOKENS, STATIC, create_app
from training.toy import TOY_CONFIGS
from tests.conftest import run_cli

SENTENCE = "He broke the glass."


@pytest.fixture(scope="module")
def loaded(play_checkpoint):
    return load_for_inference(play_checkpoint)


@pytest.fixture(scope="module")
def client(loaded, play_checkpoint):
    return TestClient(create_app(loaded, str(play_checkpoint)), base_url="http://127.0.0.1")


def post(client, path, **body):
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def attention_by_hooks(loaded, text):
    """The model's own forward pass, with each block's attention input caught by a hook and its weights computed
    from that input by the formula, softmax(q·kᵀ/√hs + causal mask), with the block's own Q and K weights:
    (n_layer, nh, T, T). Also the final LayerNorm's output."""
    inputs, final = [], []
    hooks = [block.attn.register_forward_hook(lambda m, args, out: inputs.append((m, args[0])))
             for block in loaded.model.blocks]
    hooks.append(loaded.model.norm.register_forward_hook(lambda m, args, out: final.append(out[0])))
    ids = loaded.tokenizer.encode(text)
    with torch.no_grad():
        loaded.model(torch.tensor([ids]))
        for hook in hooks:
            hook.remove()
        weights = torch.stack([weights_by_formula(m, x[0]) for m, x in inputs])
    return weights, final[0]


def weights_by_formula(attn, x):
    """x (T, C) → (nh, T, T)."""
    T, C = x.shape
    q, k, _ = attn.qkv(x).split(C, dim=-1)                                              # (T, C) each
    q, k = (t.view(T, attn.n_head, attn.head_size).transpose(0, 1) for t in (q, k))     # (nh, T, hs)
    scores = q @ k.transpose(1, 2) / attn.head_size ** 0.5                              # (nh, T, T)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def sse_events(text: str) -> list[tuple[str, dict]]:
    blocks = [b for b in text.split("\n\n") if b.strip()]
    found = [re.fullmatch(r"event: (\w+)\ndata: (.*)", b, re.S) for b in blocks]
    assert all(found), text
    return [(m.group(1), json.loads(m.group(2))) for m in found]


def generated(client, **body) -> str:
    response = client.post("/api/generate", json=body)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1][0] == "done" and all(e == "token" for e, _ in events[:-1])
    return "".join(data["text"] for _, data in events[:-1])


def test_model_card_describes_the_checkpoint(client, loaded, play_checkpoint):
    card = client.get("/api/model").json()
    ckpt = torch.load(play_checkpoint, weights_only=True)
    assert card["checkpoint"] == f"{play_checkpoint.parent.name}/best.pt"           # a name, never a path
    assert card["data"]["path"] == "toy_corpus.txt" and str(play_checkpoint.parent) not in str(card)
    assert card["step"] == ckpt["iter"] == 40 and card["best_val_loss"] == pytest.approx(ckpt["best_val"])
    assert card["parameters"] == sum(p.numel() for p in loaded.model.parameters())
    assert card["tokenizer"] == {"kind": "char", "vocab_size": loaded.tokenizer.vocab_size}
    assert card["model"]["n_layer"] == 2 and card["model"]["block_size"] == 64 and card["model"]["head_size"] == 16
    assert card["sample"]["prompt"] == loaded.cfg.sample.prompt


@pytest.mark.parametrize("which", ["char", "bpe"])
def test_tokens_are_the_tokenizers_own(which, play_checkpoint, play_bpe_checkpoint):
    checkpoint = play_checkpoint if which == "char" else play_bpe_checkpoint
    loaded = load_for_inference(checkpoint)
    client = TestClient(create_app(loaded, str(checkpoint)), base_url="http://127.0.0.1")
    text = "This animal barks. This animal is a"
    got = post(client, "/api/tokens", text=text)
    ids = loaded.tokenizer.encode(text)
    assert [t["id"] for t in got["tokens"]] == ids and got["count"] == len(ids) and got["tokenizer"] == which
    assert "".join(t["text"] for t in got["tokens"]) == text
    assert got["context"] == 64
    if which == "bpe":
        assert len(ids) < len(text)                        # merges: fewer tokens than characters


def test_attention_equals_the_formula_on_the_models_own_attention_inputs(client, loaded):
    got = post(client, "/api/attention", text=SENTENCE)
    reference, _ = attention_by_hooks(loaded, SENTENCE)                                  # (n_layer, nh, T, T)
    T = len(SENTENCE)
    assert got["tokens"] == list(SENTENCE) and got["n_layer"] == 2 and got["n_head"] == 2
    for layer in range(2):
        for head in range(2):
            rows = got["attention"][layer][head]
            assert [len(r) for r in rows] == list(range(1, T + 1))                        # keys 0..i only
            for i, row in enumerate(rows):
                assert sum(row) == pytest.approx(1.0, abs=T * 1e-4)
                assert row == pytest.approx(reference[layer, head, i, : i + 1].tolist(), abs=6e-5)
                assert not reference[layer, head, i, i + 1 :].any()                           # what was left out is 0


def test_compare_gives_both_stacks_and_the_cosine_of_the_last_layer(client, loaded):
    a, b = "He broke the glass.", "He broke the news."
    got = post(client, "/api/compare", text_a=a, text_b=b)
    (wa, fa), (wb, fb) = attention_by_hooks(loaded, a), attention_by_hooks(loaded, b)
    n = min(len(a), len(b))
    assert len(got["cosine"]) == n and got["first_difference"] == a.index("g")
    expected = F.cosine_similarity(fa[:n], fb[:n], dim=-1)
    assert got["cosine"] == pytest.approx(expected.tolist(), abs=6e-5)
    assert all(c == pytest.approx(1.0, abs=1e-4) for c in got["cosine"][: got["first_difference"]])   # looks back
    assert got["a"]["attention"][1][0][5] == pytest.approx(wa[1, 0, 5, :6].tolist(), abs=6e-5)
    assert got["b"]["attention"][0][1][-1] == pytest.approx(wb[0, 1, -1].tolist(), abs=6e-5)


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, None, None), (0.5, None, None), (2.0, None, None),
                                                       (0.0, None, None), (1.0, 5, None), (1.3, None, 0.6),
                                                       (0.8, 7, 0.9)])
def test_next_token_probabilities_equal_the_samplers(client, loaded, temperature, top_k, top_p):
    got = post(client, "/api/next", text=SENTENCE, temperature=temperature, top_k=top_k, top_p=top_p, k=10)
    with torch.no_grad():
        logits = loaded.model(torch.tensor([loaded.tokenizer.encode(SENTENCE)]))[0][0, -1]   # (V,)
    probs = next_token_probs(logits[None], temperature, top_k, top_p)[0]
    assert got["logits"] == pytest.approx(logits.tolist(), abs=1e-6)
    assert [t["id"] for t in got["top"]] == logits.topk(10).indices.tolist()
    for t in got["top"]:
        assert t["prob"] == pytest.approx(probs[t["id"]].item(), abs=6e-5)
        assert t["text"] == loaded.tokenizer.decode([t["id"]])
    nonzero = probs[probs > 0]
    assert got["entropy_bits"] == pytest.approx(-(nonzero * nonzero.log2()).sum().item(), abs=1e-5)
    if temperature == 0:
        assert got["entropy_bits"] == 0 and got["top"][0]["prob"] == 1


def test_one_keystroke_of_the_page_equals_the_four_endpoints_from_one_forward_pass(client, loaded):
    """/api/page answers tokens, attention (or the comparison), the next token's logits and the feed-forward view
    from one traced forward pass: the same numbers as asking each endpoint (logits within float error of the
    model's own forward). It computes no probabilities: the page applies its sampling settings to the logits."""
    passes = []
    hook = loaded.model.register_forward_hook(lambda *_: passes.append(1))
    try:
        page = post(client, "/api/page", text=SENTENCE)
    finally:
        hook.remove()
    assert len(passes) == 1
    assert page.keys() == {"tokens", "attention", "next", "feedforward", "head"} and page["head"] is None
    assert page["tokens"] == post(client, "/api/tokens", text=SENTENCE)
    assert page["attention"] == post(client, "/api/attention", text=SENTENCE)
    alone = post(client, "/api/next", text=SENTENCE, temperature=0.7, top_k=12, k=10)
    assert page["next"]["logits"] == pytest.approx(alone["logits"], abs=1e-5)
    assert [t["id"] for t in page["next"]["top"]] == [t["id"] for t in alone["top"]]
    assert all("prob" not in t for t in page["next"]["top"]) and "entropy_bits" not in page["next"]
    ffn = post(client, "/api/feedforward", text=SENTENCE)
    assert page["feedforward"]["with_all"] == ffn["with_all"] and page["feedforward"]["without"] is None
    assert torch.allclose(torch.tensor(page["feedforward"]["change"]), torch.tensor(ffn["change"]), atol=1e-4)
    compared = post(client, "/api/page", text=SENTENCE, compare_with="He broke the news.")
    assert compared["attention"] == post(client, "/api/compare", text_a=SENTENCE, text_b="He broke the news.")
    off = post(client, "/api/page", text=SENTENCE, ffn_off=1)["feedforward"]
    assert off["off"] == 1 and off["without"] == post(client, "/api/feedforward", text=SENTENCE, off=1)["without"]


def test_every_token_is_sent_with_the_text_the_lessons_show(client):
    """``shown`` is ``data.tokenization.show_token`` of the token's text (␣, ⏎, \\xNN), the lessons' labels."""
    text = "2+2=4\nHe broke"
    page = post(client, "/api/page", text=text)
    assert [t["shown"] for t in page["tokens"]["tokens"]] == [show_token(c) for c in text]
    assert page["attention"]["shown"] == [show_token(c) for c in text] and "␣" in page["attention"]["shown"]
    assert all(t["shown"] == show_token(t["text"]) for t in page["next"]["top"] + page["feedforward"]["with_all"])
    embeddings = post(client, "/api/embeddings", token=0)
    assert embeddings["shown"] == [show_token(s) for s in embeddings["labels"]]
    assert all(n["shown"] == show_token(n["text"]) for n in embeddings["neighbours"])
    assert all(p["shown"] == show_token(p["answer"]) for p in client.get("/api/positions").json()["pair"])


def test_the_limits_the_page_is_served_are_the_ones_the_server_checks(client, loaded):
    """GET /api/limits: a request at each limit is taken, one just past it is refused; the Train panel starts from
    the word toy config, tokenizer included."""
    limits = client.get("/api/limits").json()
    sampling, train = limits["sampling"], limits["train"]
    vocab = loaded.tokenizer.vocab_size
    assert sampling["top_k"] == {"min": 1, "max": vocab} and sampling["top_p"] == {"above": 0, "max": 1}
    for field, edge, past in [("temperature", sampling["temperature"]["max"], sampling["temperature"]["max"] + 0.01),
                              ("temperature", sampling["temperature"]["min"], -0.01),
                              ("top_k", vocab, vocab + 1), ("top_k", 1, 0), ("top_p", 1.0, 1.01)]:
        assert client.post("/api/next", json={"text": "a", field: edge}).status_code == 200, (field, edge)
        assert client.post("/api/next", json={"text": "a", field: past}).status_code in (400, 422), (field, past)
    tokens = sampling["max_new_tokens"]
    assert tokens == {"min": 1, "max": MAX_NEW_TOKENS, "default": 60} and sampling["seed"]["max"] == 2**64 - 1
    cfg = load_config(TOY_CONFIGS["word"])
    assert {name: train[name]["default"] for name in ("n_layer", "n_head", "n_embd", "max_iters", "lr")} == {
        "n_layer": cfg.model.n_layer, "n_head": cfg.model.n_head, "n_embd": cfg.model.n_embd,
        "max_iters": cfg.train.max_iters, "lr": cfg.train.lr}
    assert train["positional"] == {"choices": ["sinusoidal", "learned", "rope", "none"],
                                   "default": cfg.model.positional}
    assert train["tokenizer"] == {"choices": ["word", "char"], "default": "word"}
    # a pasted text's fewest tokens: the held-out tenth holds one window of each toy config's context + 1
    assert train["text"] == {"min_chars": 1000, "max_bytes": 200 * 1024, "min_tokens": {"word": 330, "char": 970}}
    assert client.post("/api/train", json={"tokenizer": "bpe"}).status_code == 422
    for name in ("n_layer", "n_head", "n_embd", "max_iters"):
        past = client.post("/api/train", json={name: train[name]["max"] + 1})
        assert past.status_code == 422 and name in past.json()["error"], name
    assert client.post("/api/train", json={"lr": train["lr"]["above"]}).status_code == 422


def test_greedy_generation_equals_the_command_line(client, play_checkpoint):
    text = generated(client, text="This animal barks. This animal is a", max_new_tokens=20, temperature=0)
    cli = run_cli("generate.py", "--checkpoint", play_checkpoint, "--prompt", "This animal barks. This animal is a",
                  "--temperature", "0", "--max-new-tokens", "20", "--format", "jsonl")
    assert cli.returncode == 0, cli.stderr
    assert text == json.loads(cli.stdout)["completion"] and len(text) == 20


def test_sampled_generation_follows_the_seed_like_the_command_line(client, play_checkpoint):
    body = dict(text="2+2=", max_new_tokens=25, temperature=1.2, top_k=20, top_p=0.95, seed=7)
    first, again = generated(client, **body), generated(client, **body)
    other = generated(client, **{**body, "seed": 8})
    cli = run_cli("generate.py", "--checkpoint", play_checkpoint, "--prompt", "2+2=", "--temperature", "1.2",
                  "--top-k", "20", "--top-p", "0.95", "--seed", "7", "--max-new-tokens", "25", "--format", "jsonl")
    assert first == again == json.loads(cli.stdout)["completion"] and first != other


def test_closing_a_generation_stops_the_model(loaded):
    calls, finished = [], []
    hook = loaded.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        events = views.generation_events(loaded, "2+2=", MAX_NEW_TOKENS, 1.0, None, None, seed=1,
                                         on_finish=lambda n, complete: finished.append((n, complete)))
        for _ in range(3):
            assert next(events)[0] == "token"
        events.close()                                     # what the server does when the client goes away
    finally:
        hook.remove()
    assert finished == [(3, False)] and len(calls) == 3


def head_by_its_own_modules(loaded, text, block, head):
    """Block ``block``'s input caught by a hook on a plain forward pass (the fused attention, no recorder), and head
    ``head`` computed from it by modules of its own: the block's LayerNorm, ``SelfAttention.from_head`` (the head's
    rows of the fused Q, K, V projection, the formula written out) and the block's whole attention module."""
    attn_block = loaded.model.blocks[block]
    caught = []
    hook = attn_block.register_forward_pre_hook(lambda module, args: caught.append(args[0][0]))
    try:
        with torch.no_grad():
            loaded.model(torch.tensor([loaded.tokenizer.encode(text)]))
    finally:
        hook.remove()
    x = caught[0]                                                                         # (T, C)
    with torch.no_grad():
        normed = attn_block.ln1(x)
        single = SelfAttention.from_head(attn_block.attn, head)
        output, weights = single(normed[None], return_weights=True)                       # (1, T, hs), (1, T, T)
        q, k = single.query(normed), single.key(normed)                                   # (T, hs) each
        if single.rotary is not None:                                                     # RoPE: turned by position
            q, k = (t[0] for t in single.rotary(q[None], k[None]))
        return {"x": x, "normed": normed, "q": q, "k": k,
                "v": single.value(normed), "weights": weights[0], "output": output[0],
                "projected": attn_block.attn(normed[None])[0]}


def assert_head_is(got, reference, head_size, query):
    """The head view ``got`` (one token's) equals the ``reference`` tensors within 1e-5."""
    i = query

    def same(name, expected):
        assert torch.allclose(torch.tensor(np.asarray(got[name]), dtype=torch.float32), expected, atol=1e-5), name

    q, keys = reference["q"][i], reference["k"][: i + 1]
    for name, expected in (("x", reference["x"][i]), ("normed", reference["normed"][i]), ("q", q), ("k", keys),
                           ("v", reference["v"][: i + 1]), ("dots", keys @ q),
                           ("scores", keys @ q / head_size ** 0.5), ("weights", reference["weights"][i, : i + 1]),
                           ("output", reference["output"][i]), ("projected", reference["projected"][i]),
                           ("after", reference["x"][i] + reference["projected"][i])):
        same(name, expected)
    assert not reference["weights"][i, i + 1 :].any()                                    # the future: weight 0
    rows = slice(got["head"] * head_size, (got["head"] + 1) * head_size)
    assert list(got["concatenated"][rows]) == list(got["output"])      # this head's part of the heads side by side


@pytest.mark.parametrize("block, head", [(0, 1), (1, 0)])
def test_inside_a_head_is_the_models_own_tensors(client, loaded, block, head):
    """POST /api/head: the stream entering the block, its LayerNorm, q, every visible k and v, q·k, the scores, the
    weights, the head's output and the projection equal what the block's own modules compute (within 1e-5); the
    weights are the Attention panel's row; /api/page sends the same from its one pass."""
    reference = head_by_its_own_modules(loaded, SENTENCE, block, head)
    T, hs = len(SENTENCE), loaded.cfg.model.head_size
    rows = post(client, "/api/attention", text=SENTENCE)["attention"][block][head]
    for query in (0, 7, None):
        got = post(client, "/api/head", text=SENTENCE, block=block, head=head, query=query)
        i = T - 1 if query is None else query
        assert (got["block"], got["head"], got["query"], got["head_size"]) == (block, head, i, hs)
        assert [t["text"] for t in got["tokens"]] == list(SENTENCE) and got["bias"] is None
        assert_head_is(got, reference, hs, i)
        assert got["weights"] == pytest.approx(rows[i], abs=6e-5) and sum(got["weights"]) == pytest.approx(1, abs=1e-5)
    page = post(client, "/api/page", text=SENTENCE, head={"block": block, "head": head, "query": 7})
    assert page["head"] == post(client, "/api/head", text=SENTENCE, block=block, head=head, query=7)


def test_inside_a_head_of_a_bpe_model_reads_its_tokens(play_bpe_checkpoint):
    loaded = load_for_inference(play_bpe_checkpoint)
    text = "This animal barks. This animal is a"
    got = views.head_view(loaded, text, block=1, head=1)
    T = len(loaded.tokenizer.encode(text))
    assert [t["text"] for t in got["tokens"]] == loaded.tokenizer.pieces(text, loaded.tokenizer.encode(text))
    assert_head_is(got, head_by_its_own_modules(loaded, text, 1, 1), loaded.cfg.model.head_size, T - 1)


def test_inside_a_head_of_a_rope_model_shows_the_turned_queries_and_keys():
    """With rotary positions, the q and k_j the panel shows are the turned ones that make its scores."""
    torch.manual_seed(1)
    cfg = ModelConfig(block_size=16, n_layer=2, n_head=2, n_embd=16, positional="rope")
    tokenizer = CharTokenizer(sorted(set(SENTENCE)))
    loaded = Loaded(GPT(cfg, tokenizer.vocab_size).eval(), tokenizer, Config(model=cfg), torch.device("cpu"))
    got = views.head_view(loaded, "He broke", block=1, head=1, query=None)
    assert got["rotary"]
    assert_head_is(got, head_by_its_own_modules(loaded, "He broke", 1, 1), cfg.head_size, 7)


def test_inside_a_head_shows_the_bias_terms_of_a_gpt2_shaped_model():
    """A model with GPT-2's switches (biases, learned positions), its biases set to random values so that they
    count: every stage still equals the block's own modules, and the head's b_q, b_k, b_v and the projection's b_o
    are sent."""
    torch.manual_seed(0)
    cfg = ModelConfig(block_size=16, n_layer=2, n_head=4, n_embd=32, positional="learned", bias=True,
                      activation="gelu_tanh", embed_scale=False)
    tokenizer = CharTokenizer(sorted(set(SENTENCE)))
    model = GPT(cfg, tokenizer.vocab_size).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0, 0.5)
    loaded = Loaded(model, tokenizer, Config(model=cfg), torch.device("cpu"))
    attn = model.blocks[1].attn
    got = views.head_view(loaded, "He broke", block=1, head=2, query=None)
    assert_head_is(got, head_by_its_own_modules(loaded, "He broke", 1, 2), cfg.head_size, 7)
    assert got["rotary"] is False
    b_q, b_k, b_v = attn.qkv.bias.detach().split(32)
    for name, expected in (("q", b_q[16:24]), ("k", b_k[16:24]), ("v", b_v[16:24]), ("o", attn.proj.bias.detach())):
        assert torch.allclose(torch.tensor(got["bias"][name]), expected, atol=1e-6), name


BAD_REQUESTS = [
    # (path, body or raw bytes, status, message)
    ("/api/tokens", {"text": ""}, 422, "text: String should have at least 1 character"),
    ("/api/tokens", {"text": "He broke the glass. " * 4}, 400, "the prompt is 80 tokens but the model's context is 64"),
    ("/api/tokens", {"text": "Zoë ß"}, 400, "characters 'Z', 'ë', 'ß' are not in this model's vocabulary"),
    ("/api/tokens", {"text": 42}, 422, "text: Input should be a valid string"),
    ("/api/tokens", {"txt": "a"}, 422, "text: Field required; unknown field 'txt'"),
    ("/api/tokens", b'{"text": "a"', 400, "the request body is not valid JSON"),
    ("/api/tokens", b'["a"]', 422, "the request body must be a JSON object"),
    ("/api/tokens", b"", 422, "the request needs a JSON body"),
    ("/api/tokens", {"text": "a" * 20_001}, 422, "text: String should have at most 20000 characters"),
    ("/api/attention", {"text": "x\u0000"}, 400, "not in this model's vocabulary"),
    ("/api/compare", {"text_a": "He broke"}, 422, "text_b: Field required"),
    ("/api/next", {"text": "a", "temperature": 2.5}, 422, "temperature: Input should be less than or equal to 2"),
    ("/api/next", {"text": "a", "temperature": -0.1}, 422, "temperature: Input should be greater than or equal to 0"),
    ("/api/next", {"text": "a", "temperature": "1"}, 422, "temperature: Input should be a valid number"),
    ("/api/next", b'{"text": "a", "temperature": NaN}', 422, "temperature: Input should be a finite number"),
    ("/api/next", {"text": "a", "top_k": 0}, 422, "top_k: Input should be greater than or equal to 1"),
    ("/api/next", {"text": "a", "top_k": 1.5}, 422, "top_k: Input should be a valid integer"),
    ("/api/next", {"text": "a", "top_k": 10_000}, 400, "top_k: must be at most the vocabulary size"),
    ("/api/next", {"text": "a", "top_p": 0}, 422, "top_p: Input should be greater than 0"),
    ("/api/next", {"text": "a", "top_p": 1.01}, 422, "top_p: Input should be less than or equal to 1"),
    ("/api/next", {"text": "a", "k": 51}, 422, "k: Input should be less than or equal to 50"),
    ("/api/page", {"text": "a", "compare_with": ""}, 422, "compare_with: String should have at least 1 character"),
    ("/api/page", {"text": "a", "compare_with": "Zoo"}, 400, "character 'Z' is not in this model's vocabulary"),
    ("/api/page", {"text": "a", "temperature": 1}, 422, "unknown field 'temperature'"),   # the page applies it
    ("/api/page", {"text": "a", "ffn_off": 9}, 400, "ffn_off: this model has blocks 0..1, so there is no block 9"),
    ("/api/page", {"text": "a", "ffn_off": -1}, 422, "ffn_off: Input should be greater than or equal to 0"),
    ("/api/head", {"text": "ab", "block": 2, "head": 0}, 400, "block: this model has blocks 0..1, so there is no block 2"),
    ("/api/head", {"text": "ab", "block": 0, "head": 2}, 400,
     "head: this model's blocks have heads 0..1, so there is no head 2"),
    ("/api/head", {"text": "ab", "block": 0, "head": 0, "query": 2}, 400,
     "query: the text has tokens 0..1, so there is no token 2"),
    ("/api/head", {"text": "ab", "block": -1, "head": 0}, 422, "block: Input should be greater than or equal to 0"),
    ("/api/head", {"text": "ab", "block": 0, "head": 0, "query": -1}, 422,
     "query: Input should be greater than or equal to 0"),
    ("/api/head", {"text": "ab", "block": 0}, 422, "head: Field required"),
    ("/api/head", {"text": "Zoo", "block": 0, "head": 0}, 400, "character 'Z' is not in this model's vocabulary"),
    ("/api/page", {"text": "ab", "head": {"block": 0, "head": 7}}, 400, "head: this model's blocks have heads 0..1"),
    ("/api/page", {"text": "ab", "head": {"block": 0, "head": 0, "query": 5}}, 400, "there is no token 5"),
    ("/api/page", {"text": "ab", "head": {"block": 0, "head": 0, "key": 1}}, 422, "unknown field 'head.key'"),
    ("/api/generate", {"text": "a", "max_new_tokens": MAX_NEW_TOKENS + 1}, 422,
     f"max_new_tokens: Input should be less than or equal to {MAX_NEW_TOKENS}"),
    ("/api/generate", {"text": "a", "max_new_tokens": 0}, 422, "max_new_tokens: Input should be greater than or equal to 1"),
    ("/api/generate", {"text": "a", "seed": -1}, 422, "seed: Input should be greater than or equal to 0"),
    ("/api/generate", {"text": "a", "seed": 2**64}, 422, f"seed: Input should be less than or equal to {2**64 - 1}"),
    ("/api/generate", {"text": "a", "seed": True}, 422, "seed: Input should be a valid integer"),
    ("/api/generate", {"text": "Zebra"}, 400, "not in this model's vocabulary"),
    ("/api/generate", {"text": "a", "top_k": 10_000}, 400, "top_k: must be at most the vocabulary size"),
]


@pytest.mark.parametrize("path, body, status, message", BAD_REQUESTS, ids=[f"{p} {m[:40]}" for p, _, _, m in BAD_REQUESTS])
def test_bad_requests_get_a_one_line_json_error(client, path, body, status, message):
    if isinstance(body, bytes):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error


def test_requests_outside_the_api_are_refused_with_json(client):
    for response, status in ((client.get("/api/nothing"), 404), (client.get("/api/tokens"), 405),
                             (client.put("/api/model"), 405)):
        assert response.status_code == status and "error" in response.json()
    form = client.post("/api/tokens", content=b'{"text": "a"}', headers={"Content-Type": "text/plain"})
    assert form.status_code == 415 and "Content-Type: application/json" in form.json()["error"]


def test_a_body_over_the_limit_is_refused_before_parsing(client):
    big = json.dumps({"text": "a" * (MAX_BODY_BYTES + 10)}).encode()
    declared = client.post("/api/tokens", content=big, headers={"Content-Type": "application/json"})
    streamed = client.post("/api/tokens", content=iter([big[:1000], big[1000:]]),
                           headers={"Content-Type": "application/json"})           # chunked: no length declared
    for response in (declared, streamed):
        assert response.status_code == 413 and "over the limit" in response.json()["error"]


def test_the_page_and_its_files_are_served_from_this_server_only(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/main.js">' in page.text
    scripts = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*.js"))
    assert "main.js" in scripts and "panels/4-attention.js" in scripts
    for name in ["style.css", *scripts]:
        assert client.get(f"/static/{name}").status_code == 200, name
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url\(([^)]+)\)",
                                                                           client.get("/static/style.css").text)
    assert sources and all(s.startswith(("/", "data:", "#")) for s in sources), sources   # nothing from the network
    for name in scripts:                                  # modules import each other by relative path only
        code = client.get(f"/static/{name}").text
        assert "http" not in code.replace("http://www.w3.org/2000/svg", ""), name
        assert all(m.startswith(("./", "../")) for m in re.findall(r'from "([^"]+)"', code)), name
    assert client.get("/static/../play.py").status_code == 404
    assert client.get("/openapi.json").json()["paths"].keys() >= {"/api/tokens", "/api/generate", "/api/model"}


def test_only_loopback_hosts_count_as_private():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")


def test_the_real_server_streams_and_notices_a_client_that_leaves(play_checkpoint):
    process, url = start_server("--checkpoint", play_checkpoint)
    try:
        with urllib.request.urlopen(url + "api/model", timeout=10) as response:
            assert json.load(response)["step"] == 40
        request = urllib.request.Request(url + "api/generate", method="POST", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"text": "2+2=", "max_new_tokens": 500}).encode())
        with urllib.request.urlopen(request, timeout=10) as stream:
            assert stream.readline().decode() == "event: token\n"          # streaming has begun; now leave
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(url + "api/health", timeout=10) as response:
                generations = json.load(response)["generations"]
            if generations["running"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert generations["running"] == 0 and generations["completed"] + generations["stopped_early"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_play_command_line_errors_are_one_line(play_checkpoint, tmp_path):
    missing = run_cli("play.py", "--checkpoint", tmp_path / "none.pt", "--port", "0")
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: checkpoint {tmp_path / 'none.pt'} does not exist"
    bad_port = run_cli("play.py", "--checkpoint", play_checkpoint, "--port", "70000")
    assert bad_port.returncode == 2 and bad_port.stderr.strip() == "error: --port must be in 0..65535, got 70000"
    process, url = start_server("--checkpoint", play_checkpoint)
    try:
        port = url.rstrip("/").rsplit(":", 1)[1]
        taken = run_cli("play.py", "--checkpoint", play_checkpoint, "--port", port)
        assert taken.returncode == 2 and taken.stderr.count("\n") == 1
        assert f"error: cannot listen on 127.0.0.1:{port}" in taken.stderr and "pick another --port" in taken.stderr
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_feedforward_view_is_the_traced_forward_pass_with_and_without_one_block(client, loaded):
    text = "This animal barks. This animal is a"
    view = post(client, "/api/feedforward", text=text, off=1)
    t = trace(loaded, text)
    change = torch.stack([out.norm(dim=-1) for out in t.ffn_out])
    assert torch.allclose(torch.tensor(view["change"]), change, atol=1e-4)
    relative = change / torch.stack([x.norm(dim=-1) for x in t.after_attention])
    assert torch.allclose(torch.tensor(view["relative"]), relative, atol=1e-4)
    without = trace(loaded, text, drop_ffn=1).logits[-1].softmax(-1)
    for row in view["without"]:
        assert row["prob"] == pytest.approx(without[row["id"]].item(), abs=1e-4)
    assert [r["id"] for r in view["with_all"]] == t.logits[-1].topk(5).indices.tolist()
    assert post(client, "/api/feedforward", text=text)["without"] is None
    too_far = client.post("/api/feedforward", json={"text": text, "off": loaded.cfg.model.n_layer})
    assert too_far.status_code == 400 and "there is no block" in too_far.json()["error"]
    assert client.post("/api/feedforward", json={"text": text, "off": -1}).status_code == 422


def test_embeddings_view_is_the_table_in_two_dimensions_its_neighbours_and_two_words(client, loaded):
    view = post(client, "/api/embeddings", token=5, word_a="dog", word_b="cat")
    table = loaded.model.embed.token.weight.detach().double()                            # (V, C)
    centred = table - table.mean(0)
    u, s, _ = torch.linalg.svd(centred, full_matrices=False)
    expected = u[:, :2] * s[:2]                                                           # PCA scores (V, 2)
    points = torch.tensor(view["points"], dtype=torch.float64)
    for axis in range(2):                                                                 # a direction's sign is free
        sign = torch.sign((points[:, axis] * expected[:, axis]).sum())
        assert torch.allclose(points[:, axis], sign * expected[:, axis], atol=2e-3)
    assert view["explained"] == pytest.approx(((s[:2] ** 2).sum() / (s ** 2).sum()).item(), abs=1e-4)
    cosines = F.cosine_similarity(table[5][None], table, dim=-1)
    cosines[5] = -2
    assert [n["id"] for n in view["neighbours"]] == cosines.topk(8).indices.tolist()
    dog = trace(loaded, "\nThe dog").final[-1]
    cat = trace(loaded, "\nThe cat").final[-1]
    assert view["words"]["context"] == pytest.approx(F.cosine_similarity(dog, cat, dim=0).item(), abs=1e-4)
    assert len(view["labels"]) == loaded.tokenizer.vocab_size and view["labels"][5] == loaded.tokenizer.decode([5])
    words = view["words_map"]
    assert words["words"][:2] == ["dog", "cat"] and len(words["words"]) == len(words["kinds"]) == len(words["points"])
    vectors = torch.stack([trace(loaded, f"\nThe {w}").final[-1] for w in words["words"]]).double()
    u, s, _ = torch.linalg.svd(vectors - vectors.mean(0), full_matrices=False)
    for axis in range(2):
        mine, theirs = torch.tensor(words["points"], dtype=torch.float64)[:, axis], (u[:, axis] * s[axis])
        assert torch.allclose(mine, torch.sign((mine * theirs).sum()) * theirs, atol=2e-3)
    bad = client.post("/api/embeddings", json={"token": loaded.tokenizer.vocab_size})
    assert bad.status_code == 400 and "ids run 0.." in bad.json()["error"]
    unknown = client.post("/api/embeddings", json={"word_a": "ñandú"})
    assert unknown.status_code == 400 and "ñ" in unknown.json()["error"]


def test_positions_view_is_the_papers_table_and_the_word_order_answers(client, loaded):
    view = client.get("/api/positions").json()
    T, C = loaded.cfg.model.block_size, loaded.cfg.model.n_embd
    position = torch.arange(T, dtype=torch.float64)[:, None]
    angle = position / 10000 ** (torch.arange(0, C, 2, dtype=torch.float64) / C)        # (T, C/2)
    table = torch.tensor(view["table"], dtype=torch.float64)
    assert table.shape == (T, C)
    assert torch.allclose(table[:, 0::2], torch.sin(angle), atol=1e-3)
    assert torch.allclose(table[:, 1::2], torch.cos(angle), atol=1e-3)
    from inference import greedy_text
    for row in view["pair"]:
        assert row["answer"] == greedy_text(loaded, "\n" + row["prompt"], min_chars=6).split("\n")[0]
    assert {row["prompt"].split(".")[0] for row in view["pair"]} == {"The dog chased the cat", "The cat chased the dog"}


def test_each_head_is_captioned_with_the_habit_the_heads_lesson_measures(client, loaded):
    """The page's caption under each head is ``inference.head_habits`` (what ``learn.py heads`` prints) on the text
    typed, read from the model shown: the largest share of the places the lesson tells habits by."""
    from inference import PLACES, describe, head_habits, places

    text = "\nHe broke the glass."                                 # the heads lesson's sentence, after its line start
    page = post(client, "/api/page", text=text)["attention"]
    t = trace(loaded, text)
    where = places(t.tokens)
    for layer, row in enumerate(head_habits(t)):
        for head, habit in enumerate(row):
            shown = page["habits"][layer][head]
            assert shown["habit"] == describe(habit, where) and shown["place"] in PLACES
            assert shown["share"] == pytest.approx(max(habit[p] for p in where), abs=1e-4)
            weights = t.attention[layer][head]                     # (T, T): the share is a mean over the rows
            column = {"previous": weights[range(1, len(t.ids)), range(len(t.ids) - 1)],
                      "itself": weights.diagonal()[1:], "line start": weights[1:, 0]}.get(shown["place"])
            if column is not None:
                assert shown["share"] == pytest.approx(column.mean().item(), abs=1e-4)
    assert post(client, "/api/page", text="H")["attention"]["habits"] is None       # one token looks only at itself


def test_two_compared_sentences_come_with_their_greedy_continuations(client, loaded):
    from inference import greedy_text

    page = post(client, "/api/page", text="He broke the glass.", compare_with="He broke the news.")["attention"]
    for side, text in (("a", "He broke the glass."), ("b", "He broke the news.")):
        whole = greedy_text(loaded, text, min_chars=10**9, max_new_tokens=views.CONTINUED)
        assert page[side]["continuation"] == whole.split("\n")[0]
    assert page["habits"] == post(client, "/api/page", text="He broke the glass.")["attention"]["habits"]


def test_leaving_one_ffn_out_reports_what_it_leaves_to_the_top_token(client, loaded):
    text = "This animal barks. This animal is a"
    top = trace(loaded, text).logits[-1].argmax()
    for off in range(loaded.cfg.model.n_layer):
        view = post(client, "/api/feedforward", text=text, off=off)
        expected = trace(loaded, text, drop_ffn=off).logits[-1].softmax(-1)[top].item()
        assert view["top_without"] == pytest.approx(expected, abs=1e-4) and view["with_all"][0]["id"] == top
    assert post(client, "/api/feedforward", text=text)["top_without"] is None


def test_the_words_map_counts_the_words_whose_nearest_word_is_of_their_kind(client, loaded):
    words = post(client, "/api/embeddings")["words_map"]
    vectors = torch.stack([trace(loaded, f"\nThe {w}").final[-1] for w in words["words"]])       # (n, C)
    same = 0
    for i, v in enumerate(vectors):
        others = [j for j in range(len(vectors)) if j != i]
        nearest = max(others, key=lambda j: F.cosine_similarity(v, vectors[j], dim=0).item())
        same += words["kinds"][nearest] == words["kinds"][i]
    assert words["same_kind_nearest"] == same
    kinds = words["kinds"]
    pairs = [(i, j) for i in range(len(kinds)) for j in range(len(kinds)) if i != j]
    assert words["chance"] == pytest.approx(sum(kinds[i] == kinds[j] for i, j in pairs) / len(pairs), abs=1e-4)


def test_positions_view_of_a_rope_model_is_the_angles_its_heads_turn_by(loaded):
    """A RoPE model adds no table to its tokens: the view shows cos(p·θ_i), θ_i = 10000^(−2i/hs), the angles the
    model's own attention uses."""
    import dataclasses

    from model import GPT
    from playground.views import positions_view
    cfg = dataclasses.replace(loaded.cfg, model=dataclasses.replace(loaded.cfg.model, positional="rope"))
    rope = dataclasses.replace(loaded, model=GPT(cfg.model, loaded.tokenizer.vocab_size).eval(), cfg=cfg)
    view = positions_view(rope)
    T, hs = cfg.model.block_size, cfg.model.head_size
    angle = torch.arange(T, dtype=torch.float64)[:, None] * 10000 ** (-torch.arange(0, hs, 2) / hs)    # (T, hs/2)
    assert view["positional"] == "rope"
    assert torch.allclose(torch.tensor(view["table"], dtype=torch.float64), torch.cos(angle), atol=1e-3)
