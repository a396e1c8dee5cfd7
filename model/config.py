"""The shape of the network: every size the model is built from, in one place.

The defaults are this project's model (the paper's sinusoidal positions and √C-scaled embeddings, no biases, exact
GELU). GPT-2 differs in four switches: ``positional="learned"``, ``bias=True``, ``activation="gelu_tanh"``,
``embed_scale=False`` (``core.gpt2`` reads and writes its weights).
"""
from dataclasses import dataclass

POSITIONALS = ("sinusoidal", "learned", "rope", "none")   # model.positional: how a token's place reaches attention
ACTIVATIONS = ("gelu", "gelu_tanh")                 # model.activation: the feed-forward non-linearity


@dataclass
class ModelConfig:
    block_size: int = 64          # context length T: how many tokens the model sees at once
    n_layer: int = 4              # transformer blocks stacked on top of each other
    n_head: int = 4               # attention heads per block (n_embd must divide by it)
    n_embd: int = 128             # width C of every token vector
    ffn_mult: int = 4             # feed-forward hidden width = ffn_mult * n_embd
    dropout: float = 0.0          # dropout on attention weights and residual branches
    positional: str = "sinusoidal"  # "sinusoidal": x + PE(pos), the paper's fixed sin/cos table (T, C);
                                    # "learned": x + W_pos[pos], a trained table (block_size, C) like GPT-2's wpe;
                                    # "rope": q, k of every head turned by angle pos·θ_i, Llama's (model.rope);
                                    # "none": no positions (to see what is lost)
    bias: bool = False            # y = W x + b in the attention and feed-forward projections (GPT-2: true)
    activation: str = "gelu"      # "gelu": x·Φ(x), exact; "gelu_tanh": GPT-2's ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
    embed_scale: bool = True      # token vector ·√C before positions are added (the paper's choice; GPT-2: false)

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head
