"""Which text to train on and how it becomes tokens: the ``data:`` section of a config."""
from dataclasses import dataclass


@dataclass
class DataConfig:
    path: str = "data/toy_corpus.txt"   # a UTF-8 text file or a folder of .txt files
    tokenizer: str = "char"             # "word", "char", "bpe" (both trained on the corpus) or "tiktoken:<name>"
    bpe_vocab_size: int = 512           # vocabulary size for tokenizer "bpe" (>= 256)
    word_vocab_size: int = 0            # tokenizer "word": keep the most frequent words, <unk> included (0: all)
    val_fraction: float = 0.1           # share of the corpus (at its end) held out for validation
    cache_dir: str = ".cache/tokens"    # where encoded corpora are cached
