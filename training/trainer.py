"""The training loop: next-token prediction, cross-entropy, backpropagation, AdamW, repeated.

``train(cfg)`` is everything ``train.py`` does, as a function the tests call directly. Each step:

    x, y = random windows of the corpus (y is x shifted by one token)
    loss = cross_entropy(model(x), y)         how surprised the model is by the true next tokens
    loss.backward()                           gradients of the loss for every weight
    optimizer.step()                          move every weight a little against its gradient

Every ``eval_interval`` steps (and at the last step) the loss is measured on held-out text and the state is saved to
``last.pt`` (and ``best.pt`` when validation improved). Ctrl-C saves and stops between two steps; ``resume`` continues
a run exactly where ``last.pt`` left it: the same batches, the same dropout masks, the same losses. A harder stop
(SIGKILL, a power cut) loses only the steps since the last save, since checkpoints are replaced atomically; a NaN or
infinite loss stops the run before anything is saved.
"""
import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import yaml
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from data.corpus import encode_cached, get_batch, read_corpus, split_tokens
from data.tokenization import Tokenizer, train_tokenizer
from errors import UserError
from model.gpt import GPT
from training.checkpoint import (checkpoint_state, load_checkpoint, model_from_checkpoint,
                                 remove_stray_temp_files, restore_rng, save_checkpoint)
from training.config import (Config, config_from_dict, config_to_dict, config_to_yaml, merge, parse_overrides,
                             parse_yaml)
from training.device import autocast, resolve_device, resolve_dtype, set_threads
from training.distributed import Distributed, any_process, init_distributed, mean_loss_and_stop, shutdown
from training.evaluation import EvaluationStopped, evaluate, whole_split_loss, worth_checking_whole
from training.fault_injection import kill_point
from training.memory import check_fits, training_bytes
from training.run_dir import (MetricsLog, RunLock, clear_checkpoints, edited_config_text, mark_ours, prepare_run_dir,
                              record_command, write_config_file)
from training.schedule import lr_at


@dataclass
class RunResult:
    run_dir: Path
    iter: int
    best_val: float
    interrupted: bool = False
    evals: list[dict] = field(default_factory=list)
    target_reached: bool = False        # the whole val split reached train.target_val_loss
    val_whole: float | None = None      # the last whole-val-split loss measured (only with a target)


class StopRequest:
    """Turns Ctrl-C (SIGINT) and SIGTERM into a flag checked between steps and between evaluation batches, so a
    stop never lands mid-update and never waits for a long evaluation. A second request stops at once."""

    def __init__(self):
        self.requested = False
        self.previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():   # signals can only be caught there
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:          # asked twice: stop at once (checkpoints are replaced atomically, never half)
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def build_tokenizer_and_data(cfg: Config, tokenizer: Tokenizer | None, log):
    text = read_corpus(cfg.data.path)
    if tokenizer is None:
        started = time.perf_counter()
        tokenizer = train_tokenizer(cfg.data.tokenizer, text, cfg.data.bpe_vocab_size)
        log(f"tokenizer: {tokenizer.kind}, {tokenizer.vocab_size} tokens ({time.perf_counter() - started:.1f}s)")
    try:
        ids = encode_cached(text, tokenizer, cfg.data.cache_dir)
    except UserError as e:              # fine-tuning a char model on a corpus with characters it never saw
        raise UserError(f"corpus {cfg.data.path}: {e}; a fine-tuned model keeps its tokenizer, so fine-tune a bpe "
                        "model on new text (any UTF-8 encodes), or train a new model on it") from None
    splits = split_tokens(ids, cfg.data.val_fraction, cfg.model.block_size, cfg.data.path)
    log(f"corpus: {cfg.data.path}, {len(text):,} characters → {len(ids):,} tokens "
        f"({len(splits.train):,} train / {len(splits.val):,} val)")
    return tokenizer, splits


def resumed_config(ckpt: dict, overrides: list[str], source: str) -> Config:
    """The checkpoint's config with command-line overrides on top (e.g. a larger train.max_iters)."""
    parsed = parse_overrides(overrides) if overrides else {}
    if "out_dir" in parsed.get("train", {}):
        raise UserError(f"{source}: train.out_dir cannot change when resuming (the run continues in its own folder; "
                        "copy the folder to continue it elsewhere)")
    cfg = config_from_dict(merge(ckpt["config"], parsed), source)
    if cfg.model != config_from_dict(ckpt["config"], source).model:
        raise UserError(f"{source}: model.* cannot change when resuming (the weights have a fixed shape)")
    return cfg


