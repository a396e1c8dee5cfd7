import torch
import torch.nn.functional as F

from model.attention import MultiHeadAttention, SelfAttention, causal_attention, fused_causal_attention
from model.config import ModelConfig
from model.gpt import GPT
from model.recorder import Recorder

CFG = ModelConfig(block_size=16, n_layer=2, n_head=4, n_embd=32)


def with_weights(mha: MultiHeadAttention, x: torch.Tensor):
    """The output and the attention weights (B, nh, T, T) that a recorder keeps."""
    record = Recorder()
    return mha(x, record=record), record["attention"][0]


def test_multi_head_equals_torch_multiheadattention_with_copied_weights():
    mha = MultiHeadAttention(CFG).eval()
    ref = torch.nn.MultiheadAttention(CFG.n_embd, CFG.n_head, bias=False, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(mha.qkv.weight)          # rows: q, k, v, as in our fused projection
        ref.out_proj.weight.copy_(mha.proj.weight)
    x = torch.randn(3, 10, CFG.n_embd)
    mask = torch.ones(10, 10, dtype=torch.bool).triu(1)   # True = may not attend
    expected, expected_weights = ref(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
    out, weights = with_weights(mha, x)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(weights, expected_weights, atol=1e-6)
    assert torch.allclose(mha(x), expected, atol=1e-5)   # the fast SDPA path too


def test_a_head_taken_out_of_multi_head_attention_gives_that_heads_weights():
    torch.manual_seed(0)
    mha = MultiHeadAttention(CFG).eval()
    x = torch.randn(2, 12, CFG.n_embd)
    _, weights = with_weights(mha, x)                                            # (B, nh, T, T)
    for h in range(CFG.n_head):
        _, single = SelfAttention.from_head(mha, h)(x, return_weights=True)
        assert torch.allclose(single, weights[:, h], atol=1e-6)


def test_explicit_single_head_equals_sdpa():
    head = SelfAttention(CFG.n_embd, 8).eval()
    x = torch.randn(2, 12, CFG.n_embd)
    out, weights = head(x, return_weights=True)
    q, k, v = head.query(x), head.key(x), head.value(x)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 12))
    assert torch.all(weights.triu(1) == 0)               # nothing from the future


def test_explicit_and_fast_multi_head_paths_agree():
    mha = MultiHeadAttention(CFG).eval()
    x = torch.randn(2, 9, CFG.n_embd)
    assert torch.allclose(mha(x), with_weights(mha, x)[0], atol=1e-6)


def test_shifted_mask_for_queries_after_a_cached_prefix():
    q, k, v = torch.randn(1, 1, 3, 4), torch.randn(1, 1, 7, 4), torch.randn(1, 1, 7, 4)
    full_q = torch.cat([torch.randn(1, 1, 4, 4), q], dim=2)
    full_out, _ = causal_attention(full_q, k, v)
    out, weights = causal_attention(q, k, v)
    assert torch.allclose(out, full_out[:, :, 4:], atol=1e-6)
    assert weights[0, 0, 0, 5:].sum() == 0 and weights[0, 0, 2, :].min() > 0


def test_causality_future_tokens_do_not_change_past_logits():
    model = GPT(CFG, vocab_size=20).eval()
    idx = torch.randint(0, 20, (1, 12))
    changed = idx.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 20
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


def test_bf16_autocast_on_cpu_runs_the_fused_attention_in_fp32():
    """Under CPU bf16 autocast the fused path casts q, k, v up (its bf16 backward is slow there): the attention
    output and the gradients match the fp32 model within bf16 rounding, and the block's output stays bf16."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(CFG)
    x = torch.randn(2, 12, CFG.n_embd, requires_grad=True)
    expected = mha(x)
    expected_grad, = torch.autograd.grad(expected.square().sum(), x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mha(x)
    assert out.dtype == torch.bfloat16
    grad, = torch.autograd.grad(out.float().square().sum(), x)
    assert torch.allclose(out.float(), expected, atol=3e-2, rtol=3e-2)
    assert torch.allclose(grad, expected_grad, atol=5e-2, rtol=5e-2)
    q = k = v = torch.randn(2, 4, 12, 8).bfloat16()
    assert torch.equal(fused_causal_attention(q, k, v, 0.0),
                       F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True).bfloat16())
