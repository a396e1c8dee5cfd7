"""How well the model predicts text it did not train on: a quick sample during training, the whole split when a
decision rests on it.

    loss = mean over the predicted tokens of −log p(the true next token)

``evaluate`` scores the same ``eval_iters`` random batches of each split every time (a fixed generator), so two
evaluations differ only because the model changed. It is cheap but it is a sample: on tinyshakespeare, 10 batches
of 12 × 64 tokens read within about ±0.02 of the whole val split. ``whole_split_loss`` scores every token once.
A run with ``train.target_val_loss`` stops only when the *whole* val split is at or below the target, and pays for
that check only when the sample says the target may be reached (``sample_near_target``).
"""
import math

import torch

from core.config import Config
from core.device import autocast
from core.fault_injection import kill_point
from data.corpus import get_batch


class EvaluationStopped(Exception):
    """Ctrl-C or SIGTERM arrived during an evaluation: it is abandoned between two batches instead of finished."""


def never() -> bool:
    return False


@torch.no_grad()
def evaluate(model: torch.nn.Module, splits, cfg: Config, device, dtype, stop=never) -> dict[str, float]:
    """Mean loss of each split's sample, and the standard error of the val mean (the spread of its batch losses
    ÷ √eval_iters; 0 with a single batch, which gives no spread to measure). Restores train mode. Raises
    ``EvaluationStopped`` as soon as ``stop()`` is true, so that a stop request never waits for thousands of
    batches."""
    was_training = model.training
    model.eval()
    losses = {}
    for name, data in (("train", splits.train), ("val", splits.val)):
        generator = torch.Generator().manual_seed(cfg.train.seed + 1)
        batch_losses = []
        for _ in range(cfg.train.eval_iters):
            if stop():
                model.train(was_training)
                raise EvaluationStopped
            x, y = get_batch(data, cfg.train.batch_size, cfg.model.block_size, generator)
            with autocast(device, dtype):
                _, loss = model(x, y)
            batch_losses.append(loss)
        batch_losses = torch.stack(batch_losses).tolist()           # one read-back per split, not per batch
        losses[name] = mean = sum(batch_losses) / len(batch_losses)
        if name == "val":
            n = len(batch_losses)
            variance = sum((loss - mean) ** 2 for loss in batch_losses) / (n - 1) if n > 1 else 0.0  # NaN stays NaN
            losses["val_stderr"] = math.sqrt(variance / n)
        kill_point("eval")
    model.train(was_training)
    return losses


def sample_near_target(losses: dict[str, float], target: float) -> bool:
    """The sample's val loss is within two standard errors of the target (or below it)."""
    return losses["val"] - 2 * losses["val_stderr"] <= target


@torch.no_grad()
def whole_split_loss(model: torch.nn.Module, data: torch.Tensor, block_size: int, batch_size: int, device,
                     dtype, stop=never) -> float:
    """Mean next-token loss over every token of ``data`` but the first: consecutive, non-overlapping windows of
    ``block_size`` targets (the last one shorter), each token predicted from those before it in its window.
    Restores train mode; ``stop`` as in ``evaluate``."""
    was_training = model.training
    model.eval()
    n_targets = len(data) - 1
    n_windows = n_targets // block_size
    offsets = torch.arange(block_size + 1, device=data.device)
    batches = [data[(torch.arange(first, min(first + batch_size, n_windows), device=data.device) * block_size)
                    .unsqueeze(1) + offsets]
               for first in range(0, n_windows, batch_size)]                          # each (B, T + 1)
    if n_targets % block_size:
        batches.append(data[n_windows * block_size :].unsqueeze(0))                  # (1, rest + 1)
    total = torch.zeros((), dtype=torch.float64, device=device)
    for windows in batches:
        if stop():
            model.train(was_training)
            raise EvaluationStopped
        x, y = windows[:, :-1].to(device).long(), windows[:, 1:].to(device).long()
        with autocast(device, dtype):
            _, loss = model(x, y)
        total += loss.double() * y.numel()                      # summed on the device, read back once
    model.train(was_training)
    return total.item() / n_targets
