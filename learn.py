"""The transformer step by step, each step run on a real model: ``python learn.py attend`` (or ``all``).

Without --checkpoint the lessons run on the word-level toy model (``--toy char``: the character-level one).

Every lesson prints what it measured and saves a figure (default folder out/lessons/). Bad input ends with a
one-line error and exit code 2.
"""
import argparse
import importlib
import sys

from errors import UserError, run_command
from lessons import ORDER
from training.toy import DEFAULT_TOY, TOY_CONFIGS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lesson", choices=[*ORDER, "all"], help="which step to run; all runs them in order")
    parser.add_argument("--checkpoint", help="a .pt file written by train.py, a folder holding a Hugging Face GPT-2, "
                        "or hf:<repo id> (default: the toy model --toy names, trained first if missing)")
    parser.add_argument("--toy", choices=sorted(TOY_CONFIGS), default=DEFAULT_TOY,
                        help="without --checkpoint: the word-level toy model (runs/toy_words, the default) or the "
                             "character-level one (runs/toy)")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="the position lesson: training steps of each short run (default 300; 1000 shows RoPE "
                             "learning word order where the others have not yet)")
    parser.add_argument("--out", default="out/lessons", help="folder for the figures (default: out/lessons)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: run_lessons(args))


def run_lessons(args) -> None:
    from lessons.common import load_context
    from training.run_dir import writable_folder

    if args.steps is not None and not 1 <= args.steps <= 100_000:
        raise UserError(f"--steps must be in 1..100,000, got {args.steps:,}")
    writable_folder(args.out, "figure folder")               # before any lesson runs, not when its figure is saved
    ctx = load_context(args.checkpoint, args.out, toy=args.toy)
    for name in ORDER if args.lesson == "all" else [args.lesson]:
        lesson = importlib.import_module(f"lessons.{name}")
        ctx.say(f"\n{'=' * 100}\n{lesson.__doc__.strip()}\n\nOn the page (python play.py): panel {lesson.PANEL}\n")
        lesson.run(ctx, **({"steps": args.steps} if name == "position" and args.steps else {}))


if __name__ == "__main__":
    sys.exit(main())
