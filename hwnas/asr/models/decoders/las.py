"""LAS-style attention decoder (Chan et al., 2016) in the Luong form: an LSTM
over the previous tokens, dot-product attention of its output over the
encoder frames, and an output layer over [LSTM output; context].

Teacher-forced shapes: encoder (B, T, D), tokens (B, U) -> logits (B, U, V).
Token 0 doubles as start-of-sequence. ``forward_onehot`` takes (B, U, V)
one-hot tokens (exact replacement for the embedding, used in exported graphs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hwnas.nn.common import zero_state


class LASDecoder(nn.Module):
    def __init__(self, d_model: int, vocab: int, dim: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.rnn = nn.LSTM(dim, dim, layers, batch_first=True)
        self.query = nn.Linear(dim, d_model)
        self.out = nn.Linear(dim + d_model, vocab)

    def _decode(self, x: torch.Tensor, enc: torch.Tensor, enc_valid: torch.Tensor | None
                ) -> torch.Tensor:
        h0 = zero_state(x, self.rnn.num_layers, self.rnn.hidden_size)
        h, _ = self.rnn(x, (h0, h0))
        s = self.query(h) @ enc.transpose(1, 2) / math.sqrt(enc.shape[-1])
        p = torch.softmax(s, dim=-1)
        if enc_valid is not None:
            p = p * enc_valid[:, None].to(p.dtype)
            p = p / (p.sum(dim=-1, keepdim=True) + 1e-9)
        return self.out(torch.cat([h, p @ enc], dim=-1))

    def forward(self, enc: torch.Tensor, tokens: torch.Tensor,
                enc_valid: torch.Tensor | None = None) -> torch.Tensor:
        return self._decode(self.embed(tokens), enc, enc_valid)

    def forward_onehot(self, enc: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return self._decode(onehot @ self.embed.weight, enc, None)
