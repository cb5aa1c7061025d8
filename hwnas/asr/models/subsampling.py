"""Time reduction between the front-end and the encoder.

Conv2d subsampling is causal in time, so a chunk of ``factor * n`` frames gives
exactly ``n`` encoder frames, identical to full-sequence processing.
"""

from __future__ import annotations

import torch
from torch import nn

# (time kernel, time stride) per conv layer; frequency uses kernel 3, stride 2.
CONV_LAYERS = {"conv2d4": [(3, 2), (3, 2)], "conv2d6": [(3, 2), (5, 3)],
               "conv2d8": [(3, 2), (3, 2), (3, 2)]}


def _freq_out(f: int) -> int:
    return (f + 2 - 3) // 2 + 1


class Conv2dSubsampling(nn.Module):
    """(B, T, F) -> (B, T / factor, d_model), causal in time.

    The convolutions have no time padding; instead ``context`` zero frames
    are prepended to the input, where ``context`` is the receptive field
    beyond one output step. Chunk mode keeps the last ``context`` input frames
    as its only cache (B, context, F), so chunked and full processing agree
    exactly and no 4-D tensor is sliced or concatenated.
    """

    def __init__(self, kind: str, f_in: int, d_model: int) -> None:
        super().__init__()
        self.layers_spec = CONV_LAYERS[kind]
        self.channels = max(16, d_model // 4)
        self.convs = nn.ModuleList()
        c, f, stride = 1, f_in, 1
        self.context = 0
        for kt, st in self.layers_spec:
            self.convs.append(nn.Conv2d(c, self.channels, (kt, 3), (st, 2), (0, 1)))
            self.context += (kt - st) * stride
            c, f, stride = self.channels, _freq_out(f), stride * st
        self.factor, self.f_in = stride, f_in
        self.out = nn.Linear(self.channels * f, d_model)

    def _convs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])  # (B, 1, T, F)
        for conv in self.convs:
            x = torch.relu(conv(x))
        B, C, T, F = x.shape
        return self.out(x.permute(0, 2, 1, 3).reshape(B, T, C * F))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Zeros made from the input, not a constant or a Pad: onnx2tf infers
        # the layout of a constant or padded 3-D tensor wrongly (NCW) here.
        zeros = (x[:, : self.context] * 0.0 if x.shape[1] >= self.context
                 else x.new_zeros(x.shape[0], self.context, x.shape[2]))
        return self._convs(torch.cat([zeros, x], dim=1))

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return [(B, self.context, self.f_in)]

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.cat([caches[0], x], dim=1)
        return self._convs(x), [x[:, -self.context:]]


class FrameStacking(nn.Module):
    """Stack ``factor`` consecutive frames and project: (B, T, F) -> (B, T/factor, d)."""

    def __init__(self, factor: int, f_in: int, d_model: int) -> None:
        super().__init__()
        self.factor = factor
        self.out = nn.Linear(f_in * factor, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._stack(x)

    def _stack(self, x: torch.Tensor) -> torch.Tensor:
        B, T, F = x.shape
        return self.out(x.reshape(B, T // self.factor, F * self.factor))

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return []

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # not self.forward: inside nn.common.chunk_call, forward is this method
        return self._stack(x), []


def build_subsampling(kind: str, f_in: int, d_model: int) -> nn.Module:
    if kind in CONV_LAYERS:
        return Conv2dSubsampling(kind, f_in, d_model)
    if kind == "stack4":
        return FrameStacking(4, f_in, d_model)
    raise ValueError(f"subsampling: unknown kind {kind!r}")
