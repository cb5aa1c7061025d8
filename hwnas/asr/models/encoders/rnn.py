"""LSTM and BLSTM encoders. Input/output (B, T, d_model).

Chunk-mode caches are batch-first (B, layers * directions, hidden) so that
every exported state tensor has the batch on axis 0.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from hwnas.asr import ArchConfig
from hwnas.nn.common import zero_state


class LSTMStack(nn.Module):
    def __init__(self, d_in: int, hidden: int, layers: int, bidirectional: bool) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d_in, hidden, layers, batch_first=True,
                            bidirectional=bidirectional)
        self.hidden, self.layers, self.bidirectional = hidden, layers, bidirectional

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if self.bidirectional and lengths is not None and not bool((lengths == x.shape[1]).all()):
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            y, _ = self.lstm(packed)
            return pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])[0]
        n = self.layers * (2 if self.bidirectional else 1)
        h0 = zero_state(x, n, self.hidden)
        return self.lstm(x, (h0, h0))[0]

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        n = self.layers * (2 if self.bidirectional else 1)
        return [(B, n, self.hidden), (B, n, self.hidden)]

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, c = (t.transpose(0, 1).contiguous() for t in caches)
        y, (h, c) = self.lstm(x, (h, c))
        return y, [h.transpose(0, 1), c.transpose(0, 1)]


def lstm(arch: ArchConfig) -> LSTMStack:
    return LSTMStack(arch.d_model, arch.d_model, arch.num_layers, bidirectional=False)


def blstm(arch: ArchConfig) -> LSTMStack:
    if arch.streaming:
        raise ValueError("encoder 'blstm' is bidirectional and cannot stream")
    return LSTMStack(arch.d_model, arch.d_model // 2, arch.num_layers, bidirectional=True)
