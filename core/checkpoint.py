"""Checkpoints: everything needed to generate from, resume or fine-tune a run, as plain data.

A checkpoint is a dict of tensors and plain Python values (no pickled classes), so it loads with
``torch.load(weights_only=True)``, which refuses to run code hidden in a file. It holds the *uncompiled* model's
weights, the optimizer state, the config (``asdict``), the tokenizer (``to_dict``), the step, the best validation loss
and the RNG states (so a resumed run draws the same batches and dropout masks). Writes are atomic: a temporary file
in the same folder, flushed to disk, then renamed over the old one; a crash leaves the old checkpoint or the new
one, never half of either.
"""
import pickle
import re
import zipfile
from pathlib import Path

import torch

from core.atomic_files import atomic_write
from core.config import Config, config_from_dict, config_to_dict
from core.memory import check_fits, inference_bytes
from data.tokenization import Tokenizer, tokenizer_from_dict
from errors import UserError
from model.gpt import GPT

FORMAT = "gpt-playground-checkpoint"
VERSION = 1
FIELDS = {"model": dict, "config": dict, "tokenizer": dict, "vocab_size": int, "iter": int, "best_val": float,
          "rng": dict, "optimizer": (dict, type(None))}


def checkpoint_state(model: GPT, optimizer, cfg: Config, tokenizer: Tokenizer, step: int, best_val: float,
                     batch_generator: torch.Generator, eval_pending: bool = False) -> dict:
    """``eval_pending``: the run was stopped during the evaluation of ``step``; a resume does it first."""
    rng = {"torch": torch.get_rng_state(), "batches": batch_generator.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {"format": FORMAT, "version": VERSION, "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "config": config_to_dict(cfg), "tokenizer": tokenizer.to_dict(), "vocab_size": tokenizer.vocab_size,
            "iter": step, "best_val": best_val, "rng": rng, "eval_pending": eval_pending}


def save_checkpoint(path: Path, state: dict) -> None:
    """Atomic (see ``atomic_write``): a full disk or any other write error is a one-line error, and the previous
    checkpoint at ``path`` stays as it was.

    ``torch.save`` reports a failed write to a file object as a RuntimeError ("unexpected pos ...") raised while
    handling the OSError, so the OSError is found in the RuntimeError's ``__context__``."""
    try:
        atomic_write(path, lambda f: torch.save(state, f))
    except (OSError, RuntimeError) as e:
        error = e if isinstance(e, OSError) else e.__context__
        if not isinstance(error, OSError):
            raise
        raise UserError(f"cannot write checkpoint {path}: {error.strerror or error}; "
                        "the previous one is untouched") from None


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint's dict, or a one-line UserError naming the file and what is wrong with it."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a checkpoint file such as {path / 'best.pt'}")
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):      # torch.save writes a zip archive; a cut one loses its directory
        raise UserError(f"checkpoint {path} is truncated or not a PyTorch file")
    try:
        changed = first_changed_record(path)
        ckpt = None if changed else torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f": {found.group(1)}" if found else ""
        raise UserError(f"checkpoint {path} holds objects that are not plain data{what}; refused to load it "
                        "(loading never runs code)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise UserError(f"checkpoint {path} is truncated or not a PyTorch file ({' '.join(str(e).split())[:160]})") from None
    if changed:
        raise UserError(f"checkpoint {path} is damaged: its record {changed} no longer matches the checksum "
                        "written with it (the file changed on disk after it was saved)")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not a checkpoint of this project (no '{FORMAT}' marker)")
    if ckpt.get("version") != VERSION:
        raise UserError(f"checkpoint {path} has format version {ckpt.get('version')}, this code reads {VERSION}")
    bad = [key for key, kind in FIELDS.items() if not isinstance(ckpt.get(key, ...), kind)]
    if bad:
        raise UserError(f"checkpoint {path} is damaged: missing or malformed {', '.join(bad)}")
    return ckpt


def first_changed_record(path: Path) -> str | None:
    """The first record of the archive whose bytes no longer match their CRC-32, or None. ``torch.save`` writes a
    checksum for every tensor but ``torch.load`` never checks them: a bit flipped on disk would load as a silently
    wrong weight and train on from there. Reading them back costs about as long as loading the file."""
    with zipfile.ZipFile(path) as archive:
        return archive.testzip()


def model_from_checkpoint(ckpt: dict, path: str | Path = "checkpoint") -> tuple[GPT, Tokenizer, Config]:
    """Rebuild the model exactly as saved (config → GPT, strict weight load) and its tokenizer."""
    cfg = config_from_dict(ckpt["config"], f"config stored in {path}")
    try:
        tokenizer = tokenizer_from_dict(ckpt["tokenizer"])
    except UserError as e:
        raise UserError(f"checkpoint {path}: {e}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"checkpoint {path}: its tokenizer is malformed ({type(e).__name__}: {e})") from None
    if tokenizer.vocab_size != ckpt["vocab_size"]:
        raise UserError(f"checkpoint {path}: tokenizer has {tokenizer.vocab_size} tokens but the model was trained "
                        f"with {ckpt['vocab_size']}")
    check_fits(inference_bytes(cfg.model, tokenizer.vocab_size),
               f"checkpoint {path}: its model ({GPT.params_for(cfg.model, tokenizer.vocab_size):,} parameters)")
    model = GPT(cfg.model, tokenizer.vocab_size)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise UserError(f"checkpoint {path} does not fit the model its config describes "
                        f"({' '.join(str(e).split())[:200]})") from None
    return model, tokenizer, cfg


def restore_rng(ckpt: dict, batch_generator: torch.Generator) -> None:
    torch.set_rng_state(ckpt["rng"]["torch"])
    batch_generator.set_state(ckpt["rng"]["batches"])
    if "cuda" in ckpt["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
