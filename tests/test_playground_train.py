"""Training from the page: a tiny run started, watched, refused a twin, stopped, resumed and switched to, through the
API (``playground.live`` drives the real ``train.py`` in a child process)."""
import json
import time

import pytest
from fastapi.testclient import TestClient

from core.checkpoint import load_checkpoint
from inference import load_for_inference
from playground.live import probe
from playground.server import create_app

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "lr": 0.01}


@pytest.fixture
def client(tmp_path, play_checkpoint):
    return TestClient(create_app(load_for_inference(play_checkpoint), str(play_checkpoint), runs_root=tmp_path),
                      base_url="http://127.0.0.1")


def wait(client, until, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get("/api/train").json()
        if until(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"timed out; last status {status}")


def test_a_run_trains_in_the_background_streams_its_probes_and_becomes_the_model(client, tmp_path):
    assert client.get("/api/train").json()["state"] == "idle"
    run = client.post("/api/train", json={**TINY, "max_iters": 20, "seed": 3}).json()["run"]
    second = client.post("/api/train", json={**TINY, "max_iters": 20})
    assert second.status_code == 409 and "one run at a time" in second.json()["error"]
    assert client.post("/api/tokens", json={"text": "2+2="}).status_code == 200   # the views keep answering
    status = wait(client, lambda s: s["state"] != "training" and s["answers"] and s["answers"][0]["step"] == 0)
    assert status["state"] == "finished" and status["outcome"] == "finished" and status["run"] == run
    assert "seed: 3" in (tmp_path / "playground" / run / "config.yaml").read_text()
    # the probes were asked of the untrained model too (step_zero), and every checkpoint's answers are kept
    assert [a["step"] for a in status["answers"]] == [0, 20] and status["answers"][-1]["probes"] == status["probes"]
    assert status["vocab_size"] == load_for_inference(tmp_path / "playground" / run / "last.pt").tokenizer.vocab_size
    assert status["max_iters"] == 20 and status["elapsed_s"] >= 0 and status["left_s"] is None   # none left now
    assert [m["iter"] for m in status["losses"]] == [10, 20] and [e["iter"] for e in status["evals"]] == [20]
    # the probes are the model's own answers at that checkpoint
    loaded = load_for_inference(tmp_path / "playground" / run / "last.pt")
    assert [p["step"] for p in status["probes"]] == [20, 20]
    expected = probe(loaded)
    for got, want in zip(status["probes"], expected):
        assert got["answer"] == want["answer"] and got["p_expected"] == pytest.approx(want["p_expected"], rel=1e-5)
    # the attention of one fixed sentence was kept at each checkpoint seen, the last one the run's own
    history = client.get("/api/train/attention").json()
    assert [s["step"] for s in history["snapshots"]] == status["attention_steps"] and status["attention_steps"][-1] == 20
    from inference import trace
    from playground.live import ATTENTION_SENTENCE
    weights = trace(loaded, "\n" + ATTENTION_SENTENCE).attention_stack()               # (n_layer, nh, T, T)
    last = history["snapshots"][-1]["attention"]
    for l, layer in enumerate(last):
        for h, rows in enumerate(layer):
            for i, row in enumerate(rows):
                assert row == pytest.approx(weights[l, h, i, : i + 1].tolist(), abs=1e-4)
    # the events stream says the same, then ends with the run
    events = [json.loads(line[6:]) for line in client.get("/api/train/events").text.splitlines()
              if line.startswith("data: ")]
    assert events[-1]["state"] == "finished" and events[-1]["probes"] == status["probes"]
    # the model picker lists it by name; every view switches to the run's checkpoint, and back
    listed = {m["name"]: m for m in client.get("/api/models").json()["models"]}[f"playground/{run}"]
    assert listed["tokenizer"] == "word" and listed["step"] == 20 and not listed["training"]
    card = client.post("/api/checkpoint", json={"run": run, "which": "last"}).json()
    assert client.get("/api/model").json() == card and card["step"] == 20
    assert client.post("/api/checkpoint", json={"run": None}).json()["step"] != 20


def test_stop_saves_and_resume_continues_the_same_run(client, tmp_path):
    run = client.post("/api/train", json={**TINY, "max_iters": 2000}).json()["run"]
    wait(client, lambda s: s["losses"])                                    # it has taken steps
    assert client.post("/api/train/stop", json={}).json() == {"stopping": True}
    status = wait(client, lambda s: s["state"] != "training")
    assert status["state"] == "stopped" and "resume" in status["outcome"]
    stopped_at = load_checkpoint(tmp_path / "playground" / run / "last.pt")["iter"]
    assert 0 < stopped_at < 2000
    assert client.post("/api/train/resume", json={"run": run}).json() == {"run": run}
    wait(client, lambda s: s["state"] == "training" and s["losses"] and s["losses"][-1]["iter"] > stopped_at)
    assert client.post("/api/train/stop", json={}).json() == {"stopping": True}
    status = wait(client, lambda s: s["state"] != "training")
    assert load_checkpoint(tmp_path / "playground" / run / "last.pt")["iter"] > stopped_at
    assert client.post("/api/train/stop", json={}).json() == {"stopping": False}


@pytest.mark.parametrize("body, status, message", [
    ({"corpus": "text", "text": "too short"}, 400, "at least 1,000 characters"),
    ({"corpus": "text", "text": "a" * 210_000}, 400, "at most 200 KiB"),
    ({"corpus": "toy", "text": "x" * 300}, 400, 'only then'),
    ({"corpus": "text", "text": "a" * 1000 + "\ud800"}, 422, "valid string"),       # a lone surrogate
    ({"corpus": "text"}, 400, "give the text"),
    ({"n_embd": 30, "n_head": 4}, 400, "divisible by n_head"),
    ({"n_layer": 99}, 422, "n_layer"),
    ({"lr": -1}, 422, "lr"),
    ({"corpus": "../etc/passwd"}, 422, "corpus"),
    ({"positional": "alibi"}, 422, "positional"),
    ({"tokenizer": "bpe"}, 422, "tokenizer"),
    ({"seed": -1}, 422, "seed: Input should be greater than or equal to 0"),
    ({"corpus": "text", "text": "word " * 250}, 400, "makes 251 words, digits and marks; a word model needs at least 330"),
])
def test_bad_training_requests_are_refused_with_one_line(client, body, status, message):
    # ASCII JSON, so that a lone surrogate travels as the escape "\ud800", as a browser could send it
    answer = client.post("/api/train", content=json.dumps(body).encode("ascii"),
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == status and message in answer.json()["error"], answer.json()


@pytest.mark.parametrize("body", [{"run": "../../etc"}, {"run": "20990101-000000"}])
def test_only_runs_of_this_server_can_be_resumed_or_loaded(client, body):
    assert "no playground run" in client.post("/api/train/resume", json=body).json()["error"]
    answer = client.post("/api/checkpoint", json=body)
    assert answer.status_code == 404 and "no run named" in answer.json()["error"]


@pytest.mark.parametrize("tokenizer, vocabulary", [("word", ["a", " rose", " is", " a", ".", " "]),
                                                   ("char", list("a rosei."))])
def test_a_pasted_text_is_trained_on_inside_the_run_folder_and_a_model_without_positions_says_so(
        client, tmp_path, tokenizer, vocabulary):
    text = "a rose is a rose is a rose. " * 45
    run = client.post("/api/train", json={**TINY, "max_iters": 10, "corpus": "text", "text": text,
                                          "positional": "none", "tokenizer": tokenizer}).json()["run"]
    status = wait(client, lambda s: s["state"] != "training")
    assert status["state"] == "finished", status["outcome"]
    assert (tmp_path / "playground" / "texts" / f"{run}.txt").read_text(encoding="utf-8") == text
    assert (tmp_path / "playground" / run / "best.pt").is_file()
    # the vocabulary is the pasted text's own (a word model's: its words, marks and <unk>), and a line break
    loaded = load_for_inference(tmp_path / "playground" / run / "best.pt")
    assert loaded.tokenizer.kind == tokenizer
    assert sorted(loaded.tokenizer.token_strings(list(range(loaded.tokenizer.vocab_size)))) == sorted(
        {*vocabulary, "\n"} | ({"<unk>"} if tokenizer == "word" else set()))
    assert all(p["answer"].startswith("(cannot ask") and p["p_expected"] is None for p in status["probes"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["playground"]      # nothing written elsewhere
    client.post("/api/checkpoint", json={"run": run, "which": "last"})
    view = client.get("/api/positions").json()
    assert view["positional"] == "none" and view["table"] is None


def test_a_metrics_line_cut_short_does_not_break_the_status(client, tmp_path):
    """A trainer killed mid-line (or read while it appends) leaves a last line cut short: the status still answers."""
    run = client.post("/api/train", json={**TINY, "max_iters": 10}).json()["run"]
    wait(client, lambda s: s["state"] != "training")
    with open(tmp_path / "playground" / run / "metrics.jsonl", "a", encoding="utf-8") as metrics:
        metrics.write('{"iter": 11, "lo')
    answer = client.get("/api/train")
    assert answer.status_code == 200 and [m["iter"] for m in answer.json()["losses"]] == [10]


def test_page_runs_have_a_disk_budget_and_a_run_that_fails_early_leaves_nothing(client, tmp_path):
    from playground.live import MAX_KEPT_RUNS

    root = tmp_path / "playground"
    old = [f"2000010{i // 10}-0000{i % 10}0" for i in range(MAX_KEPT_RUNS + 2)]      # older than any new id
    for run in old:
        (root / run).mkdir(parents=True)
        (root / run / "last.pt").write_bytes(b"a stopped run's checkpoint")
    (root / "20000101-000001").mkdir()                             # a run that ended before its first checkpoint
    status = client.get("/api/train").json()
    assert f"keeps its {MAX_KEPT_RUNS} newest runs" in status["disk"]
    run = client.post("/api/train", json={**TINY, "max_iters": 5000}).json()["run"]
    kept = sorted(p.name for p in root.iterdir() if p.name[0].isdigit())
    assert kept == sorted(old[-(MAX_KEPT_RUNS - 1):] + [run])      # the oldest went first, the new run is kept
    client.app.state.live.proc.kill()                               # dies long before its first checkpoint
    status = wait(client, lambda s: s["state"] != "training")
    assert status["state"] == "failed" and "its folder was removed" in status["outcome"]
    assert not (root / run).exists() and not (root / "logs" / f"{run}.txt").exists()


def test_the_untrained_model_the_server_asks_at_step_0_is_the_trainers(tmp_path, corpus):
    """``step_zero`` builds a run's model as train.py does: one step at a learning rate of 1e-12 leaves the
    trainer's weights where they started, and they equal the server's step-0 model's."""
    import torch

    from core.config import load_config
    from playground.live import step_zero
    from tests.conftest import tiny_overrides
    from training.trainer import train

    settings = tiny_overrides(tmp_path / "run", corpus, **{"train.max_iters": 1, "train.lr": 1e-12,
                                                           "train.min_lr": 1e-12, "train.seed": 7})
    train(load_config(None, settings), progress=False, log=lambda *_: None)
    after_one_step = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    fresh = step_zero(None, settings).model.state_dict()
    assert after_one_step.keys() == fresh.keys()
    for name, weight in fresh.items():
        assert torch.allclose(after_one_step[name].float(), weight, atol=1e-6), name
    other = step_zero(None, [*settings, "train.seed=8"]).model.state_dict()        # another seed, another start
    assert not torch.equal(other["embed.token.weight"], fresh["embed.token.weight"])

