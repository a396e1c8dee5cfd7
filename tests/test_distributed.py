"""DDP on CPU (gloo): two processes with batch B each must train exactly like one process with batch 2·B."""
import math
import os
import subprocess
import sys

from tests.conftest import ROOT, run_cli, tiny_overrides
from training.run_dir import read_metrics


def torchrun(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "train.py", *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def what_the_processes_said(result: subprocess.CompletedProcess) -> str:
    """A failed run's own lines, without torchrun's report of it: which process failed, and its error."""
    lines = [line for line in result.stderr.splitlines() if "torch/distributed/elastic" not in line]
    return "\n".join(lines[:40] + ["..."] + lines[-20:]) if len(lines) > 60 else "\n".join(lines)


def losses(run_dir):
    return [(m["iter"], m["loss"]) for m in read_metrics(run_dir / "metrics.jsonl") if "loss" in m]


def test_two_processes_equal_one_with_the_same_global_batch_and_resume(tmp_path, corpus):
    extra = {"train.max_iters": 6, "train.grad_accum": 2}
    one = tiny_overrides(tmp_path / "one", corpus, **extra, **{"train.batch_size": 8})
    two = tiny_overrides(tmp_path / "two", corpus, **extra, **{"train.batch_size": 4})
    assert run_cli("train.py", "--no-progress", "--set", *one).returncode == 0
    result = torchrun("--no-progress", "--set", *two)
    assert result.returncode == 0, what_the_processes_said(result)
    assert "× 2 processes (DDP)" in result.stdout and result.stdout.count("done: step 6") == 1   # rank 0 alone
    # continue both runs to step 10, the two-process one under DDP again
    assert run_cli("train.py", "--no-progress", "--resume", tmp_path / "one", "--set", "train.max_iters=10").returncode == 0
    result = torchrun("--no-progress", "--resume", tmp_path / "two", "--set", "train.max_iters=10")
    assert result.returncode == 0, what_the_processes_said(result)
    single, ddp = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert [i for i, _ in single] == [i for i, _ in ddp] == list(range(1, 11))
    for (_, a), (_, b) in zip(single, ddp):
        assert math.isclose(a, b, rel_tol=1e-5), (a, b)
    assert sorted(p.name for p in (tmp_path / "two").glob("*.pt")) == ["best.pt", "last.pt"]


def test_bad_input_under_torchrun_is_said_once(tmp_path, corpus):
    """Every process meets the same bad input; one error line is printed (torchrun then adds its own report)."""
    result = torchrun("--no-progress", "--set", *tiny_overrides(tmp_path / "run", corpus, **{"model.n_layer": 0}))
    assert result.returncode != 0
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] == [
        "error: config: model.n_layer must be > 0, got 0"]


def test_a_process_other_than_rank_0_says_its_own_error_after_waiting(monkeypatch, capsys):
    """Where rank 0 did not meet the error (torchrun did not stop this process), the error is still said, with the rank."""
    import errors
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(errors, "OTHER_RANKS_WAIT_S", 0.0)
    assert errors.run_command(lambda: (_ for _ in ()).throw(errors.UserError("no such file"))) == 2
    assert capsys.readouterr().err == "error: (rank 1) no such file\n"
