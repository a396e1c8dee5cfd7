"""Sample text from a trained checkpoint:
``python generate.py --checkpoint runs/toy/best.pt --prompt "This animal is a" --temperature 0.8``.

Defaults for the prompt and sampling come from the checkpoint's ``sample`` config section. Text streams as it is
made; ``--show-probs`` first prints the likeliest next tokens with their probabilities at the chosen temperature.
"""
import argparse
import json
import math
import sys

from core.config import MAX_NEW_TOKENS, MAX_SEED
from errors import UserError, run_command
from model.sampling import MAX_TOP_K, MAX_TOP_P, MIN_TEMPERATURE, MIN_TOP_K, TOP_P_ABOVE


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a .pt file written by train.py (e.g. runs/toy/best.pt), a "
                   "folder holding a Hugging Face GPT-2, or hf:<repo id> (e.g. hf:openai-community/gpt2)")
    prompt = p.add_mutually_exclusive_group()
    prompt.add_argument("--prompt", help="text to continue (default: the checkpoint's sample.prompt)")
    prompt.add_argument("--prompt-file", help="read the prompt from this UTF-8 file, as it is: a final newline "
                        "(which echo adds) is part of the prompt")
    p.add_argument("--temperature", type=float, help="0 = greedy (argmax); <1 sharper, >1 flatter")
    p.add_argument("--top-k", type=int, help="sample only among the k likeliest tokens")
    p.add_argument("--top-p", type=float, help="sample only among the likeliest tokens whose probabilities sum to p")
    p.add_argument("--max-new-tokens", type=int, help="how many tokens to add")
    p.add_argument("--num-samples", type=int, default=1, help="independent samples of the same prompt")
    p.add_argument("--seed", type=int, help="random seed: the same seed gives the same text")
    p.add_argument("--show-probs", type=int, nargs="?", const=10, default=0, metavar="N",
                   help="print the N (default 10) likeliest next tokens with their probabilities first")
    p.add_argument("--format", choices=("text", "jsonl"), default="text", help="jsonl: one JSON object per sample")
    p.add_argument("--no-kv-cache", action="store_true", help="recompute the whole window every step (slower)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    return p.parse_args(argv)


MAX_PROMPT_BYTES = 1 << 20                      # read no further, as configs (core.config.MAX_CONFIG_BYTES)


def read_prompt(args, default: str) -> str:
    if args.prompt_file is None:
        return default if args.prompt is None else args.prompt
    try:
        with open(args.prompt_file, "rb") as f:
            raw = f.read(MAX_PROMPT_BYTES + 1)          # --prompt-file /dev/zero would never end
    except OSError as e:
        raise UserError(f"cannot read prompt file {args.prompt_file}: {e.strerror}") from None
    if len(raw) > MAX_PROMPT_BYTES:
        raise UserError(f"prompt file {args.prompt_file} is over {MAX_PROMPT_BYTES // 1024} KiB; a prompt must fit "
                        "the model's context, a few hundred tokens")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"prompt file {args.prompt_file} is not UTF-8 text") from None


MAX_SAMPLES = 1024


def check_args(args) -> None:
    """Every number in range before any work: a typo gets one line, not a traceback or a run that never ends. The
    sampling limits are ``model.sampling``'s."""
    if args.temperature is not None and not (math.isfinite(args.temperature) and args.temperature >= MIN_TEMPERATURE):
        raise UserError(f"--temperature must be a finite number >= {MIN_TEMPERATURE:g} (0 = greedy), "
                        f"got {args.temperature}")
    if args.top_k is not None and not MIN_TOP_K <= args.top_k <= MAX_TOP_K:
        raise UserError(f"--top-k must be in {MIN_TOP_K}..{MAX_TOP_K}, got {args.top_k}")
    if args.top_p is not None and not TOP_P_ABOVE < args.top_p <= MAX_TOP_P:
        raise UserError(f"--top-p must be in ({TOP_P_ABOVE:g}, {MAX_TOP_P:g}], got {args.top_p}")
    if args.max_new_tokens is not None and not 0 <= args.max_new_tokens <= MAX_NEW_TOKENS:
        raise UserError(f"--max-new-tokens must be in 0..{MAX_NEW_TOKENS:,}, got {args.max_new_tokens:,}")
    if not 1 <= args.num_samples <= MAX_SAMPLES:
        raise UserError(f"--num-samples must be in 1..{MAX_SAMPLES}, got {args.num_samples:,}")
    if not 0 <= args.show_probs <= 10**6:
        raise UserError(f"--show-probs must be in 0..1000000 (0 = off), got {args.show_probs:,}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed must be in 0..{MAX_SEED} (64 bits), got {args.seed}")


def run(args, out=None) -> None:
    import torch

    from core.memory import check_fits, generation_bytes
    from inference import complete, encode_prompt, load_for_inference, next_logits, top_tokens
    from model.sampling import next_token_probs

    out = out or sys.stdout
    check_args(args)
    loaded = load_for_inference(args.checkpoint, args.device)
    s = loaded.cfg.sample
    prompt = read_prompt(args, s.prompt)
    temperature = s.temperature if args.temperature is None else args.temperature
    top_k = s.top_k if args.top_k is None else args.top_k
    top_p = s.top_p if args.top_p is None else args.top_p
    max_new = s.max_new_tokens if args.max_new_tokens is None else args.max_new_tokens
    ids = encode_prompt(loaded, prompt)
    if unknown := loaded.tokenizer.unknown(prompt):
        print(f"warning: not in this model's vocabulary, read as {loaded.tokenizer.decode([loaded.tokenizer.unk_id])}: "
              + ", ".join(repr(w) for w in unknown), file=sys.stderr)
    check_fits(generation_bytes(loaded.cfg.model, loaded.tokenizer.vocab_size, args.num_samples, max_new),
               f"generating {args.num_samples:,} samples of {max_new:,} tokens", loaded.device)
    generator = torch.Generator(device=loaded.device).manual_seed(s.seed if args.seed is None else args.seed)

    probs = None
    if args.show_probs:
        distribution = next_token_probs(next_logits(loaded, ids)[None], temperature, top_k, top_p)[0]   # (V,)
        probs = [(token, p) for _, token, p in top_tokens(loaded.tokenizer, distribution, args.show_probs)]
    if probs and args.format == "text":
        print(f"next-token probabilities at temperature {temperature}:", file=out)
        for token, p in probs:
            print(f"  {token!r:>12}  {p:7.2%}  {'█' * round(p * 40)}", file=out)
        print(file=out)

    stream = complete(loaded, ids, max_new, temperature, top_k, top_p, generator,
                      use_cache=not args.no_kv_cache, num_samples=args.num_samples)
    live = args.format == "text"                 # sample 1 streams as it is made; the batch's others follow it
    if live:
        print(("--- sample 1 ---\n" if args.num_samples > 1 else "") + prompt, end="", file=out, flush=True)
    texts = [""] * args.num_samples
    for sample, piece in stream:
        texts[sample] += piece
        if live and sample == 0:
            print(piece, end="", file=out, flush=True)
    for sample, text in enumerate(texts):
        if live:
            if sample > 0:
                print(f"--- sample {sample + 1} ---\n{prompt}{text}", end="", file=out)
            print(file=out, flush=True)
            continue
        record = {"sample": sample, "prompt": prompt, "completion": text, "temperature": temperature}
        if probs:
            record["next_token_probs"] = [{"token": t, "prob": p} for t, p in probs]
        print(json.dumps(record, ensure_ascii=False), file=out, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_command(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
