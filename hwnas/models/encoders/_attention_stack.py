"""Cache plumbing shared by the attention encoders (Conformer, Transformer).

Chunk-mode caches, in order: a (B, cache_len) validity mask of the key/value
cache (only when cache_len > 0), then each layer's own caches.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.models.attention import AttentionPlan
from hwnas.models.common import length_mask
from hwnas.space import ArchConfig


def attention_plan(arch: ArchConfig) -> AttentionPlan:
    return AttentionPlan(variant=arch.attention or "mhsa", heads=arch.heads or 1,
                         window=arch.local_window, chunk=arch.chunk_frames,
                         left_chunks=arch.left_chunks)


class AttentionStack(nn.Module):
    """A stack of layers with ``forward(x, mask, valid)``, ``cache_shapes(B)``
    and ``forward_chunk(x, caches, valid)``."""

    def __init__(self, plan: AttentionPlan, layers: list[nn.Module]) -> None:
        super().__init__()
        self.plan = plan
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        valid = None if lengths is None else length_mask(lengths, T, B)
        mask = self.plan.full_mask(T, valid)
        for layer in self.layers:
            x = layer(x, mask, valid)
        return x

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        L = self.plan.cache_len
        shapes = [(B, L)] if L else []
        for layer in self.layers:
            shapes += layer.cache_shapes(B)
        return shapes

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        L = self.plan.cache_len
        valid = caches[0] if L else None
        rest = caches[1:] if L else caches
        new: list[torch.Tensor] = []
        i = 0
        for layer in self.layers:
            n = len(layer.cache_shapes(1))
            x, c = layer.forward_chunk(x, rest[i:i + n], valid)
            new += c
            i += n
        if L:
            assert valid is not None
            new.insert(0, torch.cat([valid, torch.ones_like(x[:, :, 0])], dim=1)[:, -L:])
        return x, new
