"""Transformer encoder (pre-norm). Position information comes from a
depthwise convolutional position embedding in front of the layers (as in
wav2vec 2.0), causal in streaming mode, plus a relative bias for ``relpos``.
Input/output (B, T, d_model)."""

from __future__ import annotations

import torch
from torch import nn

from hwnas.asr import ArchConfig
from hwnas.asr.models.encoders._attention_stack import AttentionStack, attention_plan
from hwnas.nn.attention import AttentionPlan, SelfAttention
from hwnas.nn.common import FeedForward, TimeConv, chunk_call, keep_frames

POS_CONV_KERNEL = 15


class TransformerLayer(nn.Module):
    def __init__(self, d: int, plan: AttentionPlan, ffn_ratio: int) -> None:
        super().__init__()
        self.att_norm = nn.LayerNorm(d)
        self.att = SelfAttention(d, plan)
        self.ff = FeedForward(d, ffn_ratio)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                valid: torch.Tensor | None) -> torch.Tensor:
        x = x + self.att(self.att_norm(x), mask, valid)
        return x + self.ff(x)

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return self.att.cache_shapes(B)

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        a, c = chunk_call(self.att, self.att_norm(x), caches)
        x = x + a
        return x + self.ff(x), c


class TransformerEncoder(nn.Module):
    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        plan = attention_plan(arch)
        assert arch.ffn_ratio is not None
        self.pos = TimeConv(arch.d_model, arch.d_model, POS_CONV_KERNEL,
                            causal=arch.streaming, depthwise=True)
        self.stack = AttentionStack(plan, [TransformerLayer(arch.d_model, plan, arch.ffn_ratio)
                                           for _ in range(arch.num_layers)])
        self.norm = nn.LayerNorm(arch.d_model)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if lengths is not None:
            x = x * keep_frames(x, lengths)
        x = x + self.pos(x)
        return self.norm(self.stack(x, lengths))

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return self.pos.cache_shapes(B) + self.stack.cache_shapes(B)

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        p, cp = chunk_call(self.pos, x, caches[:1])
        y, cs = chunk_call(self.stack, x + p, caches[1:])
        return self.norm(y), cp + cs


def transformer(arch: ArchConfig) -> TransformerEncoder:
    return TransformerEncoder(arch)
