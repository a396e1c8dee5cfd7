"""``train(cfg)``: everything ``train.py`` does, as a function the tests call directly. It finds the run's folder
and what it starts from (a fresh model, a run to resume, a checkpoint to fine-tune), then hands over to
``training.loop`` (``build``, then ``fit``), where one step reads top to bottom.

Every ``eval_interval`` steps (and at the last step) the loss is measured on held-out text and the state is saved to
``last.pt`` (and ``best.pt`` when validation improved). Ctrl-C saves and stops between two steps; ``resume`` continues
a run exactly where ``last.pt`` left it: the same batches, the same dropout masks, the same losses. A harder stop
(SIGKILL, a power cut) loses only the steps since the last save, since checkpoints are replaced atomically; a NaN or
infinite loss stops the run before anything is saved.
"""
import math
from dataclasses import replace
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from core.atomic_files import remove_stray_temp_files
from core.checkpoint import load_checkpoint, model_from_checkpoint, restore_rng
from core.config import (Config, config_from_dict, config_to_dict, config_to_yaml, merge, parse_overrides,
                         parse_yaml)
from core.device import resolve_device
from core.hub import load_model_source
from errors import UserError
from training import busy
from training.distributed import Distributed, init_distributed, shutdown
from training.loop import Run, RunResult, build, fit
from training.run_dir import (MetricsLog, RunLock, clear_checkpoints, edited_config_text, mark_ours, prepare_run_dir,
                              record_command, write_config_file)
from training.tensorboard import TensorBoardLog, summary_writer_class


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
    """Train from ``cfg``, continue ``resume`` (a run directory), or fine-tune from ``init_from`` (a checkpoint, a
    folder holding a Hugging Face GPT-2, or ``hf:<repo id>``).

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
        source = load_model_source(init_from)                   # a checkpoint, a model folder or hf:...
        _, tokenizer, source_cfg = model_from_checkpoint(source, init_from)
        init_weights = source["model"]
        if cfg.model != source_cfg.model:
            log(f"note: model shape taken from {init_from} (the config's model section is ignored when fine-tuning)")
            cfg = replace(cfg, model=source_cfg.model)
        if (cfg.data.tokenizer, cfg.data.bpe_vocab_size) != (source_cfg.data.tokenizer, source_cfg.data.bpe_vocab_size):
            log(f"note: tokenizer taken from {init_from}: {source_cfg.data.tokenizer} (fine-tuning keeps it)")
            cfg = replace(cfg, data=replace(cfg.data, tokenizer=source_cfg.data.tokenizer,
                                            bpe_vocab_size=source_cfg.data.bpe_vocab_size))
    if cfg.train.tensorboard:
        summary_writer_class()                  # installed? (a one-line error now, not after the corpus is read)
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
            return start_run(cfg, run_dir, ckpt, tokenizer, init_weights, device, ddp, progress, log)
        run_dir = prepare_run_dir(run_dir)
        with RunLock(run_dir):
            mark_ours(run_dir)
            if resume is None and (run_dir / "last.pt").exists() and not overwrite:
                raise UserError(f"run directory {run_dir} already holds a checkpoint; continue it with --resume "
                                f"{run_dir}, start over with --overwrite, or pick another --set train.out_dir=...")
            remove_stray_temp_files(run_dir)
            return start_run(cfg, run_dir, ckpt, tokenizer, init_weights, device, ddp, progress, log,
                             start_over=resume is None and overwrite)
    finally:
        shutdown(ddp)


def start_run(cfg: Config, run_dir: Path, ckpt: dict | None, tokenizer, init_weights: dict | None, device,
              ddp: Distributed, progress: bool, log, start_over: bool = False) -> RunResult:
    """Build the run (from ``ckpt`` when resuming), write its folder's config and command (rank 0), and fit."""
    run = build(cfg, tokenizer=tokenizer, weights=ckpt["model"] if ckpt is not None else init_weights,
                device=device, ddp=ddp, log=log)
    start, best_val = (ckpt["iter"], ckpt["best_val"]) if ckpt is not None else (0, math.inf)
    if ckpt is not None:
        restore_state(run, ckpt, run_dir / "last.pt")
    metrics = None
    if ddp.is_main:
        if start_over:                   # only now that the corpus, tokenizer and model are known to be good
            clear_checkpoints(run_dir)
        write_config_file(run_dir / "config.yaml", config_to_yaml(cfg))
        record_command(run_dir / "command.txt", resumed=ckpt is not None)
        resumed_at = start if ckpt is not None else None
        tensorboard = TensorBoardLog(run_dir, resumed_at) if cfg.train.tensorboard else None
        metrics = MetricsLog(run_dir / "metrics.jsonl", keep_up_to=resumed_at, tensorboard=tensorboard)
    try:
        with busy.watch(torch.get_num_threads(), tqdm.write if progress else log):   # says once if programs slow it
            return fit(run, run_dir, metrics, start, best_val,
                       eval_pending=ckpt is not None and ckpt.get("eval_pending"), progress=progress, log=log)
    finally:
        if metrics is not None:
            metrics.close()


def restore_state(run: Run, ckpt: dict, path: Path) -> None:
    """The optimizer's moments and the random generators as last.pt saved them: the resumed run then draws the
    same batches and dropout masks as one that was never stopped."""
    try:
        run.optimizer.load_state_dict(ckpt["optimizer"])
        restore_rng(ckpt, run.generator)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise UserError(f"checkpoint {path} is damaged: its optimizer or RNG state does not fit "
                        f"({type(e).__name__}: {' '.join(str(e).split())[:160]})") from None
