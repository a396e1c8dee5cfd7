"""The Runs panel's API: GET /api/runs lists every run with metrics by name; POST /api/runs/compare answers the
curves of ``metrics.jsonl``, the config keys that differ and the toy-fact score of each toy run's best.pt (evaluated
once per version of the file), and refuses anything that is not a listed name, a path above all. POST
/api/train/variant starts a page run's exact settings again with other positions."""
import json
import os
import shutil

import pytest
from fastapi.testclient import TestClient

from data.toy_facts import toy_facts
from facts import evaluate_facts
from inference import load_for_inference
from playground import runs as runs_module
from playground.live import LiveTraining
from playground.server import create_app

PAGE_RUN = "20250101-120000"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, play_checkpoint, play_word_checkpoint, trained_run):
    """The two toy models, a page run, a run on another text, and a folder that is no run."""
    root = tmp_path_factory.mktemp("compared") / "runs"
    for name, run in [("toy_words", play_word_checkpoint.parent), ("toy", play_checkpoint.parent),
                      (f"playground/{PAGE_RUN}", play_checkpoint.parent), ("hello", trained_run)]:
        shutil.copytree(run, root / name)
    (root / "notes").mkdir()
    (root / "notes" / "config.yaml").write_text("model: {}\n")
    return root


@pytest.fixture(scope="module")
def client(runs):
    checkpoint = runs / "toy_words" / "best.pt"
    return TestClient(create_app(load_for_inference(checkpoint), str(checkpoint), runs_root=runs),
                      base_url="http://127.0.0.1")


def records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_every_run_with_metrics_is_listed_by_name(client):
    listed = client.get("/api/runs").json()["runs"]
    assert [r["run"] for r in listed] == ["hello", "toy", "toy_words", f"playground/{PAGE_RUN}"]
    by_name = {r["run"]: r for r in listed}
    assert by_name["toy_words"] == {"run": "toy_words", "training": False, "step": 40, "positional": "sinusoidal",
                                    "tokenizer": "word", "max_iters": 40, "toy": True}
    assert not by_name["hello"]["toy"] and by_name["toy"]["tokenizer"] == "char"


def test_compare_answers_the_curves_of_metrics_jsonl_the_keys_that_differ_and_the_toy_facts(client, runs,
                                                                                            monkeypatch):
    evaluated = {}

    def evaluate(loaded):                   # every fourth fact, each kind of fact included: a quarter of the time
        evaluated[len(evaluated)] = (loaded, evaluate_facts(loaded, toy_facts()[::4]))
        return evaluated[len(evaluated) - 1][1]
    monkeypatch.setattr(runs_module, "evaluate_facts", evaluate)
    names = ["toy_words", "toy", "hello"]
    answer = client.post("/api/runs/compare", json={"runs": names})
    assert answer.status_code == 200, answer.text
    compared = {r["run"]: r for r in answer.json()["runs"]}
    assert list(compared) == names
    for name in names:
        lines = records(runs / name)
        assert compared[name]["train"] == [[r["iter"], r["loss"]] for r in lines if "loss" in r]
        assert compared[name]["val"] == [[r["iter"], r["val_loss"]] for r in lines if "val_loss" in r]
        assert compared[name]["tokens_per_step"] == 8 * 64 if name != "hello" else 4 * 16
    # side by side: only the keys whose values differ (where a run lives never counts)
    differing = answer.json()["differing"]
    assert {"data.tokenizer", "model.block_size", "data.path"} <= set(differing)
    assert not {"train.out_dir", "data.cache_dir", "model.n_layer", "train.seed"} & set(differing)
    assert compared["toy_words"]["config"]["data.tokenizer"] == "word"
    assert compared["hello"]["config"]["data.path"] == "corpus.txt"                    # a file name, not a path
    assert str(runs.parent) not in answer.text
    # the toy runs' best.pt know so many facts: evaluate_facts' own count; the run on other text has no score
    loaded, word = evaluated[0]
    assert loaded.cfg.data.tokenizer == "word" and loaded.step == 40
    assert compared["toy_words"]["facts"]["categories"] == {name: [e["correct"], e["total"]] for name, e in word.items()}
    assert compared["toy_words"]["facts"]["correct"] == sum(e["correct"] for e in word.values())
    assert compared["toy_words"]["facts"]["total"] == sum(e["total"] for e in word.values()) > 0
    assert compared["toy"]["facts"]["step"] == 40 and compared["hello"]["facts"] is None
    # asked again: nothing re-evaluated; a best.pt that changes is evaluated again
    assert len(evaluated) == 2
    client.post("/api/runs/compare", json={"runs": names})
    assert len(evaluated) == 2
    best = runs / "toy" / "best.pt"
    os.utime(best, ns=(best.stat().st_atime_ns, best.stat().st_mtime_ns + 10**9))
    client.post("/api/runs/compare", json={"runs": names})
    assert len(evaluated) == 3
    assert sorted(p.name for p in (runs / "toy").iterdir()) == sorted(
        p.name for p in (runs / "toy_words").iterdir())                            # nothing written into a run


