"""The whole model: token ids in, next-token logits (and the loss) out.

    idx (B, T) → Embeddings (token·√C + PE) → n_layer × Block → LayerNorm → LM head (tied to the token embedding)
    → logits (B, T, vocab): for every position, a score per possible next token.

GPT-2 is the same network with four switches of ``ModelConfig`` set (learned positions, biases, tanh GELU, no √C):
``core.gpt2`` loads its published weights into this class.

Training is next-token prediction: the target at position t is the token at t+1, and the loss is the
cross-entropy between softmax(logits) and that target.
"""
import torch
import torch.nn.functional as F
from torch import nn

from model.block import Block
from model.config import ModelConfig
from model.embeddings import Embeddings
from model.kv_cache import KVCache
from model.positional import LearnedPositionalEmbedding
from model.recorder import Recorder, entering, keep


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int):
        super().__init__()
        self.cfg, self.vocab_size = cfg, vocab_size
        self.embed = Embeddings(cfg, vocab_size)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.embed.token.weight   # weight tying: reading and writing a token share one vector
        self.init_weights()

    def init_weights(self) -> None:
        """Every parameter's initial value, and why:

        - token embedding (= LM head, tied): N(0, 0.02²). Scaled by √C in ``Embeddings`` it is a little smaller than
          the positional encoding, and as the LM head it gives near-uniform predictions at the start (loss ≈ ln V).
          A larger init (e.g. unit variance after scaling) makes the tied head predict "the current token again"
          with a large logit, and the first loss is twice ln V.
        - every other Linear: N(0, 0.02²), GPT-2's choice, small enough that the blocks start near the identity.
        - the two residual output projections (attention ``proj``, FFN ``down``): N(0, (0.02/√(2·n_layer))²), GPT-2's
          scaling, so the residual stream's variance does not grow with depth (2 additions per block).
        - the projections' biases (``bias``): 0, so a new model starts as the bias-free one would (GPT-2's choice).
        - the learned position table (``positional="learned"``): N(0, 0.01²), GPT-2's ``wpe`` init: half the token
          embedding's size, so at the start a token's vector says mostly which token it is.
        - LayerNorm: weight 1, bias 0 (PyTorch's default).
        """
        residual_std = 0.02 / (2 * self.cfg.n_layer) ** 0.5
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear) and module is not self.lm_head:
                std = residual_std if name.endswith(("attn.proj", "ffn.down")) else 0.02
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        nn.init.normal_(self.embed.token.weight, mean=0.0, std=0.02)
        if isinstance(self.embed.position, LearnedPositionalEmbedding):
            nn.init.normal_(self.embed.position.table, mean=0.0, std=0.01)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                caches: list[KVCache] | None = None, start: int | torch.Tensor = 0, record: Recorder | None = None,
                last_only: bool = False):
        """idx (B, T) at positions start..start+T-1 → (logits (B, T, vocab), loss or None).

        ``last_only``: the logits of the last position only (B, 1, vocab), all that predicting the next token reads
        (generation, the page's next-token view). With GPT-2's 50,257 tokens the LM head over every position is a
        third of a 64-token pass.

        ``caches`` (one per block) are filled with this call's keys and values, for generation. A 0-dim tensor
        ``start`` (with caches, one token) runs at fixed shapes, whatever the position (``model.decoder``).
        ``record`` keeps what the pass computes on its way, for the views (``model.recorder``).
        """
        if not isinstance(start, torch.Tensor) and start + idx.size(1) > self.cfg.block_size:
            raise ValueError(f"positions {start}..{start + idx.size(1) - 1} run past this model's context of "
                             f"{self.cfg.block_size} tokens (block_size: its position tables and caches end there)")
        x = self.embed(idx, start)                                                      # (B, T, C)
        keep(record, "inputs", x)                                                       # what block 0 reads
        for i, block in enumerate(self.blocks):
            entering(record, i)                                                         # for Recorder(inside=i)
            x = block(x, caches[i] if caches is not None else None, start, record)      # (B, T, C)
        x = self.norm(x)
        keep(record, "final", x)                                                        # what the LM head reads
        logits = self.lm_head(x[:, -1:] if last_only else x)                            # (B, T or 1, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))
        return logits, loss

    def new_caches(self, batch_size: int, device=None, dtype=None) -> list[KVCache]:
        """Empty KV caches, one per block, sized for the full context."""
        weight = self.embed.token.weight
        return [KVCache(batch_size, self.cfg.n_head, self.cfg.block_size, self.cfg.head_size,
                        device or weight.device, dtype or weight.dtype) for _ in self.blocks]

    def num_params(self) -> int:
        """Trainable parameters, counting the tied embedding once (the sinusoidal table is a buffer, not a parameter;
        a learned one is a parameter)."""
        return sum(p.numel() for p in self.parameters())

    @staticmethod
    def params_for(cfg: ModelConfig, vocab_size: int) -> int:
        """``num_params`` from the config alone, before anything is allocated (so a shape that cannot fit in memory
        is refused instead of crashing the allocator): the tied embedding V·C, a learned position table T·C, per
        block two LayerNorms (2·2C), Q, K, V and the output projection (4C², biases 4C) and the feed-forward network
        (2·ffn_mult·C², biases ffn_mult·C + C), the final LayerNorm (2C)."""
        C, H = cfg.n_embd, cfg.ffn_mult * cfg.n_embd
        per_block = 4 * C + 4 * C * C + 2 * H * C + (4 * C + H + C if cfg.bias else 0)
        positions = cfg.block_size * C if cfg.positional == "learned" else 0
        return vocab_size * C + positions + cfg.n_layer * per_block + 2 * C

    def flops_per_token(self) -> int:
        """Training FLOPs per token: 6·N (forward 2·N, backward 4·N) for the weight matmuls, plus attention's
        QKᵀ and AV matmuls, 6 · 2 · n_layer · T · C (the PaLM paper's appendix B count, with full T×T scores)."""
        L, T, C = self.cfg.n_layer, self.cfg.block_size, self.cfg.n_embd
        return 6 * self.num_params() + 12 * L * T * C

    def configure_optimizer(self, lr: float, weight_decay: float, betas: tuple[float, float], fused: bool):
        """AdamW with weight decay on the matrices (Linear weights, embedding) only: decaying biases and LayerNorm
        gains only pulls them away from their useful values without regularising anything."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None, foreach=None if fused else True)
