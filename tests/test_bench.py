"""The benchmark at tiny sizes: the structure and sanity of what it reports (never how fast it is)."""
import json
import math
import time
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.generation import generation_speed
from benchmark.machine import describe_machine, matmul_flops, peak_memory_mb
from benchmark.report import format_report, write_json
from benchmark.suite import run_suite
from benchmark.training import measure_throughput, time_to_loss
from core.config import load_config
from errors import UserError
from model.config import ModelConfig
from tests.conftest import ROOT, run_cli

TINY_MODEL = ModelConfig(block_size=16, n_layer=2, n_head=2, n_embd=32)
CPU = torch.device("cpu")


def test_machine_description_peak_and_memory():
    info = describe_machine(CPU)
    assert info["cpu"] and info["cores"] >= 1 and info["torch"] == torch.__version__
    assert max(matmul_flops(CPU, torch.float32, n=64)() for _ in range(2)) > 0
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
        assert r["compiled"] is False and r["dtype"] == "float32" and r["graphs"] is None


def test_a_row_says_step_only_where_the_step_was_recorded(tiny_cfg):
    """A recording that failed trains eagerly: its row must not read as a recorded step's."""
    import types

    from benchmark.training import graphs_in
    from training.loop import build
    run = build(tiny_cfg(), log=lambda *_: None)
    assert graphs_in(run) is None
    run.graphed = types.SimpleNamespace(graph=None, eager=True)          # recording failed
    assert graphs_in(run) is None
    run.graphed = types.SimpleNamespace(graph=object(), eager=False)     # recorded and replayed
    assert graphs_in(run) == "step"


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
    assert all(r["graphs"] == [] for r in rows)                 # nothing is recorded off a GPU


def test_whole_suite_prints_a_table_and_writes_json(tmp_path, corpus):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": {"block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 32},
                                      "data": {"cache_dir": str(tmp_path / "cache")},
                                      "train": {"batch_size": 4, "max_iters": 8, "eval_interval": 4, "eval_iters": 2,
                                                "device": "cpu"}}))
    results = run_suite(config, corpus, variants={"no-clip": ["train.grad_clip=0"]}, target=100.0, steps=1, warmup=1,
                        rounds=1, large_steps=1, generation_model=TINY_MODEL, generation_rounds=1, peak_size=64,
                        ttl_variants=[(config, ["train.eval_interval=2"])], log=lambda *_: None)
    assert set(results["throughput"]) == {"tiny", "no-clip", "2L/32d/block 16"}
    assert results["time_to_loss"][str(config)]["reached"]
    assert results["time_to_loss"][f"{config} train.eval_interval=2"]["iter"] == 2      # the override took effect
    assert len(results["generation"]["rows"]) == 4
    assert set(results["peak_memory_mb"]) == {"throughput", "large", "time-to-loss tiny",
                                              "time-to-loss tiny train.eval_interval=2", "generation"}
    table = format_report(results)
    assert results["machine"]["cpu"] in table.splitlines()[0]
    assert "MFU" in table and "KV cache" in table and "time to loss" in table
    assert json.loads(write_json(results, tmp_path / "out" / "r.json").read_text())["config"] == str(config)


def test_bench_cli_without_the_text_is_a_one_line_error(tmp_path):
    result = run_cli(ROOT / "bench.py", "--data", tmp_path / "missing.txt")
    assert result.returncode == 2 and result.stderr.startswith("error:") and len(result.stderr.splitlines()) == 1


def test_the_json_is_written_before_the_table_is_formatted(tmp_path, monkeypatch):
    """Minutes of measuring are not lost to a row the table cannot show."""
    import bench
    from benchmark import report, suite
    results = {"machine": describe_machine(torch.device("cpu")), "side_by_side": [{"command": "train.py"}]}
    monkeypatch.setattr(suite, "run_suite", lambda *a, **kw: results)
    monkeypatch.setattr(report, "format_report", lambda r: r["side_by_side"][0]["seconds"])    # KeyError
    (tmp_path / "text.txt").write_text("hello")
    out = tmp_path / "results.json"
    with pytest.raises(KeyError):
        bench.run_bench(bench.parse_args(["--data", str(tmp_path / "text.txt"), "--out", str(out)]))
    assert json.loads(out.read_text())["side_by_side"] == [{"command": "train.py"}]


