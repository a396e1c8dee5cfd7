"""The learning rate at each step: linear warm-up, then cosine decay to min_lr.

    warm-up (step < W):   lr · (step + 1) / (W + 1)                  never 0, so step 0 already learns
    decay   (W ≤ step):   min_lr + ½ (lr − min_lr) (1 + cos(π · (step − W) / (max_iters − W)))

Warm-up keeps the first, noisy Adam updates small; the decay lets the model settle into a minimum at the end.
"""
import math

from core.config import TrainConfig


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / (cfg.warmup_iters + 1)
    decay_steps = max(1, cfg.max_iters - cfg.warmup_iters)
    progress = min(1.0, (step - cfg.warmup_iters) / decay_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))
