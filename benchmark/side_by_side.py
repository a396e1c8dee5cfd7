"""Whole commands timed side by side: ours (``train.py``) and nanoGPT's own ``train.py`` from a checkout of it.

Each command runs in a fresh process with empty torch.compile caches (its own ``TORCHINDUCTOR_CACHE_DIR`` and Triton
cache), so compiling is paid in full by both, as on a first run. The clock runs from the start of the process:

- ours stops by itself once the whole val split is at or below the target (``train.target_val_loss``);
- nanoGPT has no target, so it is stopped at the first evaluation whose val loss (its mean over ``eval_iters``
  sampled batches) is at or below the target; a run that ends above it is timed to its end (``reached`` false).
  On a GPU it runs ``config/train_shakespeare_char.py`` as it is; on a CPU, with the overrides its README gives for
  CPUs (``NANOGPT_CPU``: a 4-layer, 128-wide model, context 64, batch 12, eager, 2000 steps, ending near 1.886).

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
# nanoGPT's recipe on a CPU (its README), and the tokens of one of its steps there and on a GPU
NANOGPT_CPU = ["--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1", "--block_size=64",
               "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--max_iters=2000",
               "--lr_decay_iters=2000", "--dropout=0.0"]
NANOGPT_TOKENS_PER_ITER = {"cpu": 12 * 64, "cuda": 64 * 256}


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


def nanogpt(checkout: str | Path, data: str | Path, target: float, device: str = "cuda", log=print) -> dict:
    """nanoGPT's ``config/train_shakespeare_char.py`` recipe (its CPU variant when ``device`` is "cpu"), from its
    own checkout, until its val loss ≤ ``target``."""
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
        overrides = NANOGPT_CPU if device == "cpu" else []
        command = [sys.executable, "train.py", "config/train_shakespeare_char.py", f"--out_dir={tmp / 'out'}",
                   *overrides]
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=work, env=fresh_cache_env(tmp), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        iters, evals, last_line, exit_code = [], [], "", None
        try:
            for line in proc.stdout:
                now = time.perf_counter() - start
                last_line = line.strip() or last_line
                if m := NANOGPT_ITER.match(line):
                    iters.append((int(m[1]), now, float(m[3])))
                elif m := NANOGPT_STEP.match(line):
                    evals.append({"seconds": round(now, 1), "iter": int(m[1]), "val": float(m[3])})
                    if evals[-1]["val"] <= target:
                        break
                if now > TIMEOUT_S:
                    break
            else:                                       # its output ended: the run finished or crashed
                exit_code, ended = proc.wait(), round(time.perf_counter() - start, 1)
        finally:
            proc.kill()
            proc.wait()
    reached = bool(evals) and evals[-1]["val"] <= target
    if exit_code:
        return {"command": "nanoGPT train.py", "failed": f"exited with code {exit_code}: {last_line[-300:]}"}
    if exit_code is None and not reached:
        return {"command": "nanoGPT train.py", "failed": f"no val loss ≤ {target} within {TIMEOUT_S} s"}
    if not evals:
        return {"command": "nanoGPT train.py", "failed": f"ended without an evaluation: {last_line[-300:]}"}
    # a run that ends above the target (its CPU recipe reaches 1.8857 at its last step) is timed to its end
    result = evals[-1] if reached else {**evals[-1], "seconds": ended}
    return {"command": "nanoGPT train.py", "config": "config/train_shakespeare_char.py", "overrides": overrides,
            **({"label": "nanoGPT train.py, its CPU recipe"} if overrides else {}), **result, "reached": reached,
            "val_kind": f"mean of {20 if overrides else 200} sampled val batches",
            **nanogpt_speed(iters, eval_interval=250, tokens_per_iter=NANOGPT_TOKENS_PER_ITER[device])}


def nanogpt_speed(iters: list[tuple[int, float, float]], eval_interval: int, tokens_per_iter: int) -> dict:
    """Tokens/s from the wall time between consecutive log lines with no evaluation between them (the first
    interval after the start, compilation, is left out), and the median of nanoGPT's own per-iteration times."""
    rates = [(b[0] - a[0]) * tokens_per_iter / (b[1] - a[1]) for a, b in zip(iters, iters[1:])
             if a[0] > 0 and a[0] // eval_interval == b[0] // eval_interval and b[0] % eval_interval]
    own_ms = [ms for i, _, ms in iters if i > 0 and i % eval_interval]
    return {"tokens_per_s": round(statistics.median(rates)) if rates else None,
            "step_ms_own": round(statistics.median(own_ms), 2) if own_ms else None}
