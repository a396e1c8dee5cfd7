"""GPT-2 in Hugging Face's layout ⇄ this project's model: the settings, names and shapes that differ.

GPT-2 (Radford et al., 2019) is this project's GPT with four switches of ``ModelConfig`` set: learned positions,
biases, the tanh GELU and no √C on the embeddings. Its published weights (``transformers``' ``GPT2LMHeadModel``) hold
the same numbers under other names, some of them transposed:

    Hugging Face (model.safetensors)      shape                 this project
    wte.weight                            (V, C)                embed.token.weight (= lm_head.weight, tied)
    wpe.weight                            (n_positions, C)      embed.position.table
    h.{i}.ln_1.weight, .bias              (C,)                  blocks.{i}.ln1
    h.{i}.attn.c_attn.weight, .bias       (C, 3C), (3C,)        blocks.{i}.attn.qkv   (3C, C): transposed
    h.{i}.attn.c_proj.weight, .bias       (C, C), (C,)          blocks.{i}.attn.proj  transposed
    h.{i}.ln_2.weight, .bias              (C,)                  blocks.{i}.ln2
    h.{i}.mlp.c_fc.weight, .bias          (C, 4C), (4C,)        blocks.{i}.ffn.up     (4C, C): transposed
    h.{i}.mlp.c_proj.weight, .bias        (4C, C), (C,)         blocks.{i}.ffn.down   (C, 4C): transposed
    ln_f.weight, .bias                    (C,)                  norm

GPT-2's projections are ``Conv1D`` layers: weight (in, out), y = x W + b, where ``nn.Linear`` keeps (out, in) and
computes y = x Wᵀ + b: the same map, stored transposed. ``c_attn``'s 3C outputs are [q | k | v], the order in which
our fused ``qkv`` is split. Files saved from ``GPT2LMHeadModel`` put ``transformer.`` before every name; older ones
also hold ``h.{i}.attn.bias`` and ``h.{i}.attn.masked_bias``, the causal mask as buffers (not weights: dropped), and
some an ``lm_head.weight``, which must equal ``wte`` (the head is tied). Nothing here reads or writes files
(``core.hub`` does).
"""
import torch

from model.config import ModelConfig

MODEL_TYPE = "gpt2"
# transformers' names of GELU's tanh form, ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
LAYER_NORM_EPS = 1e-5                                           # nn.LayerNorm's, which the blocks use
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")


def model_config_from_hf(config: dict) -> tuple[ModelConfig, int]:
    """``ModelConfig`` and the vocabulary size from a GPT-2 ``config.json``; a ValueError naming everything in it
    that this model cannot hold."""
    problems = []

    def size(*names):
        value = next((config[n] for n in names if n in config), None)
        if type(value) is not int or value < 1:
            problems.append(f"{names[0]} must be a positive integer, got {value!r}")
            return 1
        return value

    C, n_layer, n_head, n_positions = size("n_embd"), size("n_layer"), size("n_head"), size("n_positions", "n_ctx")
    vocab_size = size("vocab_size")
    if C % n_head:
        problems.append(f"n_embd ({C}) is not divisible by n_head ({n_head})")
    inner = config.get("n_inner")
    if inner is not None and (type(inner) is not int or inner < 1 or inner % C):
        problems.append(f"n_inner ({inner!r}) is not a multiple of n_embd ({C})")
    activation = config.get("activation_function", "gelu_new")
    if activation not in (*TANH_GELUS, "gelu"):
        problems.append(f"activation_function {activation!r} (this model has gelu and its tanh form, gelu_new)")
    expected = {"layer_norm_epsilon": LAYER_NORM_EPS, "scale_attn_weights": True, "tie_word_embeddings": True,
                "scale_attn_by_inverse_layer_idx": False, "add_cross_attention": False}
    problems += [f"{key} is {config[key]!r}, this model has {value!r}" for key, value in expected.items()
                 if key in config and config[key] != value]
    if problems:
        raise ValueError("; ".join(problems))
    dropout = config.get("resid_pdrop", 0.0)          # acts only when fine-tuning
    dropout = float(dropout) if type(dropout) in (int, float) and 0 <= dropout < 1 else 0.0
    return ModelConfig(block_size=n_positions, n_layer=n_layer, n_head=n_head, n_embd=C,
                       ffn_mult=(inner or 4 * C) // C, dropout=dropout, positional="learned", bias=True,
                       activation="gelu" if activation == "gelu" else "gelu_tanh", embed_scale=False), vocab_size


