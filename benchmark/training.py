"""Training speed: tokens per second and MFU over timed steps, and wall time to a validation loss.

    FLOPs per token  = 6·N + 12·L·T·C     (``GPT.flops_per_token``: forward 2·N + backward 4·N for the weight
                                            matmuls, plus attention's QKᵀ and AV over the full T×T scores)
    achieved FLOP/s  = tokens/s · FLOPs per token
    MFU              = achieved FLOP/s ÷ peak FLOP/s of a square matmul in the same dtype, measured here

The timed step is the trainer's own (``training.loop.train_step``: forward, backward, clip, AdamW; the loss is read
back once per timed round, as the loop reads it once per log line), so the numbers are what ``train.py`` gets, minus
evaluation and checkpointing. Variants are timed in
interleaved rounds (A, B, A, B, ...) together with a matmul probe, and the medians are reported: on a shared machine
the background load then hits every variant, and the peak, alike.
"""
import math
import statistics
import tempfile
import time
from dataclasses import replace

import torch

from benchmark.machine import matmul_flops
from core.checkpoint import load_checkpoint, model_from_checkpoint
from core.config import Config
from core.device import DEFAULT_THREADS, resolve_device, resolve_dtype, set_threads
from data.corpus import load_corpus
from training.evaluation import whole_split_loss
from training.loop import Run, build, train_step
from training.speed import compiled_with_graphs
from training.trainer import train


def take_steps(run: Run, n: int) -> torch.Tensor:
    """n optimizer steps at the peak learning rate; returns the last loss (on the device, not waited for)."""
    set_threads(run.cfg.train.threads)
    loss = torch.full((), math.nan)
    for _ in range(n):
        loss = train_step(run, run.cfg.train.lr)
    return loss


def measure_throughput(variants: dict[str, Config], steps: int = 50, warmup: int = 10, rounds: int = 5,
                       peak_size: int = 2048, log=print) -> dict[str, dict]:
    """Training tokens/s and MFU of each config, timed in ``rounds`` interleaved rounds of ``steps`` steps each,
    after ``warmup`` untimed steps (whose time, compilation included, is reported as ``warmup_s``)."""
    runs, results, probes = {}, {}, {}
    for name, cfg in variants.items():
        start = time.perf_counter()
        run = runs[name] = build(cfg, log=log)
        take_steps(run, max(1, warmup)).item()
        if (run.device, run.dtype) not in probes:
            probes[(run.device, run.dtype)] = matmul_flops(run.device, run.dtype, peak_size)
        results[name] = {"warmup_s": round(time.perf_counter() - start, 2), "rates": [], "peaks": []}
    for _ in range(rounds):
        for name, run in runs.items():
            set_threads(run.cfg.train.threads)
            probe = probes[(run.device, run.dtype)]
            results[name]["peaks"].append(max(probe() for _ in range(3)))     # at this run's thread count
            start = time.perf_counter()
            take_steps(run, steps).item()                                          # waits for the last step
            results[name]["rates"].append(steps * run.tokens_per_step / (time.perf_counter() - start))
    report = {}
    for name, run in runs.items():
        busy = busy_fraction(run) if run.device.type == "cuda" else None
        rates, peaks = results[name]["rates"], results[name]["peaks"]
        cfg, model = run.cfg, run.model
        tokens_per_s, peak = statistics.median(rates), statistics.median(peaks)
        flops_per_token = model.flops_per_token()
        report[name] = {
            "model": f"{cfg.model.n_layer}L/{cfg.model.n_head}H/{cfg.model.n_embd}d, block {cfg.model.block_size}",
            "params": model.num_params(), "batch": f"{cfg.train.batch_size}×{cfg.train.grad_accum}",
            "dtype": str(run.dtype).removeprefix("torch."), "compiled": run.compiled, "graphs": graphs_in(run),
            "threads": cfg.train.threads or DEFAULT_THREADS,
            "tokens_per_s": round(tokens_per_s, 1), "tokens_per_s_best": round(max(rates), 1),
            "step_ms": round(1000 * run.tokens_per_step / tokens_per_s, 2),
            "flops_per_token": flops_per_token, "achieved_gflops": round(tokens_per_s * flops_per_token / 1e9, 2),
            "peak_gflops": round(peak / 1e9, 2), "mfu": round(tokens_per_s * flops_per_token / peak, 4),
            "warmup_s": results[name]["warmup_s"], "rounds": rounds, "steps_per_round": steps, "gpu_busy": busy,
        }
    return report


def graphs_in(run: Run) -> str | None:
    """How the timed steps were replayed as CUDA graphs: the eager step as one recording ("step": only once a
    recording succeeded, so a failed one, which trains eagerly, is not mistaken for it), or torch.compile's
    ("reduce-overhead"); None for launched kernels."""
    if run.graphed is not None and run.graphed.graph is not None:
        return "step"
    if run.compiled and compiled_with_graphs(run):
        return "reduce-overhead"
    return None


def busy_fraction(run: Run, steps: int = 20) -> float:
    """The share of the wall time the GPU spends running kernels and copies during ``steps`` training steps, from
    PyTorch's profiler: 1.0 means the GPU never waits for the CPU (summed kernel time ÷ wall time; kernels run one
    after another on one stream, so they do not overlap)."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile
    take_steps(run, 2).item()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        take_steps(run, steps).item()
        wall_us = (time.perf_counter() - start) * 1e6
    device_us = sum(e.device_time_total for e in prof.events() if e.device_type == DeviceType.CUDA)
    return round(device_us / wall_us, 3)


def time_to_loss(cfg: Config, target: float, log=print) -> dict:
    """Wall seconds from calling ``train`` (data, model, compilation, evaluations and checkpoints included) until the
    whole val split is at or below ``target``; the run stops there (``train.target_val_loss``, see
    ``training.evaluation``). ``best_val`` is the best of the run's sampled evaluations; ``val_whole`` is the whole
    split's loss at the stop, or, when the target was not reached, that of ``best.pt`` (scored after the clock stops)."""
    with tempfile.TemporaryDirectory(prefix="bench-ttl-") as out_dir:
        cfg = replace(cfg, train=replace(cfg.train, target_val_loss=target, out_dir=out_dir))
        start = time.perf_counter()
        result = train(cfg, progress=False, log=log)
        seconds = time.perf_counter() - start
        val_whole = result.val_whole
        if not result.target_reached:
            model, tokenizer, _ = model_from_checkpoint(load_checkpoint(f"{out_dir}/best.pt"))
            _, splits = load_corpus(cfg.data, cfg.model.block_size, tokenizer, lambda *_: None)
            device, _ = resolve_device(cfg.train.device)
            dtype, _ = resolve_dtype(cfg.train.dtype, device)
            val_whole = whole_split_loss(model.to(device), splits.val, cfg.model.block_size, cfg.train.batch_size,
                                         device, dtype)
    return {"target": target, "reached": result.target_reached, "seconds": round(seconds, 3),
            "iter": result.iter, "best_val": round(result.best_val, 4), "val_whole": round(val_whole, 4),
            "tokens": result.iter * cfg.train.batch_size * cfg.train.grad_accum * cfg.model.block_size,
            "evals": result.evals}
