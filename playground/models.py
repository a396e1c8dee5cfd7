"""The models the page can switch to, each named by its run: every folder of the runs folder holding a ``best.pt``
(the toy models ``toy_words`` and ``toy``, any run ``train.py`` wrote there) and the runs trained from the page,
``playground/<id>``.

A request names one of these runs, never a path: the name is looked up among the folders found on disk, so
``../x`` or ``/etc/passwd`` is simply not there (404). What the list says about each model (tokenizer, size, step)
is read from its checkpoint without loading the weights (``torch.load(weights_only=True, mmap=True)`` reads the
tensors' shapes, not their numbers), once per version of the file.
"""
import threading
from pathlib import Path

import torch

from core.config import config_from_dict
from errors import UserError
from model.gpt import GPT

PAGE_RUNS = "playground"                   # the page's own runs: runs/playground/<id> (playground.live)


class NotListed(UserError):
    """A run name that is not in the list: answered 404."""


def page_run_id(name: str) -> str | None:
    """The id of a page run's name ("playground/<id>" → "<id>"), else None."""
    prefix = f"{PAGE_RUNS}/"
    return name[len(prefix):] if name.startswith(prefix) else None


def run_folders(root: Path, is_page_run, holding: str) -> dict[str, Path]:
    """Run name → run folder, for every folder of ``root`` holding the file ``holding``: the runs folder's own runs
    (by name), then the page's runs (newest first)."""
    found = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name != PAGE_RUNS and not folder.name.startswith(".") and (folder / holding).is_file():
            found[folder.name] = folder
    page = root / PAGE_RUNS
    for folder in sorted(page.iterdir(), reverse=True) if page.is_dir() else []:
        if is_page_run(folder.name) and (folder / holding).is_file():
            found[f"{PAGE_RUNS}/{folder.name}"] = folder
    return found


class Models:
    """The runs under ``root`` that have a best checkpoint, by name."""

    def __init__(self, root: Path, is_page_run):
        self.root = Path(root).resolve()
        self.is_page_run = is_page_run           # a folder name → whether it is a page run's id (playground.live)
        self.lock = threading.Lock()
        self.summaries: dict[Path, tuple[tuple[int, int], dict]] = {}      # best.pt → (its mtime and size, summary)

    def folders(self) -> dict[str, Path]:
        """Run name → run folder, for the runs with a best checkpoint (``run_folders``)."""
        return run_folders(self.root, self.is_page_run, "best.pt")

    def find(self, name: str) -> Path:
        """The folder of the run called ``name`` (a page run may also be named by its id alone, as POST /api/train
        answers it)."""
        folders = self.folders()
        folder = folders.get(name) or (folders.get(f"{PAGE_RUNS}/{name}") if self.is_page_run(name) else None)
        if folder is None:
            raise NotListed(f"no run named {name!r} with a saved checkpoint in the runs folder; GET /api/models "
                            "lists the runs the page can show")
        return folder

    def summary(self, checkpoint: Path) -> dict:
        """The tokenizer, size, step and best validation loss of a checkpoint, or the problem reading it."""
        stat = checkpoint.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self.lock:
            known = self.summaries.get(checkpoint)
        if known is not None and known[0] == stamp:
            return known[1]
        try:
            ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
            cfg = config_from_dict(ckpt["config"], f"config stored in {checkpoint}")
            summary = {"tokenizer": ckpt["tokenizer"]["kind"], "vocab_size": ckpt["vocab_size"],
                       "parameters": GPT.params_for(cfg.model, ckpt["vocab_size"]), "step": ckpt["iter"],
                       "best_val_loss": ckpt["best_val"] if ckpt["best_val"] < float("inf") else None}
        except Exception as e:             # a damaged or foreign file: listed, with what is wrong, never loaded
            summary = {"problem": f"cannot read its checkpoint ({type(e).__name__})"}
        with self.lock:
            self.summaries[checkpoint] = (stamp, summary)
        return summary

    def listing(self) -> list[dict]:
        listed = []
        for name, folder in self.folders().items():
            try:
                listed.append({"run": name, "checkpoint": folder / "best.pt", **self.summary(folder / "best.pt")})
            except OSError:                # removed since it was found (the page's disk budget)
                continue
        return listed
