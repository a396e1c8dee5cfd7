"""Write a model as a folder of safetensors files: ``python export.py runs/toy out/toy`` (a run folder, a checkpoint,
a model folder or hf:<repo id>, then a new or empty folder).

A GPT-2-shaped model (learned positions, no √C on the embeddings) is written in Hugging Face's GPT-2 layout, which
``transformers.GPT2LMHeadModel.from_pretrained(OUT_DIR)`` loads; any other in this project's own layout, which
``--checkpoint OUT_DIR`` reads back. A thin command line over ``core.hub.export_model``; it never writes into a
folder holding files it did not write.
"""
import argparse
import sys

from errors import run_command


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT", help="a run folder (its best.pt), a .pt checkpoint, a model "
                   "folder or hf:<repo id>")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the folder to write: new, empty, or an earlier export")
    return p.parse_args(argv)


def run(args) -> None:
    from core.hub import export_model

    print(export_model(args.source, args.out_dir))


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
