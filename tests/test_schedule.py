"""The learning-rate schedule at its ends and joints, against its formula."""
import math

import pytest

from core.config import TrainConfig
from training.schedule import lr_at

CFG = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=110)


def test_warm_up_starts_above_zero_and_rises_linearly():
    assert lr_at(0, CFG) == pytest.approx(1e-3 / 11)                      # step 0 already learns
    steps = [lr_at(s, CFG) for s in range(10)]
    assert all(b > a for a, b in zip(steps, steps[1:]))
    assert lr_at(9, CFG) == pytest.approx(1e-3 * 10 / 11)


def test_decay_starts_at_the_peak_and_ends_at_min_lr():
    assert lr_at(10, CFG) == pytest.approx(1e-3)                          # first step after warm-up: the peak
    assert lr_at(60, CFG) == pytest.approx((1e-3 + 1e-4) / 2)             # half way: cos(π/2) = 0
    assert lr_at(110, CFG) == pytest.approx(1e-4)                         # the last step: min_lr
    assert lr_at(500, CFG) == pytest.approx(1e-4)                         # past the end (a resume with more steps)
    decay = [lr_at(s, CFG) for s in range(10, 111)]
    assert all(b <= a for a, b in zip(decay, decay[1:]))


def test_no_warm_up_and_a_schedule_of_one_step():
    no_warm = TrainConfig(lr=2e-3, min_lr=2e-4, warmup_iters=0, max_iters=4)
    assert lr_at(0, no_warm) == pytest.approx(2e-3)
    assert lr_at(2, no_warm) == pytest.approx(2e-4 + 0.9e-3 * (1 + math.cos(math.pi / 2)))
    one = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=1, max_iters=1)   # decay of length max(1, 0) = 1
    assert lr_at(0, one) == pytest.approx(5e-4) and lr_at(1, one) == pytest.approx(1e-3)
