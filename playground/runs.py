"""Runs side by side (the Runs panel): every run of the runs folder with its loss curves, read from its
``metrics.jsonl``, the keys of its config that differ from the others', and, for a toy run, how many toy facts its
``best.pt`` knows.

A run is a folder holding ``metrics.jsonl`` (so a run that has just started is listed, and its curve grows while it
trains), named as the model picker names it (``playground.models.run_folders``): a request names runs, never paths,
and a name that is not listed is answered 404.

The toy-fact score is ``facts.evaluate_facts`` (what ``toy_eval.py`` prints), about a second per toy model on a CPU;
it is kept in memory per ``best.pt``, by the file's modification time and size, so the page asks again only for a
checkpoint that changed, and nothing is written into the run folders. A "toy run" is one whose config's
``data.path`` is the toy corpus.
"""
import threading
from pathlib import Path

from core.config import Config, config_to_dict, load_config
from errors import UserError
from facts import evaluate_facts
from inference import load_for_inference
from playground.models import NotListed, run_folders
from training.run_dir import read_metrics
from training.toy import ROOT, TOY_CORPUS

MAX_COMPARED = 12              # runs drawn on one chart
MAX_POINTS = 2000              # points per curve sent to the page: a longer curve keeps every k-th point and its last
NOT_COMPARED = {"train.out_dir", "data.cache_dir"}   # where a run lives, not what it is: they always differ


def run_config(run_dir: Path) -> Config | None:
    """The run's config, from its ``config.yaml``; None when it cannot be read (edited by hand, removed)."""
    try:
        return load_config(run_dir / "config.yaml")
    except UserError:
        return None


def flat_config(cfg: Config) -> dict:
    """``{"model.n_layer": 2, ...}``, with ``data.path`` as a file name only (the page never learns where the
    user's files are)."""
    flat = {f"{section}.{key}": value for section, values in config_to_dict(cfg).items()
            for key, value in values.items() if f"{section}.{key}" not in NOT_COMPARED}
    flat["data.path"] = Path(cfg.data.path).name
    return flat


def is_toy_corpus(path: str) -> bool:
    """Whether a config's ``data.path`` (relative to the project's folder, as ``make demo`` runs it) is the toy
    corpus."""
    path = Path(path)
    return (path if path.is_absolute() else ROOT / path).resolve() == TOY_CORPUS.resolve()


def thinned(points: list) -> list:
    if len(points) <= MAX_POINTS:
        return points
    k = -(-len(points) // MAX_POINTS)                  # ceil: at most MAX_POINTS kept
    kept = points[::k]
    return kept if kept[-1] is points[-1] else [*kept, points[-1]]


def curves(run_dir: Path) -> dict:
    """The training loss logged every ``log_interval`` steps and the evaluations' val loss: [step, loss] pairs."""
    try:
        records = read_metrics(run_dir / "metrics.jsonl")
    except OSError:                                    # removed since it was listed (the page's disk budget)
        records = []
    return {"train": thinned([[r["iter"], r["loss"]] for r in records if "loss" in r]),
            "val": thinned([[r["iter"], r["val_loss"]] for r in records if "val_loss" in r])}


def facts_summary(results: dict) -> dict:
    correct = sum(entry["correct"] for entry in results.values())
    total = sum(entry["total"] for entry in results.values())
    return {"correct": correct, "total": total,
            "categories": {name: [entry["correct"], entry["total"]] for name, entry in results.items()}}


class Runs:
    """The runs under ``root``, by name, with a cache of their best checkpoints' toy-fact scores."""

    def __init__(self, root: Path, is_page_run, device: str = "cpu"):
        self.root, self.is_page_run, self.device = Path(root).resolve(), is_page_run, device
        self.scoring = threading.Lock()                # one evaluation at a time, and the cache with it
        self.scores: dict[Path, tuple[tuple[int, int], dict]] = {}    # best.pt → (its mtime and size, score)

    def folders(self) -> dict[str, Path]:
        return run_folders(self.root, self.is_page_run, "metrics.jsonl")

    def listing(self, training: str | None) -> list[dict]:
        """Every run: its name, its last logged step and what it is (positions, tokenizer, on the toy corpus or not);
        ``training``: the name of the run training now."""
        listed = []
        for name, folder in self.folders().items():
            cfg = run_config(folder)
            train = curves(folder)["train"]
            entry = {"run": name, "training": name == training, "step": train[-1][0] if train else 0}
            if cfg is None:
                entry["problem"] = "its config.yaml cannot be read"
            else:
                entry.update(positional=cfg.model.positional, tokenizer=cfg.data.tokenizer,
                             max_iters=cfg.train.max_iters, toy=is_toy_corpus(cfg.data.path))
            listed.append(entry)
        return listed

    def compare(self, names: list[str]) -> dict:
        """Each named run's curves and toy-fact score, its config, and the config keys whose values differ."""
        folders = self.folders()
        missing = [name for name in names if name not in folders]
        if missing:
            raise NotListed(f"no run named {missing[0]!r} with metrics in the runs folder; GET /api/runs lists them")
        runs = []
        for name in dict.fromkeys(names):
            folder, cfg = folders[name], run_config(folders[name])
            toy = cfg is not None and is_toy_corpus(cfg.data.path)
            t = cfg.train if cfg is not None else None
            runs.append({"run": name, **curves(folder), "config": flat_config(cfg) if cfg is not None else None,
                         # tokens one step reads (one process: a torchrun run reads this many on each process)
                         "tokens_per_step": t.batch_size * t.grad_accum * cfg.model.block_size if t else None,
                         "facts": self.facts(folder / "best.pt") if toy else None})
        keys = dict.fromkeys(key for run in runs if run["config"] for key in run["config"])
        differing = [key for key in keys if len({repr((run["config"] or {}).get(key)) for run in runs}) > 1]
        for run in runs:                                # side by side: only the keys that differ
            run["config"] = {key: run["config"].get(key) for key in differing} if run["config"] else None
        return {"runs": runs, "differing": differing}

    def facts(self, checkpoint: Path) -> dict:
        """The toy-fact score of a checkpoint, evaluated once per version of the file."""
        try:
            stat = checkpoint.stat()
        except OSError:                                 # a run stopped before its first evaluation, say
            return {"problem": "no best.pt yet"}
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self.scoring:
            known = self.scores.get(checkpoint)
            if known is not None and known[0] == stamp:
                return known[1]
            try:
                loaded = load_for_inference(checkpoint, self.device)
                score = {**facts_summary(evaluate_facts(loaded)), "step": loaded.step}
            except UserError as e:                      # replaced while read (a run training), or damaged
                return {"problem": f"cannot read its best.pt ({e})"}
            self.scores[checkpoint] = (stamp, score)
            return score
