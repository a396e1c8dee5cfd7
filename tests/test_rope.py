"""RoPE: the rotation is the formula, it makes attention scores depend on i − j only, and a RoPE model computes the
same thing through every path (the recorder's, a single head's, at a shifted start)."""
import math

import pytest
import torch
import torch.nn.functional as F

from model import GPT, ModelConfig
from model.attention import SelfAttention
from model.recorder import Recorder
from model.rope import RotaryEmbedding, rope_angles, rotate_pairs

CFG = ModelConfig(block_size=24, n_layer=2, n_head=2, n_embd=32, positional="rope")


def test_angles_and_rotation_are_the_formula():
    T, hs = 20, 8
    cos, sin = rope_angles(T, hs)
    x = torch.randn(T, hs)
    turned = rotate_pairs(x, cos, sin)
    for p in range(T):
        for i in range(hs // 2):
            angle = p * 10000 ** (-2 * i / hs)
            assert math.isclose(cos[p, i].item(), math.cos(angle), abs_tol=1e-5)
            a, b = x[p, 2 * i].item(), x[p, 2 * i + 1].item()
            assert math.isclose(turned[p, 2 * i].item(), a * math.cos(angle) - b * math.sin(angle), abs_tol=1e-5)
            assert math.isclose(turned[p, 2 * i + 1].item(), a * math.sin(angle) + b * math.cos(angle), abs_tol=1e-5)
    assert torch.allclose(turned.norm(dim=-1), x.norm(dim=-1), atol=1e-5)       # a rotation keeps lengths
    assert torch.equal(turned[0], x[0])                                           # position 0: angle 0


def test_the_score_of_positions_i_and_j_depends_only_on_i_minus_j():
    """Rotate the same queries and keys as if they stood `shift` places later: every score q_i·k_j is unchanged.
    Without the rotation's relative property (turning only the keys, say) the scores change."""
    rope = RotaryEmbedding(block_size=64, head_size=16)
    q, k = torch.randn(2, 3, 10, 16), torch.randn(2, 3, 10, 16)                   # (B, nh, T, hs)
    scores = [qr @ kr.transpose(-2, -1) for qr, kr in (rope(q, k, start) for start in (0, 7, 54))]
    for shifted in scores[1:]:
        assert torch.allclose(shifted, scores[0], atol=1e-4)
    assert not torch.allclose(scores[0], q @ k.transpose(-2, -1), atol=1e-2)    # the rotation does change them
    moved_keys = rope(k, k, 7)[1]
    assert not torch.allclose(rope(q, k, 0)[0] @ moved_keys.transpose(-2, -1), scores[0], atol=1e-2)
    assert torch.equal(rope(q, k, torch.tensor(7))[0], rope(q, k, 7)[0])          # a captured decode step


@pytest.mark.parametrize("positional, shift_invariant", [("rope", True), ("sinusoidal", False)])
def test_a_rope_model_gives_the_same_logits_wherever_the_text_starts(positional, shift_invariant):
    """Positions only as offsets: the whole text moved 9 places later gives the same logits with RoPE (and
    different ones with absolute positions)."""
    torch.manual_seed(1)
    model = GPT(ModelConfig(**{**CFG.__dict__, "positional": positional}), vocab_size=19).eval()
    idx = torch.randint(0, 19, (2, 12))
    with torch.no_grad():
        same = torch.allclose(model(idx)[0], model(idx, start=9)[0], atol=1e-5)
    assert same == shift_invariant


def test_the_recorder_sees_the_rotated_queries_and_keys_that_make_the_weights():
    torch.manual_seed(2)
    model = GPT(CFG, vocab_size=19).eval()
    idx = torch.randint(0, 19, (1, 10))
    records = [Recorder(inside=block) for block in range(CFG.n_layer)]
    with torch.no_grad():
        for record in records:
            logits, _ = model(idx, record=record)
            assert torch.allclose(logits, model(idx)[0], atol=1e-5)               # the fused path computes the same
        attn = model.blocks[0].attn
        x = model.blocks[0].ln1(records[0]["inputs"][0])
        q, k, _ = attn.qkv(x).split(CFG.n_embd, dim=2)
        q, k = (t.view(1, 10, CFG.n_head, CFG.head_size).transpose(1, 2) for t in (q, k))   # (1, nh, T, hs)
    assert torch.allclose(records[0]["q"][0], attn.rotary(q, k)[0], atol=1e-6)
    assert torch.allclose(records[0]["k"][0], attn.rotary(q, k)[1], atol=1e-6)
    assert not torch.allclose(records[0]["q"][0], q, atol=1e-3)
    for block, record in enumerate(records):
        queries, keys, weights = record["q"][0], record["k"][0], record["attention"][block]
        scores = queries @ keys.transpose(-2, -1) / math.sqrt(CFG.head_size)
        scores = scores.masked_fill(torch.ones(10, 10, dtype=torch.bool).triu(1), float("-inf"))
        assert torch.allclose(F.softmax(scores, dim=-1), weights, atol=1e-6)


def test_a_single_head_of_a_rope_model_computes_what_it_does_inside():
    torch.manual_seed(3)
    model = GPT(CFG, vocab_size=19).eval()
    record = Recorder()
    with torch.no_grad():
        model(torch.randint(0, 19, (1, 9)), record=record)
        x = model.blocks[1].ln1(record["residual"][0])                            # block 1 reads block 0's output
        _, weights = SelfAttention.from_head(model.blocks[1].attn, 1)(x, return_weights=True)
    assert torch.allclose(weights, record["attention"][1][:, 1], atol=1e-6)
