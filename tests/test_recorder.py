"""The forward pass is written once: the views' trace is the model's own forward with a recorder, not a copy."""
import copy

import torch

from core.config import Config
from data.tokenization import CharTokenizer
from inference import Loaded, trace
from model import GPT, ModelConfig
from model.recorder import INSIDE, Recorder

CFG = ModelConfig(block_size=24, n_layer=3, n_head=2, n_embd=32)
TEXT = "He broke the glass."


def loaded_model() -> Loaded:
    torch.manual_seed(0)
    tokenizer = CharTokenizer(sorted(set(TEXT + "news")))
    return Loaded(GPT(CFG, tokenizer.vocab_size).eval(), tokenizer, Config(model=CFG), torch.device("cpu"))


def test_recording_changes_nothing_and_keeps_one_tensor_per_block():
    loaded = loaded_model()
    idx = torch.tensor([loaded.tokenizer.encode(TEXT)])
    record = Recorder()
    with torch.no_grad():
        plain, _ = loaded.model(idx)
        recorded, _ = loaded.model(idx, record=record)
    assert torch.allclose(recorded, plain, atol=1e-5)
    T, C = idx.size(1), CFG.n_embd
    assert [w.shape for w in record["attention"]] == [(1, CFG.n_head, T, T)] * CFG.n_layer
    assert [h.shape for h in record["ffn_hidden"]] == [(1, T, CFG.ffn_mult * C)] * CFG.n_layer
    for name in ("after_attention", "ffn_out", "residual"):
        assert [x.shape for x in record[name]] == [(1, T, C)] * CFG.n_layer, name
    assert len(record["inputs"]) == len(record["final"]) == 1
    assert torch.allclose(loaded.model.lm_head(record["final"][0]), plain, atol=1e-5)   # the LM head reads "final"


def test_trace_is_the_models_forward_and_its_parts_add_up():
    loaded = loaded_model()
    t = trace(loaded, TEXT)
    with torch.no_grad():
        logits, _ = loaded.model(torch.tensor([t.ids]))
    assert torch.allclose(t.logits, logits[0, -1:], atol=1e-5)        # the last position's
    stream = t.inputs
    for i in range(CFG.n_layer):                   # the residual stream: each block adds attention, then the FFN
        assert torch.allclose(t.residual[i], t.after_attention[i] + t.ffn_out[i], atol=1e-6)
        stream = t.residual[i]
    assert torch.allclose(loaded.model.norm(stream), t.final, atol=1e-6)


def test_dropping_a_blocks_ffn_equals_a_model_whose_ffn_adds_nothing():
    """trace(drop_ffn=i) records block i's FFN change but does not add it: the logits equal those of a copy of the
    model whose block i FFN output projection is zero, and every other trace is unchanged by the experiment."""
    loaded = loaded_model()
    for block in range(CFG.n_layer):
        dropped = trace(loaded, TEXT, drop_ffn=block)
        silenced = copy.deepcopy(loaded.model)
        with torch.no_grad():
            silenced.blocks[block].ffn.down.weight.zero_()
            expected, _ = silenced(torch.tensor([dropped.ids]))
        assert torch.allclose(dropped.logits, expected[0, -1:], atol=1e-5)
        assert dropped.ffn_out[block].abs().sum() > 0                              # the change was computed
        assert not torch.allclose(dropped.final, trace(loaded, TEXT).final, atol=1e-3)   # every position's
    assert torch.allclose(trace(loaded, TEXT).logits, loaded.model(torch.tensor([dropped.ids]))[0][0, -1:],
                          atol=1e-5)


def test_attention_step_by_step_is_kept_for_the_one_block_asked_only():
    """``Recorder(inside=b)`` keeps attention's input, q, k, v, scores, head outputs and projection of block b alone
    (the largest tensors of a pass); a plain ``Recorder()`` keeps none of them. Neither changes the logits."""
    loaded = loaded_model()
    idx = torch.tensor([loaded.tokenizer.encode(TEXT)])
    T, C, nh = idx.size(1), CFG.n_embd, CFG.n_head
    with torch.no_grad():
        plain, _ = loaded.model(idx)
        everything, inside = Recorder(), Recorder(inside=1)
        assert torch.allclose(loaded.model(idx, record=everything)[0], plain, atol=1e-5)
        assert torch.allclose(loaded.model(idx, record=inside)[0], plain, atol=1e-5)
    assert not set(INSIDE) & set(everything.kept)
    shapes = {name: [t.shape for t in inside[name]] for name in INSIDE}
    hs = C // nh
    assert shapes == {"attention_input": [(1, T, C)], "q": [(1, nh, T, hs)], "k": [(1, nh, T, hs)],
                      "v": [(1, nh, T, hs)], "dots": [(1, nh, T, T)], "scores": [(1, nh, T, T)],
                      "heads": [(1, nh, T, hs)], "attention_out": [(1, T, C)]}
    assert len(inside["attention"]) == CFG.n_layer                                        # the weights: every block
    assert torch.allclose(inside["after_attention"][1], inside["residual"][0] + inside["attention_out"][0], atol=1e-6)
