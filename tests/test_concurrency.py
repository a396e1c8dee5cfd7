"""Two processes at once: a second trainer on the same run directory is refused, and readers never see half a file.

Both tests run real ``train.py`` processes: the lock is an operating-system file lock and the checkpoint writes are
renames, and only separate processes show that they work.
"""
import os
import signal
import subprocess
import sys
import time

from core.checkpoint import load_checkpoint, model_from_checkpoint
from tests.conftest import ROOT, run_cli, tiny_overrides


def start_training(run, corpus, **extra) -> subprocess.Popen:
    args = [sys.executable, "train.py", "--no-progress", "--set", *tiny_overrides(run, corpus, **extra)]
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc, timeout=60):
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_trainer_on_the_same_run_directory_is_refused(tmp_path, corpus):
    run = tmp_path / "run"
    first = start_training(run, corpus, **{"train.max_iters": 100000})
    try:
        wait_for(lambda: (run / "last.pt").exists(), first)
        second = run_cli("train.py", "--no-progress", "--overwrite", "--set", *tiny_overrides(run, corpus))
        assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert f"run directory {run} is in use by another training process (lock {run}/train.lock)" in second.stderr
        resume = run_cli("train.py", "--no-progress", "--resume", run)
        assert resume.returncode == 2 and "in use by another training process" in resume.stderr
        assert first.poll() is None                                       # the first one never noticed
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 130
    assert load_checkpoint(run / "last.pt")["iter"] > 4                  # saved on Ctrl-C, as usual


def test_checkpoints_always_load_while_training_rewrites_them(tmp_path, corpus):
    run = tmp_path / "run"
    trainer = start_training(run, corpus, **{"train.max_iters": 30, "train.eval_interval": 1})
    wait_for(lambda: (run / "last.pt").exists(), trainer)                 # best.pt is written first
    generate = subprocess.Popen([sys.executable, "generate.py", "--checkpoint", run / "best.pt", "--prompt", "the",
                                 "--max-new-tokens", "20"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = {"last.pt": set(), "best.pt": set()}
    while trainer.poll() is None:
        for name in seen:
            ckpt = load_checkpoint(run / name)                              # raises if it ever sees half a file
            model_from_checkpoint(ckpt, run / name)
            seen[name].add(ckpt["iter"])
    assert trainer.returncode == 0, trainer.stderr.read()
    out, err = generate.communicate(timeout=60)
    assert generate.returncode == 0 and out.startswith("the"), err
    assert len(seen["last.pt"]) >= 3, seen                                # the loads really raced the writes
