"""Models as folders of safetensors files, on this machine or on the Hugging Face Hub: what ``--checkpoint`` and
``--init-from`` take beside this project's .pt checkpoints, and what ``export.py`` writes.

    hf:openai-community/gpt2    downloaded once into huggingface_hub's cache (~/.cache/huggingface/hub, or under
                                HF_HOME), read from there afterwards, offline too
    path/to/folder              a folder holding config.json and model.safetensors (+ vocab.json and merges.txt)

Two layouts. Hugging Face's GPT-2 (config.json's ``model_type`` is "gpt2", names mapped by ``core.gpt2``): GPT-2
itself, and every model of ours that its class can hold. This project's own (config.json's ``format`` is
``OWN_FORMAT``): our parameter names, the run's whole config, and the tokenizer in tokenizer.json, for the models
GPT-2's class cannot hold (sinusoidal positions, √C-scaled embeddings). Weights are read with safetensors only,
never unpickled. A folder is read into a checkpoint dict (``core.checkpoint``'s format, without an optimizer
state), so whatever takes a checkpoint takes a folder.
"""
import json
import math
from dataclasses import asdict
from pathlib import Path

import torch

from core.atomic_files import atomic_write
from core.checkpoint import FORMAT, VERSION, load_checkpoint, model_from_checkpoint
from core.config import Config, config_to_dict
from core.gpt2 import MODEL_TYPE, hf_config, model_config_from_hf, state_from_hf, state_to_hf, why_not_gpt2
from data.config import DataConfig
from data.tokenization import GPT2Tokenizer, Tokenizer, tokenizer_from_dict
from errors import UserError

HF_PREFIX = "hf:"
HF_FILES = ("config.json", "model.safetensors", "vocab.json", "merges.txt")
OWN_FORMAT = "gpt-playground-safetensors"
OWN_TOKENIZER = "tokenizer.json"          # our layout's tokenizer: ``Tokenizer.to_dict`` as JSON
EXPORT_MARK = ".gpt-playground-export"    # the files export.py wrote into a folder (it overwrites only those)
MAX_JSON_BYTES = 64 << 20                 # GPT-2's vocab.json is 1 MB, config.json a few hundred bytes
GPT2_DOWNLOAD = "about 550 MB for gpt2 (124M parameters), 1.5 GB for gpt2-medium"


def is_model_folder(source: str | Path) -> bool:
    """``hf:<repo id>``, or a folder holding a model's files (a run folder, holding best.pt, is not one)."""
    if str(source).startswith(HF_PREFIX):
        return True
    path = Path(source)
    return path.is_dir() and any((path / name).exists() for name in (*HF_FILES, OWN_TOKENIZER))


def load_model_source(source: str | Path) -> dict:
    """A checkpoint dict from a .pt checkpoint, a model folder or ``hf:<repo id>``: every model argument goes here."""
    if is_model_folder(source):
        return read_model_folder(local_folder(str(source)), str(source))
    return load_checkpoint(source)


def local_folder(source: str) -> Path:
    """The folder holding ``source``'s files: itself, or the cached download of ``hf:<repo id>``."""
    if not source.startswith(HF_PREFIX):
        return Path(source)
    repo_id = source.removeprefix(HF_PREFIX)
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (HFValidationError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError)

    try:
        return Path(snapshot_download(repo_id, allow_patterns=list(HF_FILES)))
    except HFValidationError:
        raise UserError(f"{source} is not a Hugging Face repo id: write hf:<owner>/<name>, e.g. "
                        "hf:openai-community/gpt2") from None
    except LocalEntryNotFoundError:
        raise UserError(f"{source} is not in the Hugging Face cache and cannot be downloaded now (offline): run "
                        f"once with network access to download {', '.join(HF_FILES)} ({GPT2_DOWNLOAD}) into "
                        f"{constants.HF_HUB_CACHE}, or put those files in a folder and give its path") from None
    except RepositoryNotFoundError:
        raise UserError(f"{source}: no such public model on the Hugging Face Hub (or it needs a login)") from None
    except (HfHubHTTPError, OSError) as e:
        raise UserError(f"cannot download {source}: {' '.join(str(e).split())[:160]}") from None


