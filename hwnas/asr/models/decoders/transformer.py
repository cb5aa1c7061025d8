"""Transformer decoder (Vaswani et al., 2017): causal self-attention over the
previous tokens, cross-attention to the encoder, feed-forward; pre-norm.

Teacher-forced shapes: encoder (B, T, D), tokens (B, U) -> logits (B, U, V).
Token 0 doubles as start-of-sequence.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hwnas.nn.common import FeedForward, sinusoid_table

HEADS = 4
MAX_TOKENS = 512


class _Attention(nn.Module):
    def __init__(self, d_q: int, d_kv: int) -> None:
        super().__init__()
        self.q = nn.Linear(d_q, d_q)
        self.kv = nn.Linear(d_kv, 2 * d_q)
        self.o = nn.Linear(d_q, d_q)
        self.dk, self.d = d_q // HEADS, d_q

    def forward(self, x: torch.Tensor, mem: torch.Tensor, mask: torch.Tensor | None
                ) -> torch.Tensor:
        B, U, D = x.shape
        T = mem.shape[1]
        q = self.q(x).reshape(B, U, HEADS, self.dk).transpose(1, 2)
        kv = self.kv(mem)
        k, v = (kv[..., i * self.d:(i + 1) * self.d].reshape(B, T, HEADS, self.dk).transpose(1, 2)
                for i in range(2))
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.dk), dim=-1)
        if mask is not None:  # (B|1, U, T) 0/1
            p = p * mask[:, None]
            p = p / (p.sum(dim=-1, keepdim=True) + 1e-9)
        return self.o((p @ v).transpose(1, 2).reshape(B, U, D))


class _Layer(nn.Module):
    def __init__(self, d: int, d_enc: int) -> None:
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_att = _Attention(d, d)
        self.cross = _Attention(d, d_enc)
        self.ff = FeedForward(d, 4)

    def forward(self, x: torch.Tensor, enc: torch.Tensor, causal: torch.Tensor,
                enc_mask: torch.Tensor | None) -> torch.Tensor:
        h = self.n1(x)
        x = x + self.self_att(h, h, causal)
        x = x + self.cross(self.n2(x), enc, enc_mask)
        return x + self.ff(x)


class TransformerDecoder(nn.Module):
    def __init__(self, d_model: int, vocab: int, dim: int, layers: int) -> None:
        super().__init__()
        if dim % HEADS:
            raise ValueError(f"decoder_dim={dim} must be divisible by {HEADS} heads")
        self.embed = nn.Embedding(vocab, dim)
        self.register_buffer("pos", sinusoid_table(MAX_TOKENS, dim), persistent=False)
        self.layers = nn.ModuleList(_Layer(dim, d_model) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, vocab)
        self.scale = math.sqrt(dim)

    def _decode(self, x: torch.Tensor, enc: torch.Tensor, enc_valid: torch.Tensor | None
                ) -> torch.Tensor:
        U = x.shape[1]
        if U > MAX_TOKENS:
            raise ValueError(f"transformer decoder: {U} tokens > {MAX_TOKENS}")
        x = x * self.scale + self.pos[:U]
        u = torch.arange(U, device=x.device)
        causal = (u[None] <= u[:, None]).to(x.dtype)[None]
        enc_mask = None if enc_valid is None else enc_valid[:, None].to(x.dtype)
        for layer in self.layers:
            x = layer(x, enc, causal, enc_mask)
        return self.out(self.norm(x))

    def forward(self, enc: torch.Tensor, tokens: torch.Tensor,
                enc_valid: torch.Tensor | None = None) -> torch.Tensor:
        return self._decode(self.embed(tokens), enc, enc_valid)

    def forward_onehot(self, enc: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return self._decode(onehot @ self.embed.weight, enc, None)
