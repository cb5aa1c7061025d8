"""CNN-LSTM encoder: two 1-D convolution layers over time (causal when
streaming or ``causal_conv``) followed by a unidirectional LSTM stack, as in
CLDNN-style acoustic models. Input/output (B, T, d_model)."""

from __future__ import annotations

import torch
from torch import nn

from hwnas.asr import ArchConfig
from hwnas.asr.models.encoders.rnn import LSTMStack
from hwnas.nn.common import TimeConv, cache_shapes_of, chunk_through, keep_frames

CONV_LAYERS = 2


class CNNLSTM(nn.Module):
    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        assert arch.conv_kernel is not None
        d = arch.d_model
        self.convs = nn.ModuleList(TimeConv(d, d, arch.conv_kernel, arch.uses_conv_causally)
                                   for _ in range(CONV_LAYERS))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(CONV_LAYERS))
        self.rnn = LSTMStack(d, d, arch.num_layers, bidirectional=False)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        keep = None
        if lengths is not None:
            keep = keep_frames(x, lengths)
        for conv, norm in zip(self.convs, self.norms):
            if keep is not None:
                x = x * keep
            x = torch.relu(norm(conv(x)))
        return self.rnn(x, lengths)

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return cache_shapes_of([*self.convs, self.rnn], B)

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        def after(k: int, y: torch.Tensor) -> torch.Tensor:   # a conv: norm, ReLU
            return torch.relu(self.norms[k](y)) if k < len(self.norms) else y

        return chunk_through([*self.convs, self.rnn], x, caches, after)


def cnn_lstm(arch: ArchConfig) -> CNNLSTM:
    return CNNLSTM(arch)
