"""Text → token ids: tokenizers, the corpus loader and the embedded toy corpus."""