def test_thread_setting_and_back_to_the_default():
    from core.device import DEFAULT_THREADS, set_threads
    set_threads(1)
    assert torch.get_num_threads() == 1
    set_threads(0)
    assert torch.get_num_threads() == DEFAULT_THREADS


FAKE_NANOGPT = '''import sys, time
print("tokens per iteration will be: 16,384", flush=True)
lines = [(0.0, "step 0: train loss 4.2000, val loss 4.2000"), (0.0, "iter 0: loss 4.2000, time 9000.00ms, mfu -100.00%")]
for i in range(10, 510, 10):
    lines.append((0.02, f"iter {i}: loss 2.0000, time 2.00ms, mfu 10.00%"))
    if i % 250 == 0:
        lines[-1:-1] = [(0.0, f"step {i}: train loss 1.5000, val loss {1.6 if i == 250 else 1.46:.4f}")]
for pause, line in lines:
    time.sleep(pause)
    print(line, flush=True)
time.sleep(60)        # a real run goes on for 5000 steps: the benchmark must stop it
'''


def fake_nanogpt(tmp_path, script: str = FAKE_NANOGPT) -> Path:
    """A checkout shaped like nanoGPT's whose train.py writes its arguments to tmp_path/argv.txt, then runs
    ``script``."""
    checkout = tmp_path / "nanoGPT"
    (checkout / "config").mkdir(parents=True)
    (checkout / "data" / "shakespeare_char").mkdir(parents=True)
    (checkout / "train.py").write_text(f"import pathlib, sys\n"
                                       f"pathlib.Path({str(tmp_path / 'argv.txt')!r}).write_text(' '.join(sys.argv[1:]))\n"
                                       + script)
    (checkout / "config" / "train_shakespeare_char.py").write_text("batch_size = 64\n")
    (checkout / "data" / "shakespeare_char" / "prepare.py").write_text(
        "import pathlib; assert pathlib.Path(__file__).with_name('input.txt').read_text() == 'text'\n")
    (tmp_path / "corpus.txt").write_text("text")
    return checkout


def test_nanogpt_is_timed_to_its_first_evaluation_at_the_target_and_stopped(tmp_path):
    from benchmark import side_by_side
    checkout = fake_nanogpt(tmp_path)
    result = side_by_side.nanogpt(checkout, tmp_path / "corpus.txt", 1.47, log=lambda *_: None)
    assert result["iter"] == 500 and result["val"] == 1.46 and result["seconds"] < 30     # not the whole minute
    assert result["step_ms_own"] == 2.0
    # 10 iterations per 20 ms of sleep: a loaded machine stretches the sleeps, never shortens them
    assert 16_384 * 10 / 0.02 / 10 < result["tokens_per_s"] <= 16_384 * 10 / 0.02 * 1.01
    assert result["overrides"] == [] and len((tmp_path / "argv.txt").read_text().split()) == 2   # the GPU recipe as it is


def test_nanogpt_on_a_cpu_runs_its_cpu_recipe(tmp_path):
    """Its config file is the GPU recipe (batch 64 × 256, CUDA): on a CPU the README's overrides make it the
    4-layer, 128-wide model with batch 12 × 64, so the tokens/s count 768 tokens a step."""
    from benchmark import side_by_side
    checkout = fake_nanogpt(tmp_path)
    result = side_by_side.nanogpt(checkout, tmp_path / "corpus.txt", 1.47, device="cpu", log=lambda *_: None)
    argv = (tmp_path / "argv.txt").read_text().split()
    assert argv[0] == "config/train_shakespeare_char.py" and argv[2:] == side_by_side.NANOGPT_CPU
    assert {"--device=cpu", "--batch_size=12", "--block_size=64", "--n_layer=4", "--n_embd=128"} <= set(argv)
    assert result["overrides"] == side_by_side.NANOGPT_CPU
    row = format_report({"machine": describe_machine(torch.device("cpu")), "side_by_side": [result]}).splitlines()[-1]
    assert row.startswith("nanoGPT train.py, its CPU recipe ")
    assert 768 * 10 / 0.02 / 10 < result["tokens_per_s"] <= 768 * 10 / 0.02 * 1.01


