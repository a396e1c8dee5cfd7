"""Benchmark training and generation speed: ``python bench.py [--config configs/shakespeare_char.yaml]``.

Prints a table and writes JSON (default bench/results/latest.json): training tokens/s and MFU of the config and of a
6-layer/384-dim/256-context model, wall time to val loss ≤ 1.88 on tinyshakespeare, generation tokens/s with and
without the KV cache, peak memory, and the machine it ran on. A thin command line over ``benchmark.suite.run_suite``;
bad input ends with a one-line error and exit code 2. ``--real-model CHECKPOINT`` times the page and generation on a
large model instead (``benchmark.real_model``).
"""
import argparse
import sys
from pathlib import Path

from errors import UserError, run_command

ROOT = Path(__file__).resolve().parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/shakespeare_char.yaml", help="config to measure")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="tinyshakespeare text (default: %(default)s)")
    parser.add_argument("--set", nargs="+", default=[], metavar="SECTION.KEY=VALUE", help="overrides for every config")
    parser.add_argument("--only", nargs="+", choices=("throughput", "large", "time-to-loss", "generation", "side-by-side"),
                        help="run only these sections (default: all; side-by-side needs --nanogpt)")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar=("NAME", "KEY=VALUE"),
                        help="an extra throughput run: a name and overrides, timed interleaved with --config, e.g. "
                             "--variant compiled train.compile=true (repeatable)")
    parser.add_argument("--ttl-config", nargs="+", default=[], metavar="CONFIG",
                        help="configs to time to the target val loss (default: --config)")
    parser.add_argument("--ttl-variant", nargs="+", action="append", default=[], metavar=("CONFIG", "KEY=VALUE"),
                        help="one more config to time to the target loss, with overrides, e.g. --ttl-variant "
                             "configs/shakespeare_char_gpu_fast.yaml train.compile=false (repeatable)")
    parser.add_argument("--target-loss", type=float, default=1.88, help="val loss to reach (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per round (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default: %(default)s)")
    parser.add_argument("--nanogpt", metavar="PATH",
                        help="a checkout of nanoGPT: time its shakespeare_char recipe beside ours, each as a whole "
                             "command (section side-by-side)")
    parser.add_argument("--real-model", metavar="CHECKPOINT",
                        help="instead: time the page (POST /api/page) and generation on this model, e.g. a GPT-2 "
                             "folder, at 1 and 2 threads (benchmark/real_model.py)")
    parser.add_argument("--tokens", type=int, default=64, help="--real-model: tokens in the page's text")
    parser.add_argument("--out", default="bench/results/latest.json", help="JSON output (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: run_bench(args))


def run_bench(args) -> None:
    if args.real_model:
        return run_real_model(args.real_model, args.tokens)
    if not Path(args.data).is_file():
        raise UserError(f"benchmark text {args.data} not found; get tinyshakespeare (input.txt of "
                        f"karpathy/char-rnn) and pass --data PATH")
    if min(args.steps, args.rounds) < 1 or args.warmup < 0:
        raise UserError("--steps and --rounds must be >= 1 and --warmup >= 0")
    bad = [v[0] for v in args.variant if len(v) < 2]
    if bad:
        raise UserError(f"--variant {bad[0]} needs overrides after its name, "
                        f"e.g. --variant {bad[0]} train.compile=true")
    bad = [v[0] for v in args.ttl_variant if len(v) < 2]
    if bad:
        raise UserError(f"--ttl-variant {bad[0]} needs overrides after the config, "
                        f"e.g. --ttl-variant {bad[0]} train.compile=false")
    if args.only and "side-by-side" in args.only and not args.nanogpt:
        raise UserError("--only side-by-side needs --nanogpt PATH (a checkout of nanoGPT)")
    if args.nanogpt and not (Path(args.nanogpt) / "train.py").is_file():
        raise UserError(f"--nanogpt {args.nanogpt} is not a nanoGPT checkout (no train.py there)")
    from benchmark.report import format_report, write_json
    from benchmark.suite import SECTIONS, run_suite
    from training.run_dir import writable_folder

    if Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is a folder; give a file name such as {Path(args.out) / 'latest.json'}")
    writable_folder(Path(args.out).parent, "results folder")    # before minutes of measuring, not after

    sections = args.only or (*SECTIONS, *(["side-by-side"] if args.nanogpt else []))
    results = run_suite(args.config, args.data, sections=sections, overrides=args.set, nanogpt=args.nanogpt,
                        variants={v[0]: v[1:] for v in args.variant}, ttl_configs=args.ttl_config,
                        ttl_variants=[(v[0], v[1:]) for v in args.ttl_variant],
                        target=args.target_loss, steps=args.steps, warmup=args.warmup, rounds=args.rounds,
                        log=lambda msg: print(msg, file=sys.stderr, flush=True))
    written = write_json(results, args.out)            # first: minutes of measuring are kept whatever the table does
    print(format_report(results))
    print(f"\nwritten to {written}")


def run_real_model(checkpoint: str, tokens: int) -> None:
    from fastapi.testclient import TestClient

    from benchmark.real_model import run
    from inference import load_for_inference
    from playground.server import create_app

    loaded = load_for_inference(checkpoint)
    if not 1 <= tokens <= loaded.cfg.model.block_size:
        raise UserError(f"--tokens must be 1..{loaded.cfg.model.block_size} (the model's context), got {tokens}")
    client = TestClient(create_app(loaded, checkpoint), base_url="http://127.0.0.1")

    def page(text: str) -> bytes:
        answer = client.post("/api/page", json={"text": text})
        if answer.status_code != 200:
            raise UserError(f"/api/page answered {answer.status_code}: {answer.text}")
        return answer.content

    run(loaded, page, tokens, log=lambda msg: print(msg, flush=True))


if __name__ == "__main__":
    sys.exit(main())
