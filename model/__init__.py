"""The mini-GPT, one concept per module, in reading order:

config → positional → embeddings → attention (+ kv_cache) → feedforward → block → gpt → sampling → generation
"""
from model.config import ModelConfig
from model.gpt import GPT

__all__ = ["GPT", "ModelConfig"]
