"""GPT-2's weights in this project's model, checked against Hugging Face's own implementation.

The oracle is ``transformers``' ``GPT2LMHeadModel`` (a test requirement only), built small and random and saved to a
temporary folder with ``save_pretrained``: nothing is downloaded. Its tokenizer files (vocab.json, merges.txt) are
made here: the 256 byte tokens, a few dozen merges and ``<|endoftext|>``.
"""
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

import export
import generate
import train
from core.checkpoint import checkpoint_state, save_checkpoint
from core.config import Config
from core.hub import export_model, load_model_source
from data.config import DataConfig
from data.tokenization import GPT2Tokenizer, gpt2_byte_alphabet
from inference import load_for_inference
from model import GPT, ModelConfig
from model.generation import generate as generate_tokens
from tests.conftest import run_cli

transformers = pytest.importorskip("transformers", reason="transformers is a test requirement (requirements-dev.txt)")

TEXT = "The dog chased the cat. Who chased? the dog.\n2+2=4\nThis animal barks. This animal is a dog.\n"


def small_tokenizer(n_merges: int = 40) -> GPT2Tokenizer:
    """A byte-level BPE like GPT-2's: the byte tokens in GPT-2's order, merges learned greedily from ``TEXT``
    (after a space, as GPT-2's words carry theirs), then <|endoftext|>."""
    alphabet = gpt2_byte_alphabet()
    ranks = {bytes([b]): i for i, b in enumerate(sorted(range(256), key=lambda b: ord(alphabet[b])))}
    words = [[bytes([b]) for b in w.encode()] for w in TEXT.replace("\n", " ").split(" ") if w]
    for _ in range(n_merges):
        counts: dict[tuple[bytes, bytes], int] = {}
        for w in words:
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        best = max(counts, key=counts.get)
        ranks[best[0] + best[1]] = len(ranks)
        for w in words:
            j = 0
            while j < len(w) - 1:
                if (w[j], w[j + 1]) == best:
                    w[j : j + 2] = [best[0] + best[1]]
                j += 1
    return GPT2Tokenizer(ranks, {"<|endoftext|>": len(ranks)})


def write_tokenizer(folder: Path, tokenizer: GPT2Tokenizer) -> None:
    vocab, merges = tokenizer.vocab_and_merges()
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text(merges, encoding="utf-8")


def hf_folder(folder: Path, n_layer=2, n_head=4, n_embd=64, n_positions=32, tokenizer=None, seed=0, **config):
    """A random GPT2LMHeadModel saved with save_pretrained, plus tokenizer files; returns the model (eval mode).
    Biases and LayerNorms are randomised too, so that every tensor's place is checked."""
    tokenizer = tokenizer or small_tokenizer()
    torch.manual_seed(seed)
    hf_config = transformers.GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_positions=n_positions,
                                        vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.vocab_size - 1,
                                        eos_token_id=tokenizer.vocab_size - 1, **config)
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(torch.randn_like(p) * 0.1)
    hf.save_pretrained(folder)
    write_tokenizer(folder, tokenizer)
    return hf


def greedy(model: GPT, prompt: torch.Tensor, n: int, use_cache: bool) -> list[int]:
    return torch.cat(list(generate_tokens(model, prompt, n, temperature=0.0, use_cache=use_cache)), 1)[0].tolist()


def hf_greedy(hf, prompt: torch.Tensor, n: int) -> list[int]:
    out = hf.generate(prompt, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                      attention_mask=torch.ones_like(prompt), pad_token_id=hf.config.eos_token_id)
    return out[0, prompt.size(1):].tolist()


def check_against_hf(folder: Path, hf, prompt_len: int, new_tokens: int = 20) -> float:
    """Our import of ``folder`` against ``hf``: logits within 1e-4 and the same greedy tokens, with and without the
    KV cache. Returns the largest logit difference."""
    loaded = load_for_inference(folder)
    torch.manual_seed(1)
    idx = torch.randint(0, loaded.tokenizer.vocab_size, (2, prompt_len))
    with torch.no_grad():
        ours, _ = loaded.model(idx)
        theirs = hf(idx).logits
    diff = (ours - theirs).abs().max().item()
    assert diff <= 1e-4, diff
    expected = hf_greedy(hf, idx[:1], new_tokens)
    assert greedy(loaded.model, idx[:1], new_tokens, use_cache=True) == expected
    assert greedy(loaded.model, idx[:1], new_tokens, use_cache=False) == expected
    return diff