def renames(n_layer: int) -> dict[str, tuple[str, bool]]:
    """Hugging Face name (without ``transformer.``) → (our name, transposed?), for the table above."""
    names = {"wte.weight": ("embed.token.weight", False), "wpe.weight": ("embed.position.table", False),
             "ln_f.weight": ("norm.weight", False), "ln_f.bias": ("norm.bias", False)}
    for i in range(n_layer):
        for hf, ours, conv1d in (("ln_1", "ln1", False), ("attn.c_attn", "attn.qkv", True),
                                 ("attn.c_proj", "attn.proj", True), ("ln_2", "ln2", False),
                                 ("mlp.c_fc", "ffn.up", True), ("mlp.c_proj", "ffn.down", True)):
            names[f"h.{i}.{hf}.weight"] = (f"blocks.{i}.{ours}.weight", conv1d)
            names[f"h.{i}.{hf}.bias"] = (f"blocks.{i}.{ours}.bias", False)
    return names


def state_from_hf(tensors: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Our ``state_dict`` (fp32) from GPT-2's tensors; a ValueError naming missing, unknown or misshapen tensors."""
    tensors = {name.removeprefix("transformer."): t for name, t in tensors.items()}
    head = tensors.pop("lm_head.weight", None)
    wanted = renames(cfg.n_layer)
    unknown = [n for n in tensors if n not in wanted and not n.endswith(MASK_BUFFERS)]
    missing = [n for n in wanted if n not in tensors]
    if unknown or missing:
        named = [f"{what} {', '.join(names[:3])}" for what, names in (("missing", missing), ("unknown", unknown))
                 if names]
        raise ValueError(f"its tensors are not GPT-2's with {cfg.n_layer} blocks ({'; '.join(named)})")
    state = {}
    for hf, (ours, conv1d) in wanted.items():
        t = tensors[hf].float()
        state[ours] = t.t().contiguous() if conv1d else t
    if head is not None and not torch.equal(head.float(), state["embed.token.weight"]):
        raise ValueError("its lm_head.weight differs from wte.weight (an untied output layer; this model ties them)")
    state["lm_head.weight"] = state["embed.token.weight"]
    return state


def why_not_gpt2(cfg: ModelConfig) -> list[str]:
    """What in ``cfg`` Hugging Face's GPT-2 class cannot hold (empty: it can). A model without biases is written
    with zero biases, which compute the same."""
    reasons = []
    if cfg.positional == "rope":
        reasons.append("rotary positions (GPT-2 adds a learned table; its attention has no place to turn q and k)")
    elif cfg.positional != "learned":
        reasons.append(f"{cfg.positional} positions (GPT-2 adds a learned table)")
    if cfg.embed_scale:
        reasons.append("token embeddings scaled by √n_embd (GPT-2 does not scale them, and its output layer "
                       "shares the table)")
    return reasons


def hf_config(cfg: ModelConfig, vocab_size: int, end_of_text: int | None) -> dict:
    """GPT-2's ``config.json`` for ``cfg`` (which ``why_not_gpt2`` accepts)."""
    return {"architectures": ["GPT2LMHeadModel"], "model_type": MODEL_TYPE, "vocab_size": vocab_size,
            "n_positions": cfg.block_size, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer, "n_head": cfg.n_head,
            "n_inner": cfg.ffn_mult * cfg.n_embd,
            "activation_function": "gelu_new" if cfg.activation == "gelu_tanh" else "gelu",
            "resid_pdrop": cfg.dropout, "embd_pdrop": cfg.dropout, "attn_pdrop": cfg.dropout,
            "layer_norm_epsilon": LAYER_NORM_EPS, "initializer_range": 0.02, "scale_attn_weights": True,
            "tie_word_embeddings": True, "bos_token_id": end_of_text, "eos_token_id": end_of_text}


def state_to_hf(state: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """GPT-2's tensors, named as ``GPT2LMHeadModel.save_pretrained`` names them (the tied head left out)."""
    tensors = {}
    for hf, (ours, conv1d) in renames(cfg.n_layer).items():
        t = state.get(ours)
        if t is None:                      # a bias-free model: GPT-2's biases are zeros
            weight = state[ours.replace(".bias", ".weight")]
            t = torch.zeros(weight.size(0), dtype=weight.dtype)
        tensors[f"transformer.{hf}"] = (t.t() if conv1d else t).contiguous()
    return tensors
