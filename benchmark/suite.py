"""The whole benchmark: throughput and MFU, time-to-loss, generation and peak memory, in one call."""
import json
from dataclasses import replace
from pathlib import Path

import torch

from benchmark import side_by_side
from benchmark.generation import generation_speed
from benchmark.machine import describe_machine, peak_memory_mb, reset_peak_memory
from benchmark.training import measure_throughput, time_to_loss
from core.config import Config, load_config
from core.device import resolve_device, set_threads
from model.config import ModelConfig

SECTIONS = ("throughput", "large", "time-to-loss", "generation")     # side-by-side: only with a nanoGPT checkout
LARGE = ModelConfig(block_size=256, n_layer=6, n_head=6, n_embd=384)       # the GPU recipe's shape, for MFU


def run_suite(config: str | Path, data: str | Path, sections=SECTIONS, overrides: list[str] = (),
              variants: dict[str, list[str]] | None = None, ttl_configs: list[str | Path] = (),
              ttl_variants: list[tuple[str | Path, list[str]]] = (), target: float = 1.88,
              steps: int = 50, warmup: int = 10, rounds: int = 5, large_steps: int = 2, generation_model: ModelConfig = LARGE,
              generation_rounds: int = 2, peak_size: int | None = None, nanogpt: str | Path | None = None,
              log=print) -> dict:
    """Run the chosen ``sections``; every config has ``data.path`` set to ``data``.

    ``variants`` are extra throughput runs, each a list of overrides on top of ``config`` (timed interleaved with it);
    ``ttl_configs`` are the configs timed to val loss ≤ ``target`` (default: ``config``), ``ttl_variants`` more of
    them as (config, overrides). With ``nanogpt`` (a checkout of it), section "side-by-side" times the whole
    ``train.py`` command of each of them and nanoGPT's own recipe.
    ``peak_size``: the side of the square matmul that measures the peak (default 2048 on a CPU, 8192 on a GPU).
    """
    def cfg_of(path, extra=()) -> Config:
        return load_config(path, [*overrides, *extra, f"data.path={data}"])

    base = cfg_of(config)
    ttl_runs = [*((path, []) for path in ttl_configs or [config]), *((path, list(extra)) for path, extra in ttl_variants)]
    device, _ = resolve_device(base.train.device)
    results = {"machine": describe_machine(device), "config": str(config), "data": str(data), "peak_memory_mb": {}}
    peak_size = peak_size or (8192 if device.type == "cuda" else 2048)

    def done(section: str, value) -> None:
        """Record the section's peak memory, and log its results at once (a long run cut short keeps them)."""
        results["peak_memory_mb"][section] = round(peak_memory_mb(device), 1)
        reset_peak_memory(device)
        log(f"{section}: {json.dumps(value)}")

    if "throughput" in sections:
        runs = {Path(config).stem: base, **{name: cfg_of(config, extra) for name, extra in (variants or {}).items()}}
        log(f"throughput: {len(runs)} run(s), {rounds} rounds × {steps} steps after {warmup} warm-up steps")
        results["throughput"] = measure_throughput(runs, steps, warmup, rounds, peak_size, log)
        done("throughput", results["throughput"])
    if "large" in sections:
        m = generation_model
        large = replace(base, model=replace(base.model, n_layer=m.n_layer, n_head=m.n_head, n_embd=m.n_embd,
                                            block_size=m.block_size))
        name = f"{m.n_layer}L/{m.n_embd}d/block {m.block_size}"
        log(f"throughput of the {name} model: {rounds} rounds × {large_steps} steps")
        results.setdefault("throughput", {}).update(
            measure_throughput({name: large}, large_steps, 1, rounds, peak_size, log))
        done("large", results["throughput"][name])
    if "time-to-loss" in sections:
        results["time_to_loss"] = {}
        for path, extra in ttl_runs:
            name = " ".join([str(path), *extra])
            log(f"time to val loss ≤ {target}: {name}")
            results["time_to_loss"][name] = time_to_loss(cfg_of(path, extra), target, log=lambda *_: None)
            done(f"time-to-loss {' '.join([Path(path).stem, *extra])}", results["time_to_loss"][name])
    if "generation" in sections:
        set_threads(base.train.threads)
        log(f"generation: {generation_model.n_layer}L/{generation_model.n_head}H/{generation_model.n_embd}d, context {generation_model.block_size}")
        results["generation"] = {"model": f"{generation_model.n_layer}L/{generation_model.n_head}H/{generation_model.n_embd}d, "
                                          f"context {generation_model.block_size}",
                                 "rows": generation_speed(generation_model, rounds=generation_rounds, device=device,
                                                          compiled_step=device.type == "cuda")}
        done("generation", results["generation"])
    if "side-by-side" in sections and nanogpt is not None:
        results["side_by_side"] = rows = []
        for path, extra in ttl_runs:
            log(f"whole command to val loss ≤ {target}: train.py --config {path} {' '.join(extra)}".rstrip())
            rows.append(side_by_side.ours(path, data, target, [*overrides, *extra], log))
            done(f"side-by-side {' '.join([Path(path).stem, *extra])}", rows[-1])
        log(f"whole command to val loss ≤ {target}: nanoGPT's train.py config/train_shakespeare_char.py"
            + (" with its CPU overrides" if device.type == "cpu" else ""))
        rows.append(side_by_side.nanogpt(nanogpt, data, target, "cpu" if device.type == "cpu" else "cuda", log))
        done("side-by-side nanoGPT", rows[-1])
    results["machine"]["torch_threads"] = torch.get_num_threads()
    return results
