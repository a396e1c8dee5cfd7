"""The model picker's API: GET /api/models lists every run of the runs folder with a best checkpoint by name (the
toy models, the page's own runs) and the start-up model; POST /api/checkpoint switches to a listed name and refuses
anything else, a path above all."""
import shutil

import pytest
import torch
from fastapi.testclient import TestClient

from inference import load_for_inference
from playground.server import create_app

PAGE_RUN = "20250101-120000"
SENTENCE = "The dog chased the cat."


@pytest.fixture
def runs(tmp_path, play_checkpoint, play_word_checkpoint):
    """A runs folder as `make demo` and the page leave it: the two toy models, a page run, a folder that is no run."""
    root = tmp_path / "runs"
    for name, checkpoint in [("toy_words", play_word_checkpoint), ("toy", play_checkpoint),
                             (f"playground/{PAGE_RUN}", play_checkpoint)]:
        (root / name).mkdir(parents=True)
        shutil.copy(checkpoint, root / name / "best.pt")
    shutil.copy(play_checkpoint, root / "toy" / "last.pt")
    (root / "notes").mkdir()
    (root / "notes" / "last.pt").write_bytes(b"no best.pt here: not listed")
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(play_checkpoint, tmp_path / "elsewhere" / "best.pt")        # a checkpoint outside the runs folder
    return root


def app_for(checkpoint, runs) -> TestClient:
    return TestClient(create_app(load_for_inference(checkpoint), str(checkpoint), runs_root=runs),
                      base_url="http://127.0.0.1")


def listed(client) -> dict:
    answer = client.get("/api/models")
    assert answer.status_code == 200
    return {model["name"]: model for model in answer.json()["models"]}


def test_every_run_with_a_best_checkpoint_is_listed_by_name(runs, play_checkpoint, play_word_checkpoint):
    client = app_for(runs / "toy_words" / "best.pt", runs)
    models = listed(client)
    assert list(models) == ["toy", "toy_words", f"playground/{PAGE_RUN}"]
    word, char = load_for_inference(play_word_checkpoint), load_for_inference(play_checkpoint)
    assert models["toy_words"] == {"name": "toy_words", "run": "toy_words", "tokenizer": "word",
                                   "vocab_size": word.tokenizer.vocab_size, "parameters": word.model.num_params(),
                                   "step": word.step, "best_val_loss": pytest.approx(word.best_val), "startup": True,
                                   "current": True, "training": False}
    assert models["toy"]["tokenizer"] == "char" and models["toy"]["parameters"] == char.model.num_params()
    assert not models["toy"]["current"] and not models["toy"]["startup"]


def test_a_start_up_model_outside_the_runs_folder_is_listed_first_and_named_by_null(runs, tmp_path):
    client = app_for(tmp_path / "elsewhere" / "best.pt", runs)
    first = client.get("/api/models").json()["models"][0]
    assert first["run"] is None and first["startup"] and first["current"] and first["name"].endswith("(start-up)")
    assert "elsewhere" in first["name"] and str(tmp_path) not in first["name"]          # a name, not a path
    client.post("/api/checkpoint", json={"run": "toy"})
    assert not listed(client)[first["name"]]["current"] and listed(client)["toy"]["current"]
    assert client.post("/api/checkpoint", json={"run": None}).json()["checkpoint"] == "elsewhere/best.pt"


def test_switching_by_name_changes_every_view(runs):
    client = app_for(runs / "toy_words" / "best.pt", runs)
    words = client.post("/api/tokens", json={"text": SENTENCE}).json()["tokens"]
    assert [t["shown"] for t in words] == ["The", "␣dog", "␣chased", "␣the", "␣cat", "."]
    card = client.post("/api/checkpoint", json={"run": "toy"}).json()
    assert card["checkpoint"] == "toy/best.pt" and card["tokenizer"]["kind"] == "char"
    assert client.get("/api/model").json() == card and listed(client)["toy"]["current"]
    letters = client.post("/api/tokens", json={"text": SENTENCE}).json()["tokens"]
    assert [t["text"] for t in letters] == list(SENTENCE)
    assert client.get("/api/limits").json()["sampling"]["top_k"]["max"] == card["tokenizer"]["vocab_size"]
    assert client.post("/api/checkpoint", json={"run": "toy", "which": "last"}).json()["checkpoint"] == "toy/last.pt"
    assert not any(model["current"] for model in listed(client).values())           # last.pt is not listed
    # a page run by its listed name, or by its id as POST /api/train answers it
    for name in (f"playground/{PAGE_RUN}", PAGE_RUN):
        assert client.post("/api/checkpoint", json={"run": name}).json()["checkpoint"] == f"{PAGE_RUN}/best.pt"
    # the start-up run by its name is the start-up model itself, not a second copy
    back = client.post("/api/checkpoint", json={"run": "toy_words"}).json()
    assert back == client.post("/api/checkpoint", json={"run": None}).json() and listed(client)["toy_words"]["current"]


