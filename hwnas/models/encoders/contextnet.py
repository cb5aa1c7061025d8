"""ContextNet encoder (Han et al., 2020): blocks of depthwise-separable
convolutions with squeeze-and-excitation and a residual connection.
Input/output (B, T, d_model).

Squeeze-and-excitation averages over the whole utterance in full-context mode.
In streaming mode it uses the running (causal) average of all frames so far,
carried between chunks as a (B, d) sum and a (B, 1) frame count.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.models.common import TimeConv, keep_frames
from hwnas.space import ArchConfig

CONVS_PER_BLOCK = 3
SE_REDUCTION = 8


class SqueezeExcite(nn.Module):
    def __init__(self, d: int, causal: bool) -> None:
        super().__init__()
        self.causal = causal
        self.fc = nn.Sequential(nn.Linear(d, d // SE_REDUCTION), nn.SiLU(),
                                nn.Linear(d // SE_REDUCTION, d), nn.Sigmoid())

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        xm = x if keep is None else x * keep
        if self.causal:
            count = torch.arange(1, x.shape[1] + 1, dtype=x.dtype)[None, :, None]
            ctx = xm.cumsum(dim=1) / count
        else:
            n = x.shape[1] if keep is None else keep.sum(dim=1, keepdim=True).clamp(min=1)
            ctx = xm.sum(dim=1, keepdim=True) / n
        return x * self.fc(ctx)

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        total, count = caches
        C = x.shape[1]
        steps = torch.arange(1, C + 1, dtype=x.dtype)[None, :, None]
        ctx = (total[:, None] + x.cumsum(dim=1)) / (count[:, None] + steps)
        return x * self.fc(ctx), [total + x.sum(dim=1), count + C]


class ContextBlock(nn.Module):
    def __init__(self, d: int, kernel: int, causal: bool, streaming: bool) -> None:
        super().__init__()
        self.dw = nn.ModuleList(TimeConv(d, d, kernel, causal, depthwise=True)
                                for _ in range(CONVS_PER_BLOCK))
        self.pw = nn.ModuleList(nn.Linear(d, d) for _ in range(CONVS_PER_BLOCK))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(CONVS_PER_BLOCK))
        self.se = SqueezeExcite(d, causal=streaming)
        self.d = d

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        y = x
        for dw, pw, norm in zip(self.dw, self.pw, self.norms):
            if keep is not None:
                y = y * keep
            y = nn.functional.silu(norm(pw(dw(y))))
        return x + self.se(y, keep)

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        shapes: list[tuple[int, ...]] = []
        for dw in self.dw:
            shapes += dw.cache_shapes(B)
        return shapes + [(B, self.d), (B, 1)]

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        new: list[torch.Tensor] = []
        y, i = x, 0
        for dw, pw, norm in zip(self.dw, self.pw, self.norms):
            n = len(dw.cache_shapes(1))
            h, c = dw.forward_chunk(y, caches[i:i + n])
            y, i = nn.functional.silu(norm(pw(h))), i + n
            new += c
        s, c = self.se.forward_chunk(y, caches[i:i + 2])
        return x + s, new + c


class ContextNet(nn.Module):
    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        assert arch.conv_kernel is not None
        self.blocks = nn.ModuleList(
            ContextBlock(arch.d_model, arch.conv_kernel, arch.uses_conv_causally,
                         arch.streaming) for _ in range(arch.num_layers))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        keep = None
        if lengths is not None:
            keep = keep_frames(x, lengths)
        for block in self.blocks:
            x = block(x, keep)
        return x

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return [s for b in self.blocks for s in b.cache_shapes(B)]

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        new: list[torch.Tensor] = []
        i = 0
        for block in self.blocks:
            n = len(block.cache_shapes(1))
            x, c = block.forward_chunk(x, caches[i:i + n])
            new += c
            i += n
        return x, new


def contextnet(arch: ArchConfig) -> ContextNet:
    return ContextNet(arch)
