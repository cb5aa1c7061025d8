"""CTC head: (B, T, d_model) -> logits (B, T, vocab). Token 0 is the blank."""

from __future__ import annotations

from torch import nn


class CTCHead(nn.Linear):
    def __init__(self, d_model: int, vocab: int) -> None:
        super().__init__(d_model, vocab)
