"""A NaN or infinite loss stops training with a one-line message and leaves the last good checkpoints as they were.

The fault is injected honestly: ``GPT.forward`` really returns a non-finite loss (in training or in evaluation
mode), backward really runs on it, and the trainer has to notice before it saves anything.
"""
import shutil

import pytest

import train
from model.gpt import GPT
from training.run_dir import read_metrics


def poison_forward(monkeypatch, value: float, training: bool):
    """From now on, every forward pass in training (or eval) mode returns its loss times ``value``."""
    forward = GPT.forward

    def poisoned(self, idx, targets=None):
        logits, loss = forward(self, idx, targets)
        if loss is not None and self.training == training:
            loss = loss * value
        return logits, loss

    monkeypatch.setattr(GPT, "forward", poisoned)


@pytest.mark.parametrize("value, training, message", [
    (float("nan"), True, "loss became nan at step 13"),
    (float("inf"), True, "loss became inf at step 13"),
    (float("nan"), False, "train loss became nan at step 16"),        # finite steps, then a NaN evaluation
])
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoints(tmp_path, trained_run, capsys, monkeypatch,
                                                                   value, training, message):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {name: (run / name).read_bytes() for name in ("last.pt", "best.pt")}
    poison_forward(monkeypatch, value, training)
    code = train.main(["--no-progress", "--resume", str(run), "--set", "train.max_iters=16"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert message in err and f"the last good checkpoints in {run} are untouched" in err
    assert {name: (run / name).read_bytes() for name in before} == before
    assert max(m["iter"] for m in read_metrics(run / "metrics.jsonl")) == (12 if training else 16)


def test_weights_broken_by_the_last_update_are_never_saved(tmp_path, trained_run, capsys, monkeypatch):
    """Ctrl-C right after an update that broke the weights (its own loss was still finite): nothing is saved."""
    from training import loop

    class StopNow(loop.StopRequest):
        requested = property(lambda self: True, lambda self, value: None)

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {name: (run / name).read_bytes() for name in ("last.pt", "best.pt")}
    forward = GPT.forward

    def breaking(self, idx, targets=None):
        out = forward(self, idx, targets)
        if self.training:
            self.norm.weight.data.fill_(float("nan"))       # behind autograd's back, as a bad update would
        return out

    monkeypatch.setattr(GPT, "forward", breaking)
    monkeypatch.setattr(loop, "StopRequest", StopNow)
    code = train.main(["--no-progress", "--resume", str(run), "--set", "train.max_iters=16"])
    err = capsys.readouterr().err
    assert code == 2 and "a weight became nan at step 13" in err, err
    assert {name: (run / name).read_bytes() for name in before} == before
