"""The page's views on a GPT-2-shaped model: what a 50,257-token, 144-head model sends has to stay readable and
small, and stay the model's own numbers.

The oracle is Hugging Face's GPT2LMHeadModel (built small and random by ``tests.test_gpt2.hf_folder``): the page's
next-token logits and position table are its. The limits (``ATTENTION_WEIGHTS``, ``MAP_TOKENS``,
``POSITION_ROWS``) are lowered here to fit the small model; one slow test runs the page on GPT-2-small's shape.
"""
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

import inference
from core.checkpoint import checkpoint_state, save_checkpoint
from core.config import Config
from data.config import DataConfig
from inference import embedding_map, load_for_inference, trace
from model import GPT, ModelConfig
from playground import views
from playground.server import create_app
from tests.test_gpt2 import GPT2_SWITCHES, TEXT, byte_pair_tokenizer, hf_folder

transformers = pytest.importorskip("transformers", reason="transformers is a test requirement (requirements-dev.txt)")


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    """(our import of a small random GPT-2 folder, Hugging Face's model of it)."""
    folder = tmp_path_factory.mktemp("gpt2")
    hf = hf_folder(folder)
    return load_for_inference(folder), hf


def test_the_page_sends_every_head_for_the_first_tokens_its_budget_allows_and_hugging_faces_logits(
        gpt2, monkeypatch):
    loaded, hf = gpt2
    heads = loaded.cfg.model.n_layer * loaded.cfg.model.n_head                          # 2 × 4
    monkeypatch.setattr(views, "ATTENTION_WEIGHTS", heads * 8 * 9 // 2)                  # 8 tokens' rows fit
    text = TEXT[:60]
    page = views.page_view(loaded, text, compare_with="The dog.")
    t = trace(loaded, text)
    T = len(t.ids)
    assert T > 8
    attention = page["attention"]["a"]
    assert (attention["count"], len(attention["tokens"]), len(attention["shown"])) == (T, 8, 8)
    assert attention["tokens"] == t.tokens[:8]
    for layer in range(loaded.cfg.model.n_layer):
        for head in range(loaded.cfg.model.n_head):
            rows = attention["attention"][layer][head]
            assert [len(r) for r in rows] == list(range(1, 9))
            for i, row in enumerate(rows):                              # the first 8 rows of the full pass
                assert row.tolist() == pytest.approx(t.attention[layer][head, i, : i + 1].tolist(), abs=1e-4)
    short = page["attention"]["b"]
    assert short["count"] == len(short["tokens"]) <= 8                  # a text within the budget: whole
    with torch.no_grad():
        theirs = hf(torch.tensor([t.ids])).logits[0, -1]                                 # (V,)
    assert page["next"]["logits"].tolist() == pytest.approx(theirs.tolist(), abs=1e-4)
    assert [e["id"] for e in page["next"]["top"]] == theirs.topk(views.LISTED).indices.tolist()


def test_the_embedding_map_draws_the_first_ids_and_the_extras_on_the_first_ids_axes(monkeypatch):
    torch.manual_seed(0)
    table = torch.randn(1500, 16, dtype=torch.float64) * torch.linspace(3, 0.1, 16)     # (V, C), clear axes
    ids, points, explained = embedding_map(table, [1200, 7, 1200, 1499])
    assert ids == [*range(1000), 1200, 1499]
    first = table[:1000]
    centred = first - first.mean(0)
    u, s, vh = torch.linalg.svd(centred, full_matrices=False)
    expected = torch.cat([u[:, :2] * s[:2], (table[[1200, 1499]] - first.mean(0)) @ vh[:2].T])
    for axis in range(2):                                                     # a direction's sign is free
        sign = torch.sign((points[:, axis] * expected[:, axis]).sum())
        assert torch.allclose(points[:, axis], sign * expected[:, axis], atol=1e-9)
    assert explained == pytest.approx(((s[:2] ** 2).sum() / (s ** 2).sum()).item())
    small = table[:300]                                                       # a vocabulary under 1,000: whole
    assert embedding_map(small, [5])[0] == list(range(300))


def test_the_embeddings_view_draws_the_typed_tokens_and_the_picked_tokens_neighbours(gpt2, monkeypatch):
    loaded, _ = gpt2
    monkeypatch.setattr(inference, "MAP_TOKENS", 50)
    typed = loaded.tokenizer.encode(TEXT[:40])
    assert max(typed) >= 50
    view = views.embeddings_view(loaded, token=120, text=TEXT[:40], k=4)
    near = [n["id"] for n in view["neighbours"]]
    assert view["ids"][:50] == list(range(50))
    assert set(view["ids"][50:]) == {i for i in typed + near + [120] if i >= 50}
    assert view["typed"] == sorted(set(typed))
    assert len(view["points"]) == len(view["labels"]) == len(view["kinds"]) == len(view["ids"])
    assert view["labels"] == loaded.tokenizer.token_strings(view["ids"])
    table = loaded.model.embed.token.weight.detach()
    cosines = F.cosine_similarity(table[120][None], table, dim=-1)
    cosines[120] = -2
    assert near == cosines.topk(4).indices.tolist()                          # over the whole table
    too_long = views.embeddings_view(loaded, text="dog " * 100)               # past the context: drawn without it
    assert too_long["typed"] == [] and too_long["ids"] == list(range(50))


def test_the_model_card_of_an_imported_folder_does_not_claim_our_defaults_as_its_training(gpt2, tmp_path):
    loaded, _ = gpt2
    assert views.model_card(loaded, "hf:openai-community/gpt2")["imported"] is True
    assert views.model_card(loaded, str(tmp_path / "best.pt"))["imported"] is False      # a checkpoint of ours


def test_the_positions_view_sends_every_step_th_row_of_the_learned_table(gpt2, monkeypatch):
    loaded, hf = gpt2
    wpe = hf.transformer.wpe.weight.detach()                                            # (32, C)
    whole = views.positions_view(loaded)
    assert whole["positional"] == "learned" and whole["rows"] == list(range(32))
    assert torch.allclose(torch.tensor(whole["table"]), wpe, atol=5e-4)
    assert whole["scale"] == pytest.approx(wpe.abs().max().item(), abs=1e-4)
    monkeypatch.setattr(views, "POSITION_ROWS", 10)
    strided = views.positions_view(loaded)
    assert strided["rows"] == list(range(0, 32, 4))                                     # ⌈32 / 10⌉ = 4
    assert torch.allclose(torch.tensor(strided["table"]), wpe[::4], atol=5e-4)


@pytest.mark.slow
def test_the_page_on_a_gpt2_small_shaped_model_stays_small(tmp_path):
    """12 blocks × 12 heads × 768, 1,024 positions, 50,257 tokens (random weights): every head for a 64-token text,
    the whole next-token distribution, a map of 1,000 + the text's tokens, a quarter of the position table."""
    tokenizer = byte_pair_tokenizer()
    cfg = Config(model=ModelConfig(block_size=1024, n_layer=12, n_head=12, n_embd=768, **GPT2_SWITCHES),
                 data=DataConfig(tokenizer=tokenizer.kind))
    model = GPT(cfg.model, tokenizer.vocab_size)
    save_checkpoint(tmp_path / "gpt2.pt", checkpoint_state(model, None, cfg, tokenizer, 0, float("nan"),
                                                           torch.Generator()))
    del model
    loaded = load_for_inference(tmp_path / "gpt2.pt")
    client = TestClient(create_app(loaded, str(tmp_path / "gpt2.pt")), base_url="http://127.0.0.1")
    text = tokenizer.decode(tokenizer.encode(TEXT * 3)[:64])
    assert len(tokenizer.encode(text)) == 64
    answer = client.post("/api/page", json={"text": text})
    assert answer.status_code == 200, answer.text
    page = answer.json()
    attention = page["attention"]
    assert (attention["n_layer"], attention["n_head"], attention["count"], len(attention["tokens"])) == (12, 12, 64, 64)
    assert len(attention["attention"]) == 12 and all(len(layer) == 12 for layer in attention["attention"])
    assert len(page["next"]["logits"]) == 50257
    assert len(answer.content) < 3_000_000                                # 2.6 MB: every head's 2,080 weights
    longer = client.post("/api/page", json={"text": text * 2}).json()["attention"]
    assert longer["count"] > 64 and len(longer["tokens"]) == 64                       # the budget holds
    embeddings = client.post("/api/embeddings", json={"text": text, "word_a": "dog"}).json()
    assert len(embeddings["ids"]) <= 1000 + 64 and embeddings["ids"][:1000] == list(range(1000))
    positions = client.get("/api/positions").json()
    assert positions["rows"] == list(range(0, 1024, 4)) and len(positions["table"][0]) == 768
