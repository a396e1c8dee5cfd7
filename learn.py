"""The transformer step by step, each step run on a real model: ``python learn.py attend`` (or ``all``).

Every lesson prints what it measured and saves a figure (default folder out/lessons/). Bad input ends with a
one-line error and exit code 2.
"""
import argparse
import importlib
import sys

from errors import run_command
from lessons import ORDER


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lesson", choices=[*ORDER, "all"], help="which step to run; all runs them in order")
    parser.add_argument("--checkpoint", help="a .pt file written by train.py, a folder holding a Hugging Face GPT-2, "
                        "or hf:<repo id> (default: runs/toy/best.pt, trained first if missing)")
    parser.add_argument("--out", default="out/lessons", help="folder for the figures (default: out/lessons)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: run_lessons(args))


def run_lessons(args) -> None:
    from lessons.common import load_context
    from training.run_dir import writable_folder

    writable_folder(args.out, "figure folder")               # before any lesson runs, not when its figure is saved
    ctx = load_context(args.checkpoint, args.out)
    for name in ORDER if args.lesson == "all" else [args.lesson]:
        lesson = importlib.import_module(f"lessons.{name}")
        ctx.say(f"\n{'=' * 100}\n{lesson.__doc__.strip()}\n")
        lesson.run(ctx)


if __name__ == "__main__":
    sys.exit(main())