def test_a_long_curve_is_thinned_to_every_kth_point_and_its_last():
    points = [[i, float(i)] for i in range(1, 4502)]
    thinned = runs_module.thinned(points)
    assert len(thinned) <= runs_module.MAX_POINTS + 1 and thinned[-1] == points[-1]
    assert thinned[:3] == [[1, 1.0], [4, 4.0], [7, 7.0]]


@pytest.mark.parametrize("name", ["../toy", "toy/../toy_words", "/etc/passwd", "toy_words/metrics.jsonl", "notes",
                                  "playground", f"playground/{PAGE_RUN}/../../toy", PAGE_RUN, ".", "TOY"])
def test_a_path_or_a_name_that_is_not_listed_is_refused(client, name):
    answer = client.post("/api/runs/compare", json={"runs": ["toy", name]})
    assert answer.status_code == 404
    assert answer.json() == {"error": f"no run named {name!r} with metrics in the runs folder; GET /api/runs "
                                      "lists them"}


@pytest.mark.parametrize("body", [{"runs": []}, {"runs": ["toy"] * 13}, {"runs": [1]}, {"runs": "toy"}, {},
                                  {"runs": [""]}, {"runs": ["toy"], "path": "/"}])
def test_malformed_compare_requests_are_refused(client, body):
    answer = client.post("/api/runs/compare", json=body)
    assert answer.status_code == 422 and answer.json()["error"]


def test_a_variant_is_the_same_run_with_other_positions(play_checkpoint, tmp_path, monkeypatch):
    """The command the variant starts reads the page run's own config.yaml: every key is the same but the
    positions, and where the run and its token cache go."""
    from core.config import config_to_dict, load_config, parse_overrides
    runs = tmp_path / "runs"
    shutil.copytree(play_checkpoint.parent, runs / "playground" / PAGE_RUN)
    live = LiveTraining(runs)
    launched = []
    monkeypatch.setattr(live, "launch", lambda run_dir, args: launched.append((run_dir, args)))
    new = live.variant(PAGE_RUN, "learned")
    (run_dir, args), = launched
    assert run_dir.name == new != PAGE_RUN and args[:2] == ["--config", str(runs / "playground" / PAGE_RUN /
                                                                             "config.yaml")]
    started = config_to_dict(load_config(args[1], args[3:]))
    source = config_to_dict(load_config(runs / "playground" / PAGE_RUN / "config.yaml"))
    changed = {f"{s}.{k}" for s, values in started.items() for k, v in values.items() if source[s][k] != v}
    assert changed == {"model.positional", "train.out_dir", "data.cache_dir"}
    assert started["model"]["positional"] == "learned" and parse_overrides(args[3:])["train"]["out_dir"] == str(run_dir)
    for run, positional, status in [("../toy", "learned", 400), ("20991231-000000", "none", 400),
                                    (PAGE_RUN, "spiral", 422)]:
        client = TestClient(create_app(load_for_inference(play_checkpoint), "toy/best.pt", runs_root=runs),
                            base_url="http://127.0.0.1")
        answer = client.post("/api/train/variant", json={"run": run, "positional": positional})
        assert answer.status_code == status and answer.json()["error"], answer.text
