"""Cache plumbing shared by the attention encoders (Conformer, Transformer).

Chunk-mode caches: each layer's own, in layer order.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.asr import ArchConfig
from hwnas.nn.attention import AttentionPlan
from hwnas.nn.common import cache_shapes_of, chunk_through, length_mask


def attention_plan(arch: ArchConfig) -> AttentionPlan:
    return AttentionPlan(variant=arch.attention or "mhsa", heads=arch.heads or 1,
                         window=arch.local_window, chunk=arch.chunk_frames,
                         left_chunks=arch.left_chunks)


class AttentionStack(nn.Module):
    """A stack of layers with ``forward(x, mask, valid)``, ``cache_shapes(B)``
    and ``forward_chunk(x, caches)``."""

    def __init__(self, plan: AttentionPlan, layers: list[nn.Module]) -> None:
        super().__init__()
        self.plan = plan
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        valid = None if lengths is None else length_mask(lengths, T, B)
        mask = self.plan.full_mask(T, valid, x.device)
        for layer in self.layers:
            x = layer(x, mask, valid)
        return x

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return cache_shapes_of(self.layers, B)

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return chunk_through(self.layers, x, caches)
