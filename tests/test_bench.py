"""The benchmark at tiny sizes: the structure and sanity of what it reports (never how fast it is)."""
import json
import math

import pytest
import torch
import yaml

from benchmark.generation import generation_speed
from benchmark.machine import describe_machine, matmul_peak, peak_memory_mb
from benchmark.report import format_report, write_json
from benchmark.suite import run_suite
from benchmark.training import measure_throughput, time_to_loss
from errors import UserError
from model.config import ModelConfig
from tests.conftest import ROOT, run_cli
from training.config import load_config

TINY_MODEL = ModelConfig(block_size=16, n_layer=2, n_head=2, n_embd=32)
CPU = torch.device("cpu")


def test_machine_description_peak_and_memory():
    info = describe_machine(CPU)
    assert info["cpu"] and info["cores"] >= 1 and info["torch"] == torch.__version__
    assert matmul_peak(CPU, torch.float32, n=64, repeats=2) > 0
    assert peak_memory_mb(CPU) > 10                     # a Python process with torch loaded


def test_throughput_reports_tokens_flops_and_mfu(tiny_cfg):
    report = measure_throughput({"a": tiny_cfg(), "b": tiny_cfg(**{"train.fused_optimizer": False})},
                                steps=2, warmup=1, rounds=2, peak_size=64, log=lambda *_: None)
    assert set(report) == {"a", "b"}
    for r in report.values():
        assert r["tokens_per_s"] > 0 and r["peak_gflops"] > 0 and r["mfu"] > 0
        assert r["flops_per_token"] == 6 * r["params"] + 12 * 2 * 16 * 32         # 6N + 12·L·T·C
        achieved = r["tokens_per_s"] * r["flops_per_token"] / 1e9
        assert math.isclose(r["achieved_gflops"], achieved, rel_tol=1e-2, abs_tol=0.01)
        assert r["compiled"] is False and r["dtype"] == "float32"


def test_time_to_loss_stops_at_the_first_evaluation_below_the_target(tiny_cfg):
    reached = time_to_loss(tiny_cfg(), target=100.0, log=lambda *_: None)
    assert reached["reached"] and reached["iter"] == 4 and len(reached["evals"]) == 1     # eval_interval 4
    assert 0 < reached["val_whole"] < 100
    missed = time_to_loss(tiny_cfg(), target=1e-3, log=lambda *_: None)
    assert not missed["reached"] and missed["iter"] == 12 and missed["seconds"] > 0


def test_target_val_loss_must_be_positive():
    with pytest.raises(UserError, match="target_val_loss must be > 0"):
        load_config(None, ["train.target_val_loss=0"])


def test_generation_with_and_without_cache():
    rows = generation_speed(TINY_MODEL, batch_sizes=(1, 2), prompt_len=4, rounds=1)
    assert [(r["batch"], r["kv_cache"]) for r in rows] == [(1, True), (1, False), (2, True), (2, False)]
    assert all(r["tokens_per_s"] > 0 and r["new_tokens"] == 12 for r in rows)


def test_whole_suite_prints_a_table_and_writes_json(tmp_path, corpus):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": {"block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 32},
                                      "data": {"cache_dir": str(tmp_path / "cache")},
                                      "train": {"batch_size": 4, "max_iters": 8, "eval_interval": 4, "eval_iters": 2,
                                                "device": "cpu"}}))
    results = run_suite(config, corpus, variants={"no-clip": ["train.grad_clip=0"]}, target=100.0, steps=1, warmup=1,
                        rounds=1, large_steps=1, gen_model=TINY_MODEL, gen_rounds=1, peak_size=64,
                        log=lambda *_: None)
    assert set(results["throughput"]) == {"tiny", "no-clip", "2L/32d/block 16"}
    assert results["time_to_loss"][str(config)]["reached"]
    assert len(results["generation"]["rows"]) == 4
    assert set(results["peak_memory_mb"]) == {"throughput", "large", "time-to-loss tiny", "generation"}
    table = format_report(results)
    assert results["machine"]["cpu"] in table.splitlines()[0]
    assert "MFU" in table and "KV cache" in table and "time to loss" in table
    assert json.loads(write_json(results, tmp_path / "out" / "r.json").read_text())["config"] == str(config)


def test_bench_cli_without_the_text_is_a_one_line_error(tmp_path):
    result = run_cli(ROOT / "bench.py", "--data", tmp_path / "missing.txt")
    assert result.returncode == 2 and result.stderr.startswith("error:") and len(result.stderr.splitlines()) == 1


def test_thread_setting_and_back_to_the_default():
    from training.device import DEFAULT_THREADS, set_threads
    set_threads(1)
    assert torch.get_num_threads() == 1
    set_threads(0)
    assert torch.get_num_threads() == DEFAULT_THREADS