def check_unedited(config_file: Path, resumed: Config) -> None:
    """--resume continues with last.pt's config (plus --set): an edit by hand to the run's config.yaml would be
    silently undone, so it is an error that names the edited keys, unless --set asks for the same values."""
    text = edited_config_text(config_file)
    if text is None:
        return
    try:
        written = config_to_dict(config_from_dict(parse_yaml(text), str(config_file)))
    except (UserError, yaml.YAMLError):
        raise UserError(f"{config_file} was edited and no longer reads as a config; --resume continues with "
                        "last.pt's config: undo the edit, and ask for changes with --set") from None
    now = config_to_dict(resumed)
    edits = [f"{section}.{key}={value}" for section, values in written.items() for key, value in values.items()
             if (section, key) != ("train", "out_dir") and value != now[section][key]]
    if edits:
        raise UserError(f"{config_file} was edited ({', '.join(edits)}), but --resume continues with last.pt's "
                        f"config: ask for the change with --set {' '.join(edits)}, or undo the edit")


def train(cfg: Config | None = None, *, resume: str | Path | None = None, init_from: str | Path | None = None,
          overrides: list[str] = (), overwrite: bool = False, progress: bool = True, log=print) -> RunResult:
    """Train from ``cfg``, continue ``resume`` (a run directory), or fine-tune from ``init_from`` (a checkpoint).

    Under torchrun every process calls this; rank 0 alone logs, locks the run directory and writes to it.
    """
    ckpt = tokenizer = init_weights = None
    if resume is not None:
        run_dir = Path(resume)
        if run_dir.name == "last.pt" and run_dir.is_file():        # --resume runs/x/last.pt means runs/x
            run_dir = run_dir.parent
        elif run_dir.is_file():
            raise UserError(f"--resume takes a run folder (the one holding last.pt), not the file {run_dir}")
        ckpt = load_checkpoint(run_dir / "last.pt")
        if ckpt["optimizer"] is None:
            raise UserError(f"checkpoint {run_dir / 'last.pt'} has no optimizer state, so it cannot be resumed; "
                            f"fine-tune from it with --init-from instead")
        cfg = resumed_config(ckpt, list(overrides), f"{run_dir / 'last.pt'}")
        check_unedited(run_dir / "config.yaml", cfg)
        cfg = replace(cfg, train=replace(cfg.train, out_dir=str(run_dir)))
        tokenizer = model_from_checkpoint(ckpt, run_dir / "last.pt")[1]
    elif init_from is not None:
        source = load_checkpoint(init_from)
        _, tokenizer, source_cfg = model_from_checkpoint(source, init_from)
        init_weights = source["model"]
        if cfg.model != source_cfg.model:
            log(f"note: model shape taken from {init_from} (the config's model section is ignored when fine-tuning)")
            cfg = replace(cfg, model=source_cfg.model)
        if (cfg.data.tokenizer, cfg.data.bpe_vocab_size) != (source_cfg.data.tokenizer, source_cfg.data.bpe_vocab_size):
            log(f"note: tokenizer taken from {init_from}: {source_cfg.data.tokenizer} (fine-tuning keeps it)")
            cfg = replace(cfg, data=replace(cfg.data, tokenizer=source_cfg.data.tokenizer,
                                            bpe_vocab_size=source_cfg.data.bpe_vocab_size))
    device, device_why = resolve_device(cfg.train.device)
    ddp = init_distributed(device.type)
    if ddp.enabled and device.type == "cuda":
        device = torch.device("cuda", ddp.local_rank)
    if not ddp.is_main:
        log, progress = (lambda *_: None), False
    log(f"device: {device_why}" + (f" × {ddp.world_size} processes (DDP)" if ddp.enabled else ""))
    try:
        run_dir = Path(cfg.train.out_dir)
        if not ddp.is_main:
            return _train_locked(cfg, run_dir, ckpt, tokenizer, init_weights, device, ddp, progress, log)
        run_dir = prepare_run_dir(run_dir)
        with RunLock(run_dir):
            mark_ours(run_dir)
            if resume is None and (run_dir / "last.pt").exists() and not overwrite:
                raise UserError(f"run directory {run_dir} already holds a checkpoint; continue it with --resume "
                                f"{run_dir}, start over with --overwrite, or pick another --set train.out_dir=...")
            remove_stray_temp_files(run_dir)
            return _train_locked(cfg, run_dir, ckpt, tokenizer, init_weights, device, ddp, progress, log,
                                 start_over=resume is None and overwrite)
    finally:
        shutdown(ddp)