@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
def test_an_imported_gpt2_computes_hugging_faces_logits_and_greedy_tokens(tmp_path, activation):
    hf = hf_folder(tmp_path, activation_function=activation)
    check_against_hf(tmp_path, hf, prompt_len=8)
    loaded = load_for_inference(tmp_path)
    m = loaded.cfg.model
    assert (m.positional, m.bias, m.embed_scale, m.block_size, m.n_layer, m.n_head, m.n_embd) == \
        ("learned", True, False, 32, 2, 4, 64)
    assert m.activation == ("gelu_tanh" if activation == "gelu_new" else "gelu")
    assert loaded.model.num_params() == sum(p.numel() for p in hf.parameters())


def test_older_files_without_the_prefix_with_mask_buffers_and_a_tied_head_read_the_same(tmp_path):
    """The original GPT-2 files name tensors without 'transformer.' and hold the causal masks as h.{i}.attn.bias."""
    from safetensors.torch import load_file, save_file

    hf = hf_folder(tmp_path)
    tensors = {k.removeprefix("transformer."): v for k, v in load_file(tmp_path / "model.safetensors").items()}
    for i in range(2):
        tensors[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 32, 32))
        tensors[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    tensors["lm_head.weight"] = tensors["wte.weight"].clone()
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    check_against_hf(tmp_path, hf, prompt_len=8, new_tokens=5)


def byte_pair_tokenizer() -> GPT2Tokenizer:
    """GPT-2's 50,257 tokens: the 256 bytes, 50,000 byte pairs as merges, <|endoftext|>."""
    alphabet = sorted(range(256), key=lambda b: ord(gpt2_byte_alphabet()[b]))
    ranks = {bytes([b]): i for i, b in enumerate(alphabet)}
    for a in alphabet:
        for b in alphabet:
            if len(ranks) < 50256:
                ranks[bytes([a, b])] = len(ranks)
    return GPT2Tokenizer(ranks, {"<|endoftext|>": 50256})


@pytest.mark.slow
def test_a_gpt2_small_shaped_model_matches_hugging_face(tmp_path):
    """12 blocks × 12 heads × 768, 1,024 positions, 50,257 tokens (random weights; 50,000 merges of byte pairs)."""
    tokenizer = byte_pair_tokenizer()
    hf = hf_folder(tmp_path, n_layer=12, n_head=12, n_embd=768, n_positions=1024, tokenizer=tokenizer)
    assert sum(p.numel() for p in hf.parameters()) == 124_439_808
    check_against_hf(tmp_path, hf, prompt_len=64)


def gpt2_shaped_checkpoint(path: Path, tokenizer, **switches) -> GPT:
    cfg = Config(model=ModelConfig(block_size=32, n_layer=2, n_head=4, n_embd=64, **switches),
                 data=DataConfig(tokenizer=tokenizer.kind))
    torch.manual_seed(3)
    model = GPT(cfg.model, tokenizer.vocab_size).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln" in name or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    save_checkpoint(path, checkpoint_state(model, None, cfg, tokenizer, 7, 2.5, torch.Generator()))
    return model


GPT2_SWITCHES = {"positional": "learned", "bias": True, "activation": "gelu_tanh", "embed_scale": False}


@pytest.mark.parametrize("switches", [GPT2_SWITCHES, {**GPT2_SWITCHES, "bias": False, "activation": "gelu"}],
                         ids=["gpt2", "no biases, exact gelu"])
def test_export_of_a_gpt2_shaped_model_loads_in_hugging_face_with_equal_logits(tmp_path, switches):
    model = gpt2_shaped_checkpoint(tmp_path / "m.pt", small_tokenizer(), **switches)
    said = export_model(tmp_path / "m.pt", tmp_path / "out")
    assert "Hugging Face's GPT-2 layout" in said
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "out").eval()
    idx = torch.randint(0, model.vocab_size, (2, 20))
    with torch.no_grad():
        assert (model(idx)[0] - hf(idx).logits).abs().max().item() <= 1e-4
    assert GPT2Tokenizer.from_vocab_and_merges(json.loads((tmp_path / "out" / "vocab.json").read_text()),
                                               (tmp_path / "out" / "merges.txt").read_text()).to_dict() \
        == small_tokenizer().to_dict()


def test_export_of_a_sinusoidal_model_is_our_layout_and_imports_with_equal_logits(tmp_path, trained_run):
    said = export_model(trained_run, tmp_path / "out")               # a run folder: its best.pt
    assert "own layout" in said and "sinusoidal positions" in said and "√n_embd" in said
    before, after = load_for_inference(trained_run / "best.pt"), load_for_inference(tmp_path / "out")
    idx = torch.randint(0, before.tokenizer.vocab_size, (2, 16))
    with torch.no_grad():
        assert torch.equal(before.model(idx)[0], after.model(idx)[0])
    assert after.cfg == before.cfg and after.tokenizer.to_dict() == before.tokenizer.to_dict()
    assert (after.step, after.best_val) == (before.step, before.best_val)