def read_json(path: Path, name: str):
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise UserError(f"{name} has no {path.name}") from None
    except OSError as e:
        raise UserError(f"{name}: cannot read {path.name}: {e.strerror or e}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise UserError(f"{name}: {path.name} is over {MAX_JSON_BYTES >> 20} MiB; it is not a model's {path.name}")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{name}: {path.name} is not valid JSON ({e})") from None


def read_weights(folder: Path, name: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / "model.safetensors"
    if not path.is_file():
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        also = f" (only safetensors are read, never pickled files such as {pickled[0]})" if pickled else ""
        raise UserError(f"{name} has no model.safetensors{also}")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{name}: model.safetensors is damaged or not a safetensors file "
                        f"({' '.join(str(e).split())[:120]})") from None


def read_model_folder(folder: Path, name: str) -> dict:
    """The model in ``folder`` as a checkpoint dict; a one-line UserError naming the file and what is wrong."""
    if not folder.is_dir():
        raise UserError(f"model folder {name} does not exist")
    config = read_json(folder / "config.json", name)
    if not isinstance(config, dict):
        raise UserError(f"{name}: config.json is not a JSON object")
    if config.get("format") == OWN_FORMAT:
        return read_own_layout(folder, name, config)
    if config.get("model_type") != MODEL_TYPE:
        raise UserError(f"{name}: config.json describes model_type {config.get('model_type')!r}; only GPT-2's "
                        f"layout ('{MODEL_TYPE}') and this project's exports are read")
    try:
        model_cfg, vocab_size = model_config_from_hf(config)
    except ValueError as e:
        raise UserError(f"{name}: config.json describes a GPT-2 this model cannot hold: {e}") from None
    tokenizer = read_tokenizer(folder, name)
    if tokenizer.vocab_size != vocab_size:
        raise UserError(f"{name}: config.json's vocab_size is {vocab_size} but its tokenizer has "
                        f"{tokenizer.vocab_size} tokens")
    try:
        state = state_from_hf(read_weights(folder, name), model_cfg)
    except ValueError as e:
        raise UserError(f"{name}: model.safetensors: {e}") from None
    cfg = Config(model=model_cfg, data=DataConfig(tokenizer=tokenizer.kind))
    return checkpoint_dict(state, cfg, tokenizer)


def read_tokenizer(folder: Path, name: str) -> Tokenizer:
    """GPT-2's tokenizer from vocab.json + merges.txt, or ours from tokenizer.json (a model we exported)."""
    if (folder / "vocab.json").exists() or (folder / "merges.txt").exists():
        vocab = read_json(folder / "vocab.json", name)
        try:
            merges = (folder / "merges.txt").read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise UserError(f"{name} has vocab.json but no merges.txt (GPT-2's tokenizer needs both)") from None
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{name}: cannot read merges.txt as UTF-8 text ({e})") from None
        try:
            return GPT2Tokenizer.from_vocab_and_merges(vocab, merges)
        except UserError as e:
            raise UserError(f"{name}: {e}") from None
    if (folder / OWN_TOKENIZER).exists():
        data = read_json(folder / OWN_TOKENIZER, name)
        try:
            return tokenizer_from_dict(from_json(data))
        except UserError as e:
            raise UserError(f"{name}: {OWN_TOKENIZER}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise UserError(f"{name}: {OWN_TOKENIZER} is malformed ({type(e).__name__}: {e})") from None
    raise UserError(f"{name} has no tokenizer: GPT-2's is vocab.json and merges.txt")


def read_own_layout(folder: Path, name: str, config: dict) -> dict:
    if config.get("version") != VERSION or not isinstance(config.get("config"), dict):
        raise UserError(f"{name}: config.json is this project's export, but of version {config.get('version')!r} "
                        f"or damaged (this code reads version {VERSION})")
    state = read_weights(folder, name)
    if "embed.token.weight" in state:
        state["lm_head.weight"] = state["embed.token.weight"]          # tied: written once
    tokenizer = read_tokenizer(folder, name)
    best_val = config.get("best_val")
    return {**checkpoint_dict(state, config["config"], tokenizer), "iter": int(config.get("iter") or 0),
            "best_val": float(best_val) if isinstance(best_val, (int, float)) else math.nan}


def checkpoint_dict(state: dict, cfg: Config | dict, tokenizer: Tokenizer) -> dict:
    """``core.checkpoint``'s dict for weights read from a folder: no optimizer state, step 0 unless said."""
    return {"format": FORMAT, "version": VERSION, "model": state,
            "config": cfg if isinstance(cfg, dict) else config_to_dict(cfg), "tokenizer": tokenizer.to_dict(),
            "vocab_size": tokenizer.vocab_size, "iter": 0, "best_val": math.nan, "rng": {}, "optimizer": None}


def to_json(value):
    """Plain data with bytes (a BPE's tokens) as {"hex": ...}, for tokenizer.json."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    return value


def from_json(value):
    if isinstance(value, dict):
        if set(value) == {"hex"}:
            return bytes.fromhex(value["hex"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


# ---- export: a checkpoint (or any model source) written as a folder --------------------------------------------

def export_model(source: str | Path, out_dir: str | Path) -> str:
    """Write the model of ``source`` (a run folder, a checkpoint, a model folder, hf:...) into ``out_dir``: in
    GPT-2's layout where Hugging Face's class can hold it, else in ours. Returns one line saying which, and why.
    ``out_dir`` may be new, empty, or a folder this function wrote before; anything else is refused untouched."""
    path = Path(source)
    if path.is_dir() and not is_model_folder(path) and (path / "best.pt").is_file():
        path = path / "best.pt"                                         # a run folder: its best checkpoint
    ckpt = load_model_source(str(path))
    model, tokenizer, cfg = model_from_checkpoint(ckpt, source)
    out = Path(out_dir)
    old = check_export_folder(out)
    state = model.state_dict()
    reasons = why_not_gpt2(cfg.model)
    files: dict[str, bytes] = {}
    if not reasons:
        end_of_text = tokenizer.special.get("<|endoftext|>") if isinstance(tokenizer, GPT2Tokenizer) else None
        files["config.json"] = dumps(hf_config(cfg.model, tokenizer.vocab_size, end_of_text))
        files["model.safetensors"] = safetensors_bytes(state_to_hf(state, cfg.model))
    else:
        files["config.json"] = dumps({"format": OWN_FORMAT, "version": VERSION, "config": asdict(cfg),
                                      "vocab_size": tokenizer.vocab_size, "iter": ckpt["iter"],
                                      "best_val": None if math.isnan(ckpt["best_val"]) else ckpt["best_val"]})
        files["model.safetensors"] = safetensors_bytes({k: v for k, v in state.items() if k != "lm_head.weight"})
    if isinstance(tokenizer, GPT2Tokenizer):
        vocab, merges = tokenizer.vocab_and_merges()
        files["vocab.json"], files["merges.txt"] = dumps(vocab), merges.encode("utf-8")
    else:
        files[OWN_TOKENIZER] = dumps(to_json(tokenizer.to_dict()))
    write_export(out, files, old)
    if not reasons:
        tokenizer_note = ("" if isinstance(tokenizer, GPT2Tokenizer) else
                          f" (its {tokenizer.kind} tokenizer is in {OWN_TOKENIZER}, which only this project reads)")
        return (f"wrote {out} in Hugging Face's GPT-2 layout: transformers.GPT2LMHeadModel.from_pretrained('{out}') "
                f"loads it{tokenizer_note}")
    return (f"wrote {out} in this project's own layout (--checkpoint {out} reads it): Hugging Face's GPT-2 class "
            f"cannot hold this model's {' and '.join(reasons)}")


def dumps(value) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def safetensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"format": "pt"})


def check_export_folder(out: Path) -> list[str]:
    """The files a previous export wrote into ``out`` (none if it is new or empty); a UserError if ``out`` holds
    anything else, which is the user's and is never overwritten."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder to export into")
    if not out.exists():
        return []
    present = sorted(p.name for p in out.iterdir())
    if not present:
        return []
    ours: list[str] = []
    if (out / EXPORT_MARK).is_file():
        try:
            ours = json.loads((out / EXPORT_MARK).read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            ours = []
    foreign = [name for name in present if name != EXPORT_MARK and name not in ours]
    if foreign or not (out / EXPORT_MARK).is_file():
        raise UserError(f"{out} holds files export.py did not write ({', '.join((foreign or present)[:3])}); "
                        "export into a new or empty folder")
    return ours


def write_export(out: Path, files: dict[str, bytes], old: list[str]) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / EXPORT_MARK, lambda f: f.write(dumps({"files": sorted({*files, *old})})))
        for name, data in files.items():
            atomic_write(out / name, lambda f, data=data: f.write(data))
        for name in set(old) - set(files):          # a previous export's file this layout does not have
            (out / name).unlink(missing_ok=True)
        atomic_write(out / EXPORT_MARK, lambda f: f.write(dumps({"files": sorted(files)})))
    except OSError as e:
        raise UserError(f"cannot write to {out}: {e.strerror or e}") from None