@pytest.mark.parametrize("run", [
    "../toy", "toy/../toy_words", "/etc/passwd", str("runs/toy/best.pt"), "toy/best.pt", "..", ".", "",
    "playground", "playground/../toy", f"playground/{PAGE_RUN}/../../toy", "notes", "no_such_run", "TOY",
    "20991231-000000",
])
def test_a_path_or_a_name_that_is_not_listed_is_refused(runs, run):
    client = app_for(runs / "toy_words" / "best.pt", runs)
    answer = client.post("/api/checkpoint", json={"run": run})
    assert answer.status_code == 404, answer.text
    assert answer.json() == {"error": f"no run named {run!r} with a saved checkpoint in the runs folder; "
                                      "GET /api/models lists the runs the page can show"}
    assert client.get("/api/model").json()["checkpoint"] == "toy_words/best.pt"        # nothing changed


@pytest.mark.parametrize("body, status", [
    ({"run": 5}, 422), ({"run": "x" * 101}, 422), ({"run": "toy", "which": "../best"}, 422), ({}, 422),
    ({"run": "toy", "path": "/etc/passwd"}, 422),
])
def test_malformed_switch_requests_are_refused(runs, body, status):
    client = app_for(runs / "toy_words" / "best.pt", runs)
    answer = client.post("/api/checkpoint", json=body)
    assert answer.status_code == status and answer.json()["error"]


def test_a_damaged_checkpoint_is_listed_with_its_problem_and_refused_with_one_line(runs):
    (runs / "broken").mkdir()
    (runs / "broken" / "best.pt").write_bytes(b"not a checkpoint")
    client = app_for(runs / "toy_words" / "best.pt", runs)
    broken = listed(client)["broken"]
    assert broken["problem"].startswith("cannot read its checkpoint") and not broken["current"]
    answer = client.post("/api/checkpoint", json={"run": "broken"})
    assert answer.status_code == 400 and "not a PyTorch file" in answer.json()["error"]


def test_a_word_models_embeddings_compare_its_own_rows_of_dog_cat_and_banana(runs, play_word_checkpoint):
    client = app_for(runs / "toy_words" / "best.pt", runs)
    view = client.post("/api/embeddings", json={}).json()
    loaded = load_for_inference(play_word_checkpoint)
    table, encode = loaded.model.embed.token.weight.detach(), loaded.tokenizer.encode
    dog, cat, banana = (table[encode(f" {word}")[0]] for word in ("dog", "cat", "banana"))
    words = view["words"]
    assert words["spelled"] == {"a": "␣dog", "b": "␣cat", "c": "␣banana"} and words["unknown"] == []
    assert words["ids"]["a"] == encode(" dog")[0]                                      # the page lists its neighbours
    assert words["spelling"] == pytest.approx(torch.cosine_similarity(dog, cat, dim=0).item(), abs=1e-4)
    assert words["spelling_c"] == pytest.approx(torch.cosine_similarity(dog, banana, dim=0).item(), abs=1e-4)
    assert [view["labels"][i] for i, kind in enumerate(view["kinds"]) if kind == "fruit"] == sorted(
        (" banana", " lemon", " grape", " peach"), key=lambda w: encode(w)[0])
    unknown = client.post("/api/embeddings", json={"word_b": "zebra"}).json()["words"]
    assert unknown["unknown"] == ["zebra"] and unknown["spelled"]["b"] == "<unk>"
