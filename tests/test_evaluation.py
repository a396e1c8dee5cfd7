"""Held-out loss: the sampled evaluation, the whole-split score, and stopping at a target only when the whole split
agrees."""
import math
import statistics

import torch
import torch.nn.functional as F

import training.loop
from data.corpus import get_batch
from model.config import ModelConfig
from model.gpt import GPT
from training.evaluation import evaluate, whole_split_loss, sample_near_target
from training.trainer import train

CPU = torch.device("cpu")
TINY_MODEL = ModelConfig(block_size=16, n_layer=2, n_head=2, n_embd=32)


def test_whole_split_loss_scores_every_token_once():
    """Against the definition: each window's targets are the next tokens, every token but the first is a target
    exactly once, and the mean is over tokens (the short last window weighs by its length)."""
    torch.manual_seed(0)
    model = GPT(TINY_MODEL, vocab_size=11).train()
    data = torch.randint(11, (16 * 5 + 8,))                 # 5 whole windows of 16 targets, then 7 more
    got = whole_split_loss(model, data, block_size=16, batch_size=2, device=CPU, dtype=torch.float32)
    assert model.training                                   # put back as it was
    model.eval()
    expected = []
    for start in range(0, len(data) - 1, 16):
        window = data[start : start + 17]
        logits, _ = model(window[:-1].unsqueeze(0))
        expected.append(F.cross_entropy(logits[0], window[1:], reduction="none"))
    expected = torch.cat(expected)
    assert len(expected) == len(data) - 1
    assert math.isclose(got, expected.mean().item(), rel_tol=1e-5)


def test_evaluate_reports_the_sample_mean_and_its_standard_error(tiny_cfg):
    cfg = tiny_cfg(**{"train.eval_iters": 5})
    torch.manual_seed(0)
    model = GPT(cfg.model, vocab_size=40).train()
    data = torch.randint(40, (500,))
    splits = type("Splits", (), {"train": data[:400], "val": data[400:]})
    losses = evaluate(model, splits, cfg, CPU, torch.float32)
    assert model.training
    generator = torch.Generator().manual_seed(cfg.train.seed + 1)           # the documented fixed sample
    model.eval()
    batch_losses = []
    for _ in range(5):
        x, y = get_batch(splits.val, cfg.train.batch_size, cfg.model.block_size, generator)
        batch_losses.append(model(x, y)[1].item())
    assert math.isclose(losses["val"], statistics.mean(batch_losses), rel_tol=1e-6)
    assert math.isclose(losses["val_stderr"], statistics.stdev(batch_losses) / math.sqrt(5), rel_tol=1e-6)
    one = evaluate(model, splits, tiny_cfg(**{"train.eval_iters": 1}), CPU, torch.float32)
    assert one["val_stderr"] == 0.0


def test_whole_split_is_checked_only_near_the_target():
    losses = {"train": 2.0, "val": 1.90, "val_stderr": 0.01}
    assert sample_near_target(losses, 1.88)               # 1.90 - 2 · 0.01 = 1.88
    assert not sample_near_target(losses, 1.87)
    assert sample_near_target({**losses, "val_stderr": 0.0, "val": 1.85}, 1.88)


def test_a_target_stops_the_run_only_when_the_whole_split_reaches_it(tiny_cfg, monkeypatch):
    quiet = {"progress": False, "log": lambda *_: None}
    reached = train(tiny_cfg(**{"train.target_val_loss": 100.0}), **quiet)
    assert reached.target_reached and reached.iter == 4 and 0 < reached.val_whole < 100

    calls = []

    def whole_split_says_no(*args, **kwargs):                # the sample reads below 100, the whole split does not
        calls.append(1)
        return 1e9
    monkeypatch.setattr(training.loop, "whole_split_loss", whole_split_says_no)
    kept_going = train(tiny_cfg(**{"train.target_val_loss": 100.0}), overwrite=True, **quiet)
    assert not kept_going.target_reached and kept_going.iter == 12 and len(calls) == 3     # evals at 4, 8, 12

    calls.clear()
    far = train(tiny_cfg(**{"train.target_val_loss": 1e-3}), overwrite=True, **quiet)
    assert not far.target_reached and far.iter == 12 and not calls   # the sample was never close: no whole check
