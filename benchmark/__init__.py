"""How fast the mini-GPT trains and generates on this machine, measured rather than guessed.

machine (what it runs on, its matmul peak, peak memory) → training (tokens/s, MFU, time-to-loss)
→ generation (tokens/s with and without the KV cache) → report (table and JSON). ``bench.py`` is the command line.
"""
