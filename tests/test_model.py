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
