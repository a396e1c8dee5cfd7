"""Whole commands timed side by side: ours (``train.py``) and nanoGPT's own ``train.py`` from a checkout of it.

Each command runs in a fresh process with empty torch.compile caches (its own ``TORCHINDUCTOR_CACHE_DIR`` and Triton
cache), so compiling is paid in full by both, as on a first run. The clock runs from the start of the process:

- ours stops by itself once the whole val split is at or below the target (``train.target_val_loss``);
- nanoGPT has no target, so it is stopped at the first evaluation whose val loss (its mean over ``eval_iters``
  sampled batches) is at or below the target.

nanoGPT's training speed is read off the same run: the wall time between two of its log lines with no evaluation
between them (the GPU is drained at every log line, where it reads the loss), so evaluation is left out as in ours.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from errors import UserError
from training.run_dir import read_metrics

ROOT = Path(__file__).resolve().parent.parent
NANOGPT_STEP = re.compile(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)")
NANOGPT_ITER = re.compile(r"^iter (\d+): loss ([\d.]+), time ([\d.]+)ms")
TIMEOUT_S = 600


def fresh_cache_env(folder: Path) -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TORCHINDUCTOR_CACHE_DIR": str(folder / "inductor"),
            "TRITON_CACHE_DIR": str(folder / "triton")}


def ours(config: str | Path, data: str | Path, target: float, overrides: list[str] = (), log=print) -> dict:
    """``python train.py --config CONFIG`` until the whole val split is ≤ ``target``: wall seconds, steps, loss."""
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as tmp:
        tmp = Path(tmp)
        command = [sys.executable, "train.py", "--config", str(config), "--no-progress", "--set", f"data.path={data}",
                   f"train.out_dir={tmp / 'run'}", f"data.cache_dir={tmp / 'tokens'}", f"train.target_val_loss={target}",
                   *overrides]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=fresh_cache_env(tmp), capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            log(f"ours ({config}) failed: {done.stderr.strip().splitlines()[-1:]}")
            return {"command": "train.py", "config": str(config), "failed": done.stderr.strip()[-400:]}
        metrics = read_metrics(tmp / "run" / "metrics.jsonl")
    whole = [m for m in metrics if "val_loss_whole" in m]
    rates = [m["tokens_per_s"] for m in metrics if "tokens_per_s" in m]
    return {"command": "train.py", "config": str(config), "overrides": list(overrides), "seconds": round(seconds, 1),
            "reached": bool(whole) and whole[-1]["val_loss_whole"] <= target,
            "iter": max(m["iter"] for m in metrics), "val": whole[-1]["val_loss_whole"] if whole else None,
            "val_kind": "whole val split", "tokens_per_s_logged": round(statistics.median(rates)) if rates else None}


def nanogpt(checkout: str | Path, data: str | Path, target: float, log=print) -> dict:
    """nanoGPT's ``config/train_shakespeare_char.py`` recipe, from its own checkout, until its val loss ≤ ``target``."""
    checkout = Path(checkout).resolve()
    if not (checkout / "train.py").is_file() or not (checkout / "config" / "train_shakespeare_char.py").is_file():
        raise UserError(f"--nanogpt {checkout} is not a nanoGPT checkout (no train.py and "
                        "config/train_shakespeare_char.py there)")
    with tempfile.TemporaryDirectory(prefix="side-by-side-nanogpt-") as tmp:
        tmp = Path(tmp)
        work = tmp / "nanoGPT"                   # a copy: its data preparation writes next to its script
        shutil.copytree(checkout, work, ignore=shutil.ignore_patterns(".git", "out-*", "*.bin"))
        shutil.copyfile(data, work / "data" / "shakespeare_char" / "input.txt")
        subprocess.run([sys.executable, "data/shakespeare_char/prepare.py"], cwd=work, check=True, capture_output=True,
                       timeout=TIMEOUT_S)
        command = [sys.executable, "train.py", "config/train_shakespeare_char.py", f"--out_dir={tmp / 'out'}"]
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=work, env=fresh_cache_env(tmp), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        iters, result = [], None
        try:
            for line in proc.stdout:
                now = time.perf_counter() - start
                if m := NANOGPT_ITER.match(line):
                    iters.append((int(m[1]), now, float(m[3])))
                elif (m := NANOGPT_STEP.match(line)) and float(m[3]) <= target:
                    result = {"seconds": round(now, 1), "iter": int(m[1]), "val": float(m[3])}
                    break
                if now > TIMEOUT_S:
                    break
        finally:
            proc.kill()
            proc.wait()
    if result is None:
        return {"command": "nanoGPT train.py", "failed": f"no val loss ≤ {target} within {TIMEOUT_S} s"}
    return {"command": "nanoGPT train.py", "config": "config/train_shakespeare_char.py", **result, "reached": True,
            "val_kind": "mean of 200 sampled val batches", **nanogpt_speed(iters, eval_interval=250, tokens_per_iter=64 * 256)}


def nanogpt_speed(iters: list[tuple[int, float, float]], eval_interval: int, tokens_per_iter: int) -> dict:
    """Tokens/s from the wall time between consecutive log lines with no evaluation between them (the first
    interval after the start, compilation, is left out), and the median of nanoGPT's own per-iteration times."""
    rates = [(b[0] - a[0]) * tokens_per_iter / (b[1] - a[1]) for a, b in zip(iters, iters[1:])
             if a[0] > 0 and a[0] // eval_interval == b[0] // eval_interval and b[0] % eval_interval]
    own_ms = [ms for i, _, ms in iters if i > 0 and i % eval_interval]
    return {"tokens_per_s": round(statistics.median(rates)) if rates else None,
            "step_ms_own": round(statistics.median(own_ms), 2) if own_ms else None}
