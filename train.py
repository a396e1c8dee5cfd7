"""Train the mini-GPT: ``python train.py --config configs/toy.yaml [--set train.max_iters=200 ...]``.

A thin command line over ``training.trainer.train``; bad input ends with a one-line error and exit code 2.
"""
import argparse
import os
import re
import sys
from pathlib import Path

from errors import run_command


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML config (default: the built-in defaults, i.e. the toy model)")
    parser.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE",
                        help="override config values, e.g. --set train.max_iters=200 model.n_layer=2")
    parser.add_argument("--data", help="shortcut for --set data.path=PATH (a text file or folder of .txt files)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where last.pt left it")
    start.add_argument("--init-from", metavar="CHECKPOINT", help="fine-tune: start from this checkpoint's weights "
                       "and tokenizer on the config's corpus (a .pt file, a folder holding a Hugging Face GPT-2, or "
                       "hf:<repo id>)")
    parser.add_argument("--overwrite", action="store_true", help="start over in a run directory that has checkpoints")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    parser.add_argument("--stop-with", type=int, metavar="PID", help="stop (saving, as Ctrl-C does) when process PID, "
                        "which started this one, ends: the page's server passes its own")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: run_training(args))


def run_folder_for_data(data: str) -> str:
    """runs/<name of the corpus>: a run on the user's own text gets its own folder, never the toy model's."""
    name = re.sub(r"[^\w.-]+", "_", Path(data).stem or Path(data).resolve().name).strip("._") or "data"
    return f"runs/{name}"


def run_training(args) -> int:
    from core.config import load_config, parse_overrides
    from training.lifeline import stop_with
    from training.trainer import train

    if args.stop_with is not None:
        stop_with(args.stop_with)
    overrides = list(args.set)
    if args.data is not None:
        overrides.append(f"data.path={args.data}")
        chosen = "out_dir" in parse_overrides(args.set).get("train", {})
        config_corpus = load_config(args.config).data.path if args.config else None
        same_corpus = config_corpus is not None and Path(config_corpus).resolve() == Path(args.data).resolve()
        if args.data and not args.resume and not chosen and not same_corpus:
            overrides.append(f"train.out_dir={run_folder_for_data(args.data)}")
            print(f"run directory: {overrides[-1].split('=', 1)[1]} (named after --data; choose another with "
                  "--set train.out_dir=...)")
    cfg = None if args.resume else load_config(args.config, overrides)
    result = train(cfg, resume=args.resume, init_from=args.init_from, overrides=overrides,
                   overwrite=args.overwrite, progress=not args.no_progress)
    if result.interrupted:
        return 130
    if os.environ.get("RANK", "0") == "0":        # under torchrun only rank 0 has evaluated and saved
        print(f"done: step {result.iter}, best val loss {result.best_val:.4f}, checkpoints in {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
