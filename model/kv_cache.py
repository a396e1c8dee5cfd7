"""A key/value cache: generation computes each token's keys and values once instead of once per new token.

Without it, producing token t re-runs the whole prefix (O(T²) work per token); with it, the new token's query looks
at keys and values stored from earlier steps. Absolute (sinusoidal) positions mean a cached key belongs to one
position: when the window slides past the context length, the cache must be rebuilt (see ``model.generation``).
"""
import torch


class KVCache:
    """Preallocated (B, nh, block_size, hs) key and value buffers for one attention layer."""

    def __init__(self, batch_size: int, n_head: int, block_size: int, head_size: int, device, dtype):
        shape = (batch_size, n_head, block_size, head_size)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0                                    # how many positions are filled

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, nh, T, hs) after the filled part; return all keys and values so far."""
        T = k.size(2)
        if self.length + T > self.k.size(2):
            raise ValueError(f"KV cache holds {self.k.size(2)} positions; cannot append {T} after {self.length}")
        self.k[:, :, self.length : self.length + T] = k
        self.v[:, :, self.length : self.length + T] = v
        self.length += T
        return self.k[:, :, : self.length], self.v[:, :, : self.length]   # (B, nh, length, hs)