def test_export_of_a_rope_model_is_our_layout_for_its_one_reason_and_imports_with_equal_logits(tmp_path):
    """GPT-2's switches but rotary positions: the rotation is the one thing Hugging Face's GPT-2 class lacks."""
    model = gpt2_shaped_checkpoint(tmp_path / "m.pt", small_tokenizer(), **{**GPT2_SWITCHES, "positional": "rope"})
    said = export_model(tmp_path / "m.pt", tmp_path / "out")
    assert "own layout" in said and said.endswith("cannot hold this model's rotary positions (GPT-2 adds a learned "
                                                  "table; its attention has no place to turn q and k)")
    after = load_for_inference(tmp_path / "out")
    idx = torch.randint(0, model.vocab_size, (2, 20))
    with torch.no_grad():
        assert torch.equal(model(idx)[0], after.model(idx)[0])
    assert after.cfg.model.positional == "rope"


def test_export_command_writes_its_folder_again_but_never_into_a_users(tmp_path, trained_run, capsys):
    out = tmp_path / "out"
    assert export.main([str(trained_run / "best.pt"), str(out)]) == 0
    assert "own layout" in capsys.readouterr().out
    assert export.main([str(trained_run / "best.pt"), str(out)]) == 0         # its own earlier export: replaced
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert export.main([str(trained_run / "best.pt"), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "notes.txt" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "config.json").write_text("{}")
    assert export.main([str(trained_run / "best.pt"), str(tmp_path / "user")]) == 2
    assert (tmp_path / "user" / "config.json").read_text() == "{}"


def test_generate_reads_a_folder_and_fine_tuning_saves_our_checkpoint(tmp_path, capsys):
    hf_folder(tmp_path / "gpt2")
    assert generate.main(["--checkpoint", str(tmp_path / "gpt2"), "--prompt", "The dog", "--temperature", "0",
                          "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("The dog")
    corpus = tmp_path / "my.txt"
    corpus.write_text(TEXT * 20, encoding="utf-8")
    assert train.main(["--init-from", str(tmp_path / "gpt2"), "--data", str(corpus), "--no-progress",
                       "--set", f"train.out_dir={tmp_path / 'run'}", "train.max_iters=2", "train.eval_interval=2",
                       "train.eval_iters=1", "train.batch_size=2", "train.lr=1e-4", "train.device=cpu",
                       "train.dtype=float32", f"data.cache_dir={tmp_path / 'cache'}"]) == 0
    tuned = load_for_inference(tmp_path / "run" / "best.pt")
    assert tuned.cfg.model.positional == "learned" and tuned.tokenizer.kind == "gpt2-bpe"
    assert tuned.tokenizer.to_dict() == small_tokenizer().to_dict()


def test_the_tokenizer_reads_gpt2s_files_by_its_rules(tmp_path):
    """Merges apply in the order merges.txt lists them; the text comes back byte for byte; a space is 'Ġ'."""
    alphabet = gpt2_byte_alphabet()
    assert alphabet[ord(" ")] == "Ġ" and alphabet[ord("\n")] == "Ċ" and alphabet[ord("A")] == "A"
    assert len(set(alphabet.values())) == 256
    bytes_in_order = sorted(range(256), key=lambda b: ord(alphabet[b]))
    vocab = {alphabet[b]: i for i, b in enumerate(bytes_in_order)}
    merges = ["#version: 0.2", "Ġ t", "h e", "Ġt he", "Ġ c", "a t"]
    for line in merges[1:]:
        vocab[line.replace(" ", "")] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tok = GPT2Tokenizer.from_vocab_and_merges(vocab, "\n".join(merges) + "\n")
    ids = tok.encode(" the cat")
    assert tok.token_strings(ids) == [" the", " c", "at"] and tok.decode(ids) == " the cat"
    assert tok.vocab_size == 262 and tok.decode([261]) == "<|endoftext|>"
    text = "héllo\twörld 🤖\n\n  x"
    assert tok.decode(tok.encode(text)) == text
    assert tok.vocab_and_merges() == (vocab, "\n".join(merges) + "\n")


def test_the_tokenizer_equals_tiktokens_gpt2_encoding():
    from data.tokenization import NamedTiktokenTokenizer
    from errors import UserError

    try:
        reference = NamedTiktokenTokenizer("gpt2")
    except UserError:
        pytest.skip("tiktoken's gpt2 encoding is not cached on this machine (it downloads it on first use)")
    ranks = reference.encoding._mergeable_ranks
    vocab, merges = GPT2Tokenizer(ranks, {"<|endoftext|>": 50256}).vocab_and_merges()
    ours = GPT2Tokenizer.from_vocab_and_merges(vocab, merges)
    samples = (TEXT, "I'll be there, won't you? 3.14159 ≈ π\n\n\tdef f(x):  return x", "日本語 🤖 Ünïcödé")
    for text in samples:
        assert ours.encode(text) == reference.encode(text)


# ---- bad input: one line, exit 2 ------------------------------------------------------------------------------

def damage(folder: Path, how: str) -> str:
    """Spoil a good folder ``how``; returns part of the error it must give."""
    if how == "corrupt weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
        return "model.safetensors is damaged or not a safetensors file"
    if how == "random bytes for weights":
        (folder / "model.safetensors").write_bytes(b"\x00\x01" * 100)
        return "model.safetensors is damaged or not a safetensors file"
    if how == "no weights, a pickle instead":
        (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
        return "has no model.safetensors (only safetensors are read, never pickled files such as pytorch_model.bin)"
    if how == "no merges.txt":
        (folder / "merges.txt").unlink()
        return "has vocab.json but no merges.txt"
    if how == "no tokenizer":
        (folder / "merges.txt").unlink()
        (folder / "vocab.json").unlink()
        return "has no tokenizer: GPT-2's is vocab.json and merges.txt"
    if how == "merges out of order":
        lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        lines[1], lines[2] = lines[2], lines[1]
        (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return "merges.txt line 3 makes"
    if how == "config not JSON":
        (folder / "config.json").write_text("{not json", encoding="utf-8")
        return "config.json is not valid JSON"
    if how == "another architecture":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
        return "config.json describes model_type 'llama'; only GPT-2's layout ('gpt2')"
    if how == "settings this model lacks":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "activation_function": "relu",
                                                        "scale_attn_by_inverse_layer_idx": True}))
        return "activation_function 'relu' (this model has gelu and its tanh form, gelu_new); " \
               "scale_attn_by_inverse_layer_idx is True, this model has False"
    if how == "config says 3 blocks":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "n_layer": 3}))
        return "model.safetensors: its tensors are not GPT-2's with 3 blocks (missing h.2.ln_1.weight"
    if how == "a tensor of another shape":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "n_positions": 64}))
        return "does not fit the model its config describes"
    if how == "vocab size differs":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 50304}))
        return "config.json's vocab_size is 50304 but its tokenizer has"
    if how == "untied head":
        from safetensors.torch import load_file, save_file
        tensors = load_file(folder / "model.safetensors")
        tensors["lm_head.weight"] = torch.randn_like(tensors["transformer.wte.weight"])
        save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
        return "its lm_head.weight differs from wte.weight"
    raise ValueError(how)


