"""RNN-T decoder: an LSTM prediction network and an additive joint network
(Graves, 2012). Token 0 is the blank, which also starts every hypothesis.

Shapes: encoder (B, T, D); targets (B, U); training logits (B, T, U + 1, V).
One decoding step takes the previous token as a one-hot vector (B, V), which
is an exact replacement for the embedding lookup and keeps every input of the
exported graph a float tensor.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.nn.common import zero_state


class RNNTDecoder(nn.Module):
    def __init__(self, d_model: int, vocab: int, dim: int, layers: int) -> None:
        super().__init__()
        self.vocab, self.dim, self.layers = vocab, dim, layers
        self.embed = nn.Embedding(vocab, dim)
        self.pred = nn.LSTM(dim, dim, layers, batch_first=True)
        self.enc_proj = nn.Linear(d_model, dim)
        self.pred_proj = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, vocab)

    def joint(self, enc: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """enc (B, T, D), pred (B, U, P) -> (B, T, U, V)."""
        e = self.enc_proj(enc)[:, :, None]
        p = self.pred_proj(pred)[:, None]
        return self.out(torch.tanh(e + p))

    def forward(self, enc: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        blank = torch.zeros_like(targets[:, :1])
        x = self.embed(torch.cat([blank, targets], dim=1))
        h0 = zero_state(x, self.layers, self.dim)
        pred, _ = self.pred(x, (h0, h0))
        return self.joint(enc, pred)

    def state_shapes(self, B: int) -> list[tuple[int, ...]]:
        return [(B, self.layers, self.dim), (B, self.layers, self.dim)]

    def step(self, prev_onehot: torch.Tensor, h: torch.Tensor, c: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One prediction-network step: (B, V), (B, L, P) x2 -> g (B, P), h, c."""
        x = (prev_onehot @ self.embed.weight)[:, None]
        g, (h2, c2) = self.pred(x, (h.transpose(0, 1).contiguous(),
                                    c.transpose(0, 1).contiguous()))
        return g[:, 0], h2.transpose(0, 1), c2.transpose(0, 1)

    def step_joint(self, enc: torch.Tensor, prev_onehot: torch.Tensor, h: torch.Tensor,
                   c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Joint logits (B, T, V) of every encoder frame against one prediction step."""
        g, h, c = self.step(prev_onehot, h, c)
        # 3-D throughout (no (B, T, 1, J) intermediate, whose layout converters guess)
        logits = self.out(torch.tanh(self.enc_proj(enc) + self.pred_proj(g)[:, None]))
        return logits, h, c
