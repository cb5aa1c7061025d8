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

from hwnas.asr import ArchConfig
from hwnas.nn.common import TimeConv, cache_shapes_of, chunk_through, keep_frames

CONVS_PER_BLOCK = 3
SE_REDUCTION = 8


class SqueezeExcite(nn.Module):
    def __init__(self, d: int, causal: bool) -> None:
        super().__init__()
        self.causal, self.d = causal, d
        self.fc = nn.Sequential(nn.Linear(d, d // SE_REDUCTION), nn.SiLU(),
                                nn.Linear(d // SE_REDUCTION, d), nn.Sigmoid())

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        xm = x if keep is None else x * keep
        if self.causal:
            count = torch.arange(1, x.shape[1] + 1, dtype=x.dtype, device=x.device)[None, :, None]
            ctx = xm.cumsum(dim=1) / count
        else:
            n = x.shape[1] if keep is None else keep.sum(dim=1, keepdim=True).clamp(min=1)
            ctx = xm.sum(dim=1, keepdim=True) / n
        return x * self.fc(ctx)

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return [(B, self.d), (B, 1)]   # running sum and frame count

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        total, count = caches
        C = x.shape[1]
        steps = torch.arange(1, C + 1, dtype=x.dtype, device=x.device)[None, :, None]
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

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        y = x
        for dw, pw, norm in zip(self.dw, self.pw, self.norms):
            if keep is not None:
                y = y * keep
            y = nn.functional.silu(norm(pw(dw(y))))
        return x + self.se(y, keep)

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return cache_shapes_of([*self.dw, self.se], B)

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        def after(k: int, h: torch.Tensor) -> torch.Tensor:   # a depthwise conv: pointwise
            if k == len(self.pw):
                return h
            return nn.functional.silu(self.norms[k](self.pw[k](h)))

        s, new = chunk_through([*self.dw, self.se], x, caches, after)
        return x + s, new


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
        return cache_shapes_of(self.blocks, B)

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return chunk_through(self.blocks, x, caches)


def contextnet(arch: ArchConfig) -> ContextNet:
    return ContextNet(arch)
