"""The whole benchmark: throughput and MFU, time-to-loss, generation and peak memory, in one call."""
from dataclasses import replace
from pathlib import Path

import torch

from benchmark.generation import generation_speed
from benchmark.machine import describe_machine, peak_memory_mb, reset_peak_memory
from benchmark.training import measure_throughput, time_to_loss
from model.config import ModelConfig
from training.config import Config, load_config
from training.device import resolve_device, set_threads

SECTIONS = ("throughput", "large", "time-to-loss", "generation")
LARGE = ModelConfig(block_size=256, n_layer=6, n_head=6, n_embd=384)       # the GPU recipe's shape, for MFU


def run_suite(config: str | Path, data: str | Path, sections=SECTIONS, overrides: list[str] = (),
              variants: dict[str, list[str]] | None = None, ttl_configs: list[str | Path] = (), target: float = 1.88,
              steps: int = 50, warmup: int = 10, rounds: int = 5, large_steps: int = 2, gen_model: ModelConfig = LARGE,
              gen_rounds: int = 2, peak_size: int = 2048, log=print) -> dict:
    """Run the chosen ``sections``; every config has ``data.path`` set to ``data``.

    ``variants`` are extra throughput runs, each a list of overrides on top of ``config`` (timed interleaved with it);
    ``ttl_configs`` are the configs timed to val loss ≤ ``target`` (default: ``config``).
    """
    def cfg_of(path, extra=()) -> Config:
        return load_config(path, [*overrides, *extra, f"data.path={data}"])

    base = cfg_of(config)
    device, _ = resolve_device(base.train.device)
    results = {"machine": describe_machine(device), "config": str(config), "data": str(data), "peak_memory_mb": {}}

    def done(section: str) -> None:
        results["peak_memory_mb"][section] = round(peak_memory_mb(device), 1)
        reset_peak_memory(device)

    if "throughput" in sections:
        runs = {Path(config).stem: base, **{name: cfg_of(config, extra) for name, extra in (variants or {}).items()}}
        log(f"throughput: {len(runs)} run(s), {rounds} rounds × {steps} steps after {warmup} warm-up steps")
        results["throughput"] = measure_throughput(runs, steps, warmup, rounds, peak_size, log)
        done("throughput")
    if "large" in sections:
        m = gen_model
        large = replace(base, model=replace(base.model, n_layer=m.n_layer, n_head=m.n_head, n_embd=m.n_embd,
                                            block_size=m.block_size))
        name = f"{m.n_layer}L/{m.n_embd}d/block {m.block_size}"
        log(f"throughput of the {name} model: {rounds} rounds × {large_steps} steps")
        results.setdefault("throughput", {}).update(
            measure_throughput({name: large}, large_steps, 1, rounds, peak_size, log))
        done("large")
    if "time-to-loss" in sections:
        results["time_to_loss"] = {}
        for path in ttl_configs or [config]:
            log(f"time to val loss ≤ {target}: {path}")
            results["time_to_loss"][str(path)] = time_to_loss(cfg_of(path), target, log=lambda *_: None)
            done(f"time-to-loss {Path(path).stem}")
    if "generation" in sections:
        set_threads(base.train.threads)
        log(f"generation: {gen_model.n_layer}L/{gen_model.n_head}H/{gen_model.n_embd}d, context {gen_model.block_size}")
        results["generation"] = {"model": f"{gen_model.n_layer}L/{gen_model.n_head}H/{gen_model.n_embd}d, "
                                          f"context {gen_model.block_size}",
                                 "rows": generation_speed(gen_model, rounds=gen_rounds, device=device)}
        done("generation")
    results["machine"]["torch_threads"] = torch.get_num_threads()
    return results