BAD = ["corrupt weights", "random bytes for weights", "no weights, a pickle instead", "no merges.txt", "no tokenizer",
       "merges out of order", "config not JSON", "another architecture", "settings this model lacks",
       "config says 3 blocks", "a tensor of another shape", "vocab size differs", "untied head"]


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gpt2")
    hf_folder(folder)
    return folder


@pytest.mark.parametrize("how", BAD)
@pytest.mark.parametrize("command", ["generate", "train --init-from"])
def test_a_bad_model_folder_is_one_line_exit_2(tmp_path, good_folder, capsys, how, command):
    folder = tmp_path / "model"
    shutil.copytree(good_folder, folder)
    message = damage(folder, how)
    if command == "generate":
        code = generate.main(["--checkpoint", str(folder), "--prompt", "The dog"])
    else:
        corpus = tmp_path / "my.txt"
        corpus.write_text(TEXT * 20, encoding="utf-8")
        code = train.main(["--init-from", str(folder), "--data", str(corpus), "--no-progress",
                           "--set", f"train.out_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert message in err and str(folder) in err, err
    assert not (tmp_path / "run").exists()


def test_an_uncached_hub_model_offline_says_what_to_download_and_where(tmp_path):
    result = run_cli("generate.py", "--checkpoint", "hf:openai-community/gpt2", "--prompt", "Hello",
                     env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for part in ("hf:openai-community/gpt2 is not in the Hugging Face cache", "model.safetensors",
                 "about 550 MB", str(tmp_path / "hf" / "hub")):
        assert part in result.stderr, result.stderr
