import math

import pytest
import torch

from model.sampling import (entropy_bits, filtered_probs, inverse_temperature, next_token_probs, race,
                            sample_next_token)

LOGITS = torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]])


def test_temperature_zero_is_argmax():
    assert sample_next_token(LOGITS, temperature=0).item() == 0
    assert torch.equal(next_token_probs(LOGITS, 0), torch.tensor([[1.0, 0, 0, 0, 0]]))


@pytest.mark.parametrize("temperature", [1e-45, 5e-324, 1e-38, 1e-30])
def test_a_tiny_temperature_is_all_but_greedy_not_a_crash(temperature):
    probs = next_token_probs(LOGITS * 100, temperature)
    assert torch.equal(probs, torch.tensor([[1.0, 0, 0, 0, 0]]))
    assert sample_next_token(LOGITS, temperature, top_k=3, top_p=0.5, generator=torch.Generator().manual_seed(0)) == 0


def test_probabilities_sum_to_one_and_temperature_sharpens_or_flattens():
    entropies = []
    for t in (0.5, 1.0, 2.0):
        p = next_token_probs(LOGITS, t)
        assert torch.allclose(p.sum(), torch.tensor(1.0))
        entropies.append(-(p * p.log()).sum().item())
    assert entropies[0] < entropies[1] < entropies[2]
    assert torch.allclose(next_token_probs(LOGITS, 1.0), torch.softmax(LOGITS, -1))


def test_top_k_and_top_p_restrict_the_candidates():
    assert (next_token_probs(LOGITS, 1.0, top_k=2)[0] > 0).tolist() == [True, True, False, False, False]
    assert (next_token_probs(LOGITS, 1.0, top_k=99)[0] > 0).all()          # clamped to the vocabulary
    p = torch.softmax(LOGITS, -1)[0]
    nucleus = next_token_probs(LOGITS, 1.0, top_p=float(p[0] + 0.01))[0]
    assert (nucleus > 0).tolist() == [True, True, False, False, False]
    assert torch.allclose(nucleus.sum(), torch.tensor(1.0))
    assert (next_token_probs(LOGITS, 1.0, top_p=0.01)[0] > 0).sum() == 1  # the top token always stays


def test_seeded_sampling_is_reproducible():
    logits = torch.randn(3, 40)
    draws = [sample_next_token(logits, 1.0, generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(*draws)


def test_the_exponential_race_draws_each_token_with_its_probability():
    """200,000 draws from p = (0.5, 0.3, 0.15, 0.05, 0): each frequency within 4.5 standard errors of its p, and a
    token of probability 0 never drawn, also where noise of exactly 0 makes a likely token's clock ring late."""
    n, probs = 200_000, torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0])
    tokens = race(probs.expand(n, -1), torch.rand(n, 5, generator=torch.Generator().manual_seed(1)))
    counts = torch.bincount(tokens[:, 0], minlength=5).double() / n
    stderr = (probs * (1 - probs) / n).sqrt().double()
    assert ((counts - probs.double()).abs() <= 4.5 * stderr).all() and counts[4] == 0
    assert race(probs.unsqueeze(0), torch.tensor([[0.0, 0.0, 0.0, 0.5, 0.0]])).item() == 3
    assert race(torch.tensor([[0.0, 0.0, 1.0, 0.0]]), torch.tensor([[0.3, 0.5, 0.0, 0.7]])).item() == 2


def test_temperature_and_top_p_as_tensors_give_the_same_probabilities():
    """A recorded decode step reads τ and p from tensors: the same numbers, bit for bit, as from floats."""
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    for t, p in [(0.7, 0.9), (1.3, 0.5), (1.0, None)]:
        as_floats = next_token_probs(logits, t, top_p=p)
        as_tensors = filtered_probs(logits, torch.tensor(inverse_temperature(t)),
                                    top_p=None if p is None else torch.tensor(p))
        assert torch.equal(as_floats, as_tensors)


@pytest.mark.parametrize("kwargs", [{"temperature": -0.1}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}])
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        sample_next_token(LOGITS, **{"temperature": 1.0, **kwargs})


def test_entropy_is_zero_for_certainty_and_log2_v_for_uniform():
    assert entropy_bits(torch.tensor([0.0, 1.0, 0.0])) == 0
    assert entropy_bits(torch.full((64,), 1 / 64)) == pytest.approx(math.log2(64))
