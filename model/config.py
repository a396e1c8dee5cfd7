"""The shape of the network: every size the model is built from, in one place."""
from dataclasses import dataclass


@dataclass
class ModelConfig:
    block_size: int = 64          # context length T: how many tokens the model sees at once
    n_layer: int = 4              # transformer blocks stacked on top of each other
    n_head: int = 4               # attention heads per block (n_embd must divide by it)
    n_embd: int = 128             # width C of every token vector
    ffn_mult: int = 4             # feed-forward hidden width = ffn_mult * n_embd
    dropout: float = 0.0          # dropout on attention weights and residual branches
    positional: str = "sinusoidal"  # "sinusoidal" (the paper's sin/cos) or "none" (to see what is lost)

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head
