"""The mini-GPT, one concept per module, in reading order:

config → positional → embeddings → attention (+ kv_cache) → feedforward → block → gpt → sampling → generation

beside them, what the views and the fast paths use: recorder (what one forward pass keeps for the views),
decoder (generation with KV caches, and CUDA graphs of its steps on a GPU), cuda_graphs
"""
from model.config import ModelConfig
from model.gpt import GPT

__all__ = ["GPT", "ModelConfig"]
