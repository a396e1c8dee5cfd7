"""A golden run: fixed seed, a few steps of a tiny model on the CPU in fp32, losses equal to those recorded before
the training loop is redesigned (2026-11-26, torch 2.13.0). Dropout and gradient accumulation are on, so the
order of random draws is pinned too. The tolerance allows for another CPU's last bits, not for a changed step."""
import pytest

from core.config import load_config
from tests.conftest import tiny_overrides
from training.run_dir import read_metrics
from training.trainer import train

GOLDEN = {"losses": [3.184541, 3.160272, 3.155926, 3.141587, 3.13183, 3.13031, 3.097872, 3.066274, 3.121045, 3.053286,
                     3.112348, 3.110474],
          "evals": [3.124672, 3.117013, 3.074713, 3.060437, 3.059021, 3.042764]}  # train, val at steps 4, 8, 12


def test_a_fixed_run_reproduces_the_recorded_losses(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The dog chased the cat. Who chased? the dog.\n2+2=4\nHe broke the glass.\n" * 30,
                      encoding="utf-8")
    cfg = load_config(None, tiny_overrides(tmp_path / "run", corpus, **{"model.dropout": 0.1, "train.grad_accum": 2}))
    result = train(cfg, progress=False, log=lambda *_: None)
    losses = [m["loss"] for m in read_metrics(result.run_dir / "metrics.jsonl") if "loss" in m]
    evals = [loss for e in result.evals for loss in (e["train"], e["val"])]
    assert losses == pytest.approx(GOLDEN["losses"], abs=1e-4)
    assert evals == pytest.approx(GOLDEN["evals"], abs=1e-4)


# Logits of two seeded models at their initial weights, recorded before GPT-2's switches (learned positions, biases,
# tanh GELU, embed_scale) were added to ModelConfig (2026-12-07, torch 2.13.0): with the defaults every existing
# checkpoint has the same parameter names and computes the same logits.
GOLDEN_LOGITS = {"sinusoidal": ([0.06958, 0.011943, 0.153114, 0.18241, 0.164448, 0.103798], 37.075),
                 "none": ([0.1399, 0.113461, 0.072665, 0.676294, -0.099207, -0.234309], 39.3143)}
GOLDEN_NAMES = ["blocks.0.attn.proj.weight", "blocks.0.attn.qkv.weight", "blocks.0.ffn.down.weight",
                "blocks.0.ffn.up.weight", "blocks.0.ln1.bias", "blocks.0.ln1.weight", "blocks.0.ln2.bias",
                "blocks.0.ln2.weight", "embed.token.weight", "lm_head.weight", "norm.bias", "norm.weight"]


@pytest.mark.parametrize("positional", list(GOLDEN_LOGITS))
def test_default_models_compute_the_recorded_logits(positional):
    import torch

    from model import GPT, ModelConfig

    torch.manual_seed(2024)
    model = GPT(ModelConfig(block_size=16, n_layer=2, n_head=2, n_embd=32, positional=positional), 40).eval()
    with torch.no_grad():
        logits, _ = model(torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3]]))
    first, total = GOLDEN_LOGITS[positional]
    assert logits[0, -1, :6].tolist() == pytest.approx(first, abs=1e-5)
    assert logits.abs().sum().item() == pytest.approx(total, abs=1e-3)
    assert [n for n in sorted(model.state_dict()) if not n.startswith("blocks.1.")] == GOLDEN_NAMES
