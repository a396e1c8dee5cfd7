"""A key/value cache: generation computes each token's keys and values once instead of once per new token.

Without it, producing token t re-runs the whole prefix (O(T²) work per token); with it, the new token's query looks
at keys and values stored from earlier steps. A cached key carries its position (added to the token, or RoPE's
rotation, which is applied before the key is stored): when the window slides past the context length, the cache is
rebuilt (see ``model.decoder``).
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

    def write(self, k: torch.Tensor, v: torch.Tensor, position: torch.Tensor):
        """Store one token's k, v (B, nh, 1, hs) at ``position`` (a 0-dim tensor); return the whole buffers and which
        of their positions are filled (≤ position). The shapes never change, so the step can be captured once and
        replayed (``model.decoder``); ``length`` is the caller's to keep."""
        self.k.index_copy_(2, position.view(1), k)
        self.v.index_copy_(2, position.view(1), v)
        visible = torch.arange(self.k.size(2), device=position.device) <= position   # (block_size,)
        return self.k, self.v, visible.unsqueeze(0)                                  # (1, block_size) query row

    def clear(self) -> None:
        self.length = 0
