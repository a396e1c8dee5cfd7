import math

import torch

from model import GPT, ModelConfig

CFG = ModelConfig(block_size=16, n_layer=2, n_head=2, n_embd=32)


def test_shapes_and_initial_loss_near_uniform():
    model = GPT(CFG, vocab_size=50)
    idx = torch.randint(0, 50, (4, 16))
    logits, loss = model(idx, torch.randint(0, 50, (4, 16)))
    assert logits.shape == (4, 16, 50)
    assert abs(loss.item() - math.log(50)) < 0.3
    assert model(idx)[1] is None


def test_last_only_is_the_full_passs_last_position():
    model = GPT(CFG, vocab_size=50).eval()
    idx = torch.randint(0, 50, (3, 11))
    with torch.no_grad():
        full, _ = model(idx)
        last, _ = model(idx, last_only=True)
    assert last.shape == (3, 1, 50)
    assert torch.allclose(last, full[:, -1:], atol=1e-6)      # the same row, from a matmul of another shape


def test_lm_head_is_tied_to_the_embedding_and_counted_once():
    model = GPT(CFG, vocab_size=50)
    assert model.lm_head.weight is model.embed.token.weight
    C, L = CFG.n_embd, CFG.n_layer
    per_block = 4 * C + 3 * C * C + C * C + 2 * 4 * C * C      # 2 LayerNorms, qkv, proj, FFN up+down
    assert model.num_params() == 50 * C + L * per_block + 2 * C


def test_parameters_are_counted_from_the_config_before_building():
    for cfg, vocab in ((CFG, 50), (ModelConfig(block_size=8, n_layer=3, n_head=3, n_embd=48, ffn_mult=2), 300),
                       (ModelConfig(n_layer=1, n_head=1, n_embd=2, ffn_mult=1, positional="none"), 1)):
        assert GPT.params_for(cfg, vocab) == GPT(cfg, vocab).num_params()


def test_weight_decay_only_on_matrices():
    model = GPT(CFG, vocab_size=50)
    decay, no_decay = model.configure_optimizer(1e-3, 0.1, (0.9, 0.99), fused=False).param_groups
    assert all(p.dim() == 2 for p in decay["params"]) and decay["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = GPT(CFG, vocab_size=30)
    x, y = torch.randint(0, 30, (4, 16)), torch.randint(0, 30, (4, 16))
    optimizer = model.configure_optimizer(3e-3, 0.0, (0.9, 0.99), fused=False)
    for _ in range(300):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


GPT2_SWITCHES = {"positional": "learned", "bias": True, "activation": "gelu_tanh", "embed_scale": False}


def test_parameters_are_counted_for_every_option():
    """Learned positions and biases are parameters too: params_for must count them as num_params does."""
    import itertools

    for positional, bias, activation, embed_scale in itertools.product(("sinusoidal", "learned", "none"), (False, True),
                                                                        ("gelu", "gelu_tanh"), (True, False)):
        cfg = ModelConfig(block_size=8, n_layer=2, n_head=2, n_embd=16, ffn_mult=3, positional=positional, bias=bias,
                          activation=activation, embed_scale=embed_scale)
        assert GPT.params_for(cfg, 37) == GPT(cfg, 37).num_params(), cfg


def test_gpt2_switches_do_what_their_formulas_say():
    cfg = ModelConfig(block_size=8, n_layer=1, n_head=2, n_embd=16, **GPT2_SWITCHES)
    model = GPT(cfg, 20)
    idx = torch.tensor([[1, 2, 3]])
    table = model.embed.position.table                                                  # (block_size, C), trained
    assert torch.equal(model.embed(idx)[0], model.embed.token.weight[[1, 2, 3]] + table[:3])   # no √C
    assert table.requires_grad and abs(table.std().item() - 0.01) < 0.004                # N(0, 0.01²) at init
    ffn, attn = model.blocks[0].ffn, model.blocks[0].attn
    assert all(b is not None and not b.any() for b in (ffn.up.bias, ffn.down.bias, attn.qkv.bias, attn.proj.bias))
    x = torch.linspace(-4, 4, 101)
    tanh_form = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    assert torch.allclose(ffn.act(x), tanh_form, atol=1e-6)
    assert not torch.allclose(ffn.act(x), torch.nn.functional.gelu(x), atol=1e-5)       # not the exact GELU


def test_the_default_model_has_none_of_gpt2s_switches():
    model = GPT(CFG, 20)
    assert model.embed.scale == math.sqrt(CFG.n_embd)
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert not any("position" in name for name, _ in model.named_parameters())
