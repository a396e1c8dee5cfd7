import math

import torch

from model import GPT, ModelConfig
from model.positional import SinusoidalPositionalEncoding, sinusoidal_table


def test_table_equals_the_papers_formula():
    T, d = 50, 16
    table = sinusoidal_table(T, d)
    for pos in range(T):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert math.isclose(table[pos, 2 * i].item(), math.sin(angle), abs_tol=1e-5)
            assert math.isclose(table[pos, 2 * i + 1].item(), math.cos(angle), abs_tol=1e-5)


def test_every_position_is_distinct_and_bounded():
    table = sinusoidal_table(256, 64)
    assert table.abs().max() <= 1.0
    distances = torch.cdist(table, table) + torch.eye(256) * 1e9
    assert distances.min() > 0.1


def test_fixed_buffer_no_parameters_not_in_checkpoint():
    pe = SinusoidalPositionalEncoding(32, 8)
    assert list(pe.parameters()) == []
    assert "table" not in pe.state_dict()
    assert torch.equal(pe(4, start=3), sinusoidal_table(32, 8)[3:7])


def test_word_order_changes_the_input_only_with_positions():
    """Same tokens, different order: with PE the sets of vectors differ; without PE they are the same set."""
    idx = torch.tensor([[1, 2, 3, 4]])
    swapped = torch.tensor([[1, 4, 3, 2]])
    for positional, order_visible in (("sinusoidal", True), ("none", False)):
        model = GPT(ModelConfig(block_size=8, n_layer=1, n_head=2, n_embd=16, positional=positional), 8)
        a = model.embed(idx)[0]
        b = model.embed(swapped)[0][[0, 3, 2, 1]]     # put the swapped tokens back in place
        assert torch.allclose(a, b) != order_visible


def test_learned_table_is_a_parameter_saved_in_checkpoints_and_read_by_position():
    from model.positional import LearnedPositionalEmbedding

    pe = LearnedPositionalEmbedding(16, 4)
    with torch.no_grad():
        pe.table.copy_(torch.arange(64, dtype=torch.float32).view(16, 4))
    assert [name for name, _ in pe.named_parameters()] == ["table"] and "table" in pe.state_dict()
    assert torch.equal(pe(3, start=5), pe.table[5:8])
    assert torch.equal(pe(3, start=torch.tensor(5)), pe.table[5:8])                     # a captured decode step


def test_decoding_with_learned_positions_equals_the_whole_window():
    cfg = ModelConfig(block_size=12, n_layer=2, n_head=2, n_embd=16, positional="learned", bias=True)
    model = GPT(cfg, 11).eval()
    idx = torch.randint(0, 11, (2, 9))
    with torch.no_grad():
        full, _ = model(idx)
        caches = model.new_caches(2)
        prefix, _ = model(idx[:, :5], caches=caches)
        steps = [model(idx[:, t : t + 1], caches=caches, start=t)[0] for t in range(5, 9)]
    assert torch.allclose(torch.cat([prefix, *steps], dim=1), full, atol=1e-5)


def test_a_model_refuses_positions_past_its_context_whatever_its_encoding():
    """Its tables and caches have block_size rows: more positions are refused in one line, not broadcast or
    indexed past the end (the position lesson rebuilds a model with a longer context to read longer texts)."""
    import pytest
    for positional in ("sinusoidal", "learned", "rope", "none"):
        model = GPT(ModelConfig(block_size=8, n_layer=1, n_head=2, n_embd=16, positional=positional), 8)
        model(torch.zeros(1, 8, dtype=torch.long))
        with pytest.raises(ValueError, match=r"positions 0\.\.8 run past this model's context of 8 tokens"):
            model(torch.zeros(1, 9, dtype=torch.long))
        with pytest.raises(ValueError, match=r"positions 5\.\.8 run past"):
            model(torch.zeros(1, 4, dtype=torch.long), start=5)
