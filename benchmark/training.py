"""Training speed: tokens per second and MFU over timed steps, and wall time to a validation loss.

    FLOPs per token  = 6·N + 12·L·T·C     (``GPT.flops_per_token``: forward 2·N + backward 4·N for the weight
                                            matmuls, plus attention's QKᵀ and AV over the full T×T scores)
    achieved FLOP/s  = tokens/s · FLOPs per token
    MFU              = achieved FLOP/s ÷ peak FLOP/s of a square matmul in the same dtype, measured here

The timed step is the trainer's own (``training.trainer.train_step``: forward, backward, clip, AdamW, the per-step
``loss.item()``), so the numbers are what ``train.py`` gets, minus evaluation and checkpointing. Variants are timed in
interleaved rounds (A, B, A, B, ...) together with a matmul probe, and the medians are reported: on a shared machine
the background load then hits every variant, and the peak, alike.
"""
import statistics
import tempfile
import time
from dataclasses import dataclass, replace

import torch

from benchmark.machine import matmul_flops
from model.gpt import GPT
from training.checkpoint import load_checkpoint, model_from_checkpoint
from training.config import Config
from training.distributed import Distributed
from training.device import DEFAULT_THREADS, resolve_device, resolve_dtype, set_threads
from training.evaluation import whole_split_loss
from training.trainer import build_tokenizer_and_data, maybe_compile, train, train_step


@dataclass
class Session:
    """A model, optimizer and data ready to take training steps, as the trainer sets them up."""
    cfg: Config
    model: GPT
    step_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    splits: object
    generator: torch.Generator
    device: torch.device
    dtype: torch.dtype

    def steps(self, n: int, log=print) -> float:
        """Take n optimizer steps (at the peak learning rate); returns the last loss."""
        set_threads(self.cfg.train.threads)
        loss = float("nan")
        for _ in range(n):
            loss, self.step_model = train_step(self.step_model, self.model, self.optimizer, self.splits, self.cfg,
                                                self.generator, self.device, self.dtype, Distributed(), first=False,
                                                log=log)
        return loss


def prepare(cfg: Config, log=print) -> Session:
    t = cfg.train
    device, _ = resolve_device(t.device)
    dtype, _ = resolve_dtype(t.dtype, device)
    set_threads(t.threads)
    tokenizer, splits = build_tokenizer_and_data(cfg, None, lambda *_: None)
    torch.manual_seed(t.seed)
    model = GPT(cfg.model, tokenizer.vocab_size).to(device)
    optimizer = model.configure_optimizer(t.lr, t.weight_decay, (t.beta1, t.beta2),
                                          fused=t.fused_optimizer and device.type in ("cpu", "cuda"))
    model.train()
    step_model = maybe_compile(model, t.compile, log)
    return Session(cfg, model, step_model, optimizer, splits, torch.Generator().manual_seed(t.seed), device, dtype)


def _first_steps(session: Session, n: int, log) -> float:
    """Warm-up: the first step triggers torch.compile (and falls back to eager if compiling fails)."""
    _, session.step_model = train_step(session.step_model, session.model, session.optimizer, session.splits,
                                        session.cfg, session.generator, session.device, session.dtype,
                                        Distributed(), first=True, log=log)
    return session.steps(n - 1, log) if n > 1 else 0.0


def measure_throughput(variants: dict[str, Config], steps: int = 50, warmup: int = 10, rounds: int = 5,
                       peak_size: int = 2048, log=print) -> dict[str, dict]:
    """Training tokens/s and MFU of each config, timed in ``rounds`` interleaved rounds of ``steps`` steps each,
    after ``warmup`` untimed steps (whose time, compilation included, is reported as ``warmup_s``)."""
    sessions, results, probes = {}, {}, {}
    for name, cfg in variants.items():
        start = time.perf_counter()
        session = sessions[name] = prepare(cfg, log)
        _first_steps(session, max(1, warmup), log)
        if (session.device, session.dtype) not in probes:
            probes[(session.device, session.dtype)] = matmul_flops(session.device, session.dtype, peak_size)
        results[name] = {"warmup_s": round(time.perf_counter() - start, 2), "rates": [], "peaks": []}
    for _ in range(rounds):
        for name, session in sessions.items():
            set_threads(session.cfg.train.threads)
            probe = probes[(session.device, session.dtype)]
            results[name]["peaks"].append(max(probe() for _ in range(3)))     # at this run's thread count
            start = time.perf_counter()
            session.steps(steps, log)
            if session.device.type == "cuda":
                torch.cuda.synchronize(session.device)
            results[name]["rates"].append(steps * _tokens_per_step(session.cfg) / (time.perf_counter() - start))
    report = {}
    for name, session in sessions.items():
        rates, peaks = results[name]["rates"], results[name]["peaks"]
        cfg, model = session.cfg, session.model
        tokens_per_s, peak = statistics.median(rates), statistics.median(peaks)
        flops_per_token = model.flops_per_token()
        report[name] = {
            "model": f"{cfg.model.n_layer}L/{cfg.model.n_head}H/{cfg.model.n_embd}d, block {cfg.model.block_size}",
            "params": model.num_params(), "batch": f"{cfg.train.batch_size}×{cfg.train.grad_accum}",
            "dtype": str(session.dtype).removeprefix("torch."), "compiled": session.step_model is not model,
            "threads": cfg.train.threads or DEFAULT_THREADS,
            "tokens_per_s": round(tokens_per_s, 1), "tokens_per_s_best": round(max(rates), 1),
            "step_ms": round(1000 * _tokens_per_step(cfg) / tokens_per_s, 2),
            "flops_per_token": flops_per_token, "achieved_gflops": round(tokens_per_s * flops_per_token / 1e9, 2),
            "peak_gflops": round(peak / 1e9, 2), "mfu": round(tokens_per_s * flops_per_token / peak, 4),
            "warmup_s": results[name]["warmup_s"], "rounds": rounds, "steps_per_round": steps,
        }
    return report


def _tokens_per_step(cfg: Config) -> int:
    return cfg.train.batch_size * cfg.train.grad_accum * cfg.model.block_size


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
            _, splits = build_tokenizer_and_data(cfg, tokenizer, lambda *_: None)
            device, _ = resolve_device(cfg.train.device)
            dtype, _ = resolve_dtype(cfg.train.dtype, device)
            val_whole = whole_split_loss(model.to(device), splits.val, cfg.model.block_size, cfg.train.batch_size,
                                         device, dtype)
    return {"target": target, "reached": result.target_reached, "seconds": round(seconds, 3),
            "iter": result.iter, "best_val": round(result.best_val, 4), "val_whole": round(val_whole, 4),
            "tokens": result.iter * _tokens_per_step(cfg), "evals": result.evals}