def test_a_nanogpt_that_ends_above_the_target_is_timed_to_its_end(tmp_path):
    """As its CPU recipe does (val 1.8857 at its last step against a target of 1.88): the row is its whole run."""
    from benchmark import side_by_side
    checkout = fake_nanogpt(tmp_path, FAKE_NANOGPT.replace("time.sleep(60)", "time.sleep(0.5)"))
    result = side_by_side.nanogpt(checkout, tmp_path / "corpus.txt", 1.40, log=lambda *_: None)
    assert (result["reached"], result["iter"], result["val"]) == (False, 500, 1.46)
    assert 1.5 <= result["seconds"] < 30                 # 50 lines 20 ms apart, then half a second to its end
    row = format_report({"machine": describe_machine(torch.device("cpu")), "side_by_side": [result]}).splitlines()[-1]
    assert row.split()[-5:-1] == ["False", f"{result['seconds']:.1f}", "500", "1.4600"]


def test_a_nanogpt_that_crashes_is_reported_with_its_last_line(tmp_path):
    from benchmark import side_by_side
    checkout = fake_nanogpt(tmp_path, 'print("step 0: loading", flush=True)\n'
                                      'raise SystemExit("AssertionError: Torch not compiled with CUDA enabled")\n')
    started = time.perf_counter()
    result = side_by_side.nanogpt(checkout, tmp_path / "corpus.txt", 1.47, log=lambda *_: None)
    assert result["failed"] == "exited with code 1: AssertionError: Torch not compiled with CUDA enabled"
    assert time.perf_counter() - started < 30


def test_nanogpt_speed_leaves_out_compilation_and_evaluations():
    from benchmark.side_by_side import nanogpt_speed
    #        (iter, seconds since start, its own ms)
    iters = [(0, 20.0, 9000.0), (10, 20.1, 10.0), (20, 20.2, 10.0), (30, 25.2, 10.0), (40, 25.3, 10.0)]
    speed = nanogpt_speed(iters, eval_interval=30, tokens_per_iter=100)
    assert speed == {"tokens_per_s": 10_000, "step_ms_own": 10.0}    # 10 iterations per 0.1 s; 20→30 holds an eval


def test_our_whole_command_is_timed_to_the_target(tmp_path, corpus):
    from benchmark import side_by_side
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": {"block_size": 16, "n_layer": 1, "n_head": 2, "n_embd": 16},
                                      "train": {"device": "cpu", "dtype": "float32", "batch_size": 4, "max_iters": 40,
                                                "eval_interval": 10, "eval_iters": 2, "log_interval": 5}}))
    result = side_by_side.ours(config, corpus, 100.0, log=lambda *_: None)     # any loss reaches 100
    assert result["reached"] and result["iter"] == 10 and result["val"] < 100 and result["seconds"] > 0
    failed = side_by_side.ours(config, tmp_path / "missing.txt", 100.0, log=lambda *_: None)
    assert "does not exist" in failed["failed"]
    never_near = side_by_side.ours(config, corpus, 0.001, log=lambda *_: None)     # the whole split never checked
    assert (never_near["reached"], never_near["iter"], never_near["val"]) == (False, 40, None)
    row = format_report({"machine": describe_machine(torch.device("cpu")), "side_by_side": [never_near]}).splitlines()[-1]
    assert row.split()[-5:-1] == ["False", f"{never_near['seconds']:.1f}", "40", "-"]
