"""SIGKILL at any moment loses nothing: every checkpoint on disk loads, and --resume gives the uninterrupted run.

``train.py`` is killed between two steps, in the middle of an evaluation and in the middle of a checkpoint write (the
``GPT_PLAYGROUND_KILL_AT`` hook of ``core.fault_injection`` makes it SIGKILL itself at that exact point), each
time resumed with ``--resume`` and killed again further on. The run finished this way must have logged the same
losses, bit for bit, as a run that was never interrupted.
"""
import shlex
import signal

import torch

from core.atomic_files import TMP_PREFIX
from core.checkpoint import load_checkpoint, model_from_checkpoint
from core.config import load_config
from core.fault_injection import ENV
from tests.conftest import run_cli, tiny_overrides
from training.run_dir import MetricsLog, read_metrics
from training.trainer import train

EXTRA = {"model.dropout": 0.1}        # dropout draws from the RNG: a resume must restore it exactly


def history(run_dir):
    """What must not change: (iter, loss) per step and (iter, train_loss, val_loss) per evaluation."""
    return [{k: v for k, v in m.items() if k in ("iter", "loss", "train_loss", "val_loss")}
            for m in read_metrics(run_dir / "metrics.jsonl")]


def checkpoints_on_disk_load(run_dir) -> dict[str, int]:
    """Every checkpoint present loads and rebuilds its model; returns the step each one holds."""
    steps = {}
    for name in ("last.pt", "best.pt"):
        if (run_dir / name).exists():
            ckpt = load_checkpoint(run_dir / name)
            model_from_checkpoint(ckpt, run_dir / name)
            steps[name] = ckpt["iter"]
    return steps


def test_killed_anywhere_and_resumed_equals_the_uninterrupted_run(tmp_path, corpus):
    reference = train(load_config(None, tiny_overrides(tmp_path / "reference", corpus, **EXTRA)),
                      progress=False, log=lambda *_: None).run_dir
    val = {m["iter"]: m["val_loss"] for m in read_metrics(reference / "metrics.jsonl") if "val_loss" in m}
    best_at_8 = 8 if val[8] < val[4] else 4
    run = tmp_path / "run"
    start = ["train.py", "--no-progress", "--set", *tiny_overrides(run, corpus, **EXTRA)]
    resume = ["train.py", "--no-progress", "--resume", run]
    # (command, kill point, steps held by the checkpoints on disk afterwards); evaluations every 4 steps
    kills = [(start, "step:6", {"last.pt": 4, "best.pt": 4}),           # between steps, metrics past last.pt
             (resume, "eval:1", {"last.pt": 4, "best.pt": 4}),          # halfway through the step-8 evaluation
             (resume, "write:last.pt:1", {"last.pt": 4, "best.pt": best_at_8})]  # step 8: best.pt first, then last.pt
    for command, point, steps in kills:
        result = run_cli(*command, env={ENV: point})
        assert result.returncode == -signal.SIGKILL, (point, result.stderr)
        assert checkpoints_on_disk_load(run) == steps, point
    assert list(run.glob(f"{TMP_PREFIX}last.pt.*")), "the last kill should have left a half-finished write"

    result = run_cli(*resume)
    assert result.returncode == 0, result.stderr
    assert not list(run.glob(f"{TMP_PREFIX}*"))                         # stray temp files were removed
    assert history(run) == history(reference)
    for name in ("last.pt", "best.pt"):
        mine, theirs = load_checkpoint(run / name), load_checkpoint(reference / name)
        assert (mine["iter"], mine["best_val"]) == (theirs["iter"], theirs["best_val"])
        assert all(torch.equal(mine["model"][k], theirs["model"][k]) for k in theirs["model"])
    commands = (run / "command.txt").read_text().splitlines()
    assert commands == [shlex.join(map(str, start))] + [shlex.join(map(str, resume))] * 3   # the start, then resumes


def test_a_metrics_line_cut_by_a_kill_is_dropped_on_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iter": 3, "loss": 2.5}\n{"iter": 4, "train_loss": 2.4, "val_loss": 2.6}\n{"iter": 5, "lo')
    MetricsLog(path, keep_up_to=4).write({"iter": 5, "loss": 2.3})
    assert read_metrics(path) == [{"iter": 3, "loss": 2.5}, {"iter": 4, "train_loss": 2.4, "val_loss": 2.6},
                                  {"iter": 5, "loss": 2.3}]
