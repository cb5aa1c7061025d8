"""Conformer encoder (Gulati et al., 2020): macaron feed-forwards around
self-attention and a convolution module.

Input/output (B, T, d_model). The depthwise convolution is causal in streaming
mode (or when ``causal_conv``); LayerNorm replaces BatchNorm so that padded
batches and single chunks normalise identically.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.asr import ArchConfig
from hwnas.asr.models.encoders._attention_stack import AttentionStack, attention_plan
from hwnas.nn.attention import AttentionPlan, SelfAttention
from hwnas.nn.common import FeedForward, TimeConv, chunk_call


class ConvModule(nn.Module):
    def __init__(self, d: int, kernel: int, causal: bool) -> None:
        super().__init__()
        self.d = d
        self.norm = nn.LayerNorm(d)
        self.pw1 = nn.Linear(d, 2 * d)
        self.dw = TimeConv(d, d, kernel, causal, depthwise=True)
        self.norm2 = nn.LayerNorm(d)
        self.pw2 = nn.Linear(d, d)

    def _pre(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pw1(self.norm(x))  # GLU with static slices (see attention._heads)
        return h[..., :self.d] * torch.sigmoid(h[..., self.d:])

    def _post(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(nn.functional.silu(self.norm2(x)))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        h = self._pre(x)
        if valid is not None:  # keep padding out of the convolution
            h = h * valid[..., None].to(h.dtype)
        return self._post(self.dw(h))

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, new = chunk_call(self.dw, self._pre(x), caches)
        return self._post(h), new


class ConformerLayer(nn.Module):
    def __init__(self, d: int, plan: AttentionPlan, ffn_ratio: int, kernel: int,
                 causal: bool) -> None:
        super().__init__()
        self.ff1 = FeedForward(d, ffn_ratio)
        self.att_norm = nn.LayerNorm(d)
        self.att = SelfAttention(d, plan)
        self.conv = ConvModule(d, kernel, causal)
        self.ff2 = FeedForward(d, ffn_ratio)
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                valid: torch.Tensor | None) -> torch.Tensor:
        x = x + 0.5 * self.ff1(x)
        x = x + self.att(self.att_norm(x), mask, valid)
        x = x + self.conv(x, valid)
        return self.norm(x + 0.5 * self.ff2(x))

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return self.att.cache_shapes(B) + self.conv.dw.cache_shapes(B)

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        n = len(self.att.cache_shapes(1))
        x = x + 0.5 * self.ff1(x)
        a, ca = chunk_call(self.att, self.att_norm(x), caches[:n])
        x = x + a
        c, cc = chunk_call(self.conv, x, caches[n:])
        x = x + c
        return self.norm(x + 0.5 * self.ff2(x)), ca + cc


def conformer(arch: ArchConfig) -> AttentionStack:
    plan = attention_plan(arch)
    assert arch.ffn_ratio is not None and arch.conv_kernel is not None
    return AttentionStack(plan, [
        ConformerLayer(arch.d_model, plan, arch.ffn_ratio, arch.conv_kernel,
                       arch.uses_conv_causally) for _ in range(arch.num_layers)])