def _train_locked(cfg: Config, run_dir: Path, ckpt, tokenizer, init_weights, device, ddp: Distributed,
                  progress, log, start_over: bool = False) -> RunResult:
    t = cfg.train
    dtype, dtype_why = resolve_dtype(t.dtype, device)
    set_threads(t.threads)
    log(f"precision: {dtype_why}; {torch.get_num_threads()} CPU threads")
    tokenizer, splits = build_tokenizer_and_data(cfg, tokenizer, log)

    params = GPT.params_for(cfg.model, tokenizer.vocab_size)
    check_fits(training_bytes(cfg.model, tokenizer.vocab_size, t.batch_size),
               f"training this model ({params:,} parameters, batch {t.batch_size})", device)
    torch.manual_seed(t.seed)
    model = GPT(cfg.model, tokenizer.vocab_size)
    if init_weights is not None:
        model.load_state_dict(init_weights)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    model.to(device)
    optimizer = model.configure_optimizer(t.lr, t.weight_decay, (t.beta1, t.beta2),
                                          fused=t.fused_optimizer and device.type in ("cpu", "cuda"))
    batch_generator = torch.Generator().manual_seed(t.seed)
    start, best_val = 0, math.inf
    if ckpt is not None:
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            restore_rng(ckpt, batch_generator)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise UserError(f"checkpoint {run_dir / 'last.pt'} is damaged: its optimizer or RNG state does not fit "
                            f"({type(e).__name__}: {' '.join(str(e).split())[:160]})") from None
        start, best_val = ckpt["iter"], ckpt["best_val"]
    log(f"model: {model.num_params():,} parameters, {cfg.model.n_layer} layers × {cfg.model.n_head} heads × "
        f"{cfg.model.n_embd} dims, context {cfg.model.block_size}")

    step_model = maybe_compile(model, t.compile, log)
    if ddp.enabled:
        step_model = DistributedDataParallel(step_model, device_ids=[device.index] if device.type == "cuda" else None)
    if ddp.is_main:
        if start_over:                   # only now that the corpus, tokenizer and model are known to be good
            clear_checkpoints(run_dir)
        write_config_file(run_dir / "config.yaml", config_to_yaml(cfg))
        record_command(run_dir / "command.txt", resumed=ckpt is not None)
        metrics = MetricsLog(run_dir / "metrics.jsonl", keep_up_to=start if ckpt is not None else None)

    def save(step: int, is_best: bool, eval_pending: bool = False) -> None:
        """best.pt first: a kill between the two writes then leaves last.pt one evaluation behind, and the resumed
        run redoes that evaluation and writes the same best.pt again. The other order would leave a last.pt whose
        best_val claims a best.pt that was never written."""
        if not all(torch.isfinite(p).all() for p in model.parameters()):   # e.g. Ctrl-C right after a bad update
            raise _diverged("a weight", math.nan, step, run_dir)
        state = checkpoint_state(model, optimizer, cfg, tokenizer, step, best_val, batch_generator, eval_pending)
        if is_best:
            save_checkpoint(run_dir / "best.pt", state)
        save_checkpoint(run_dir / "last.pt", state)

    def evaluate_and_save(done: int) -> bool:
        """Evaluate, log, save (best.pt too when val improved), check the target. False when a stop request came
        during it: then last.pt is saved with the evaluation marked pending, and a resume starts with it."""
        nonlocal best_val
        try:
            losses = evaluate(model, splits, cfg, device, dtype, stop=lambda: stop.requested)
        except EvaluationStopped:
            save(done, is_best=False, eval_pending=True)
            say(f"interrupted during the evaluation of step {done}: saved step {done} to {run_dir / 'last.pt'} "
                f"(the evaluation is redone first); continue with --resume {run_dir}")
            return False
        for name, value in losses.items():
            if not math.isfinite(value):     # e.g. weights broken by this step's update: never save them
                bar.close()
                raise _diverged(f"{name} loss", value, done, run_dir)
        is_best = losses["val"] < best_val
        best_val = min(best_val, losses["val"])
        metrics.write({"iter": done, "train_loss": losses["train"], "val_loss": losses["val"]})
        result.evals.append({"iter": done, "train": losses["train"], "val": losses["val"]})
        say(f"step {done}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
            + (" (best)" if is_best else ""))
        save(done, is_best)
        if t.target_val_loss is not None and worth_checking_whole(losses, t.target_val_loss):
            try:
                result.val_whole = whole_split_loss(model, splits.val, cfg.model.block_size, t.batch_size, device,
                                                    dtype, stop=lambda: stop.requested)
            except EvaluationStopped:
                say(f"interrupted during the whole-val-split check of step {done}: saved step {done} to "
                    f"{run_dir / 'last.pt'}; continue with --resume {run_dir}")
                return False
            metrics.write({"iter": done, "val_loss_whole": result.val_whole})
            say(f"step {done}: val loss on the whole val split {result.val_whole:.4f}")
            result.target_reached = result.val_whole <= t.target_val_loss
        return True

    tokens_per_step = t.batch_size * t.grad_accum * cfg.model.block_size * ddp.world_size
    result = RunResult(run_dir, start, best_val)
    bar = tqdm(total=t.max_iters, initial=start, disable=not progress, unit="step", dynamic_ncols=True)
    say = bar.write if progress else log          # a line above the progress bar, or to the caller's log
    window_start, window_steps = time.perf_counter(), 0
    model.train()
    with StopRequest() as stop:
        if ddp.is_main and ckpt is not None and ckpt.get("eval_pending") and not evaluate_and_save(start):
            result.interrupted = True            # stopped during the evaluation again, before any step
            bar.close()
            return result
        for step in range(start, t.max_iters):
            lr = lr_at(step, t)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, step_model = train_step(step_model, model, optimizer, splits, cfg, batch_generator,
                                           device, dtype, ddp, first=step == start, log=log)
            loss, stop_now = mean_loss_and_stop(ddp, loss, stop.requested)
            done = step + 1
            if not math.isfinite(loss):
                bar.close()
                raise _diverged("loss", loss, done, run_dir)
            window_steps += 1
            if ddp.is_main and (done % t.log_interval == 0 or done == t.max_iters):
                elapsed = time.perf_counter() - window_start
                tokens_per_s = window_steps * tokens_per_step / elapsed
                metrics.write({"iter": done, "loss": loss, "lr": lr, "tokens_per_s": round(tokens_per_s, 1)})
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tokens_per_s:,.0f}")
                window_start, window_steps = time.perf_counter(), 0
            bar.update(1)
            kill_point("step")
            result.iter = done
            if ddp.is_main and (done % t.eval_interval == 0 or done == t.max_iters):
                if not evaluate_and_save(done):
                    result.interrupted = True
                    break
                window_start, window_steps = time.perf_counter(), 0     # tokens/s leaves evaluation out
            result.best_val = best_val
            if (t.target_val_loss is not None and done % t.eval_interval == 0
                    and any_process(ddp, result.target_reached)):      # only rank 0 evaluates
                if ddp.is_main:
                    say(f"whole val split at {result.val_whole:.4f} ≤ train.target_val_loss {t.target_val_loss}: "
                        f"stopping at step {done}")
                break
            if stop_now:
                if ddp.is_main:
                    save(done, is_best=False)
                    say(f"interrupted: saved step {done} to {run_dir / 'last.pt'}; continue with --resume {run_dir}")
                result.interrupted = True
                break
    bar.close()
    return result


def _diverged(what: str, value: float, step: int, run_dir: Path) -> UserError:
    return UserError(f"{what} became {value} at step {step} (try a lower train.lr or train.grad_clip); "
                     f"stopped without saving; the last good checkpoints in {run_dir} are untouched")


def train_step(step_model, model, optimizer, splits, cfg: Config, generator, device, dtype, ddp: Distributed,
               first: bool, log):
    """One optimizer step over grad_accum micro-batches; returns (mean loss, the module to use from now on)."""
    t = cfg.train
    total = 0.0
    for micro in range(t.grad_accum):
        x, y = get_batch(splits.train, t.batch_size, cfg.model.block_size, generator, ddp.rank, ddp.world_size)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        # DDP averages gradients across processes on backward; only needed after the last micro-batch
        sync = contextlib.nullcontext() if not ddp.enabled or micro == t.grad_accum - 1 else step_model.no_sync()
        with sync:
            try:
                with autocast(device, dtype):
                    _, loss = step_model(x, y)
            except Exception as e:
                if not (first and step_model is not model and not ddp.enabled):
                    raise
                log(f"warning: torch.compile failed ({type(e).__name__}); training without it")
                step_model = model
                with autocast(device, dtype):
                    _, loss = step_model(x, y)
            (loss / t.grad_accum).backward()
        total += loss.item()
    if t.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total / t.grad_accum, step_model


def maybe_compile(model: GPT, enabled: bool, log):
    if not enabled:
        return model
    try:
        return torch.compile(model)
    except Exception as e:      # e.g. no C++ compiler or an unsupported platform
        log(f"warning: torch.compile unavailable ({type(e).__name__}); training without it")
        return model
