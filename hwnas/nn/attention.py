"""Self-attention variants and the masks that make streaming exact.

Variants (``ArchConfig.attention``):
  mhsa    multi-head scaled dot-product self-attention
  relpos  mhsa plus a learned relative-position bias per head (clipped distance)
  local   mhsa restricted to a window of +-w frames
  linear  linear-complexity attention with the elu+1 feature map

Masking multiplies the softmax output by the 0/1 mask and renormalises. This
equals a masked softmax exactly, and keeps large negative constants out of the
graph, which would ruin int8 quantisation of the score tensors.

In streaming mode frame i of a chunk starting at s may attend to frame j iff
s - cache_len <= j < s + chunk (linear attention: any j before the chunk end)
and, for local attention, |i - j| <= w; cache_len = left_chunks * chunk (local:
at most w). Chunk mode keeps the keys/values of the last ``cache_len`` frames
(or the running linear-attention state). A stream starts with a zero cache,
and the full-sequence forward gives the first chunks the same zero key/value
slots, so chunk by chunk equals the full forward exactly with no run-time
validity mask (whose renormalisation can divide by zero in int8).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

MAX_REL = 64  # relative distances beyond this share one bias


@dataclass(frozen=True)
class AttentionPlan:
    variant: str
    heads: int
    window: int | None = None       # local attention: frames each side
    chunk: int | None = None        # streaming: encoder frames per chunk
    left_chunks: int | None = None  # streaming: chunks of left context (None: unlimited)

    @property
    def cache_len(self) -> int:
        """Frames of keys/values kept between chunks."""
        if self.chunk is None or self.variant == "linear":
            return 0
        left = (self.left_chunks or 0) * self.chunk
        return min(left, self.window) if self.variant == "local" else left

    def full_mask(self, T: int, valid: torch.Tensor | None,
                  device: torch.device | None = None) -> torch.Tensor | None:
        """(B|1, T, cache_len + T) bool mask for a full sequence on ``device``,
        or None when all is allowed. Streaming keys start with ``cache_len``
        zero slots: the zero-initialised cache a stream starts with (see the
        module doc)."""
        L = self.cache_len
        i = torch.arange(T, device=device)[:, None]
        j = torch.arange(-L, T, device=device)[None]
        allowed: torch.Tensor | None = None

        def both(m: torch.Tensor) -> torch.Tensor:
            return m if allowed is None else allowed & m

        if self.chunk is not None:
            start = (i // self.chunk) * self.chunk
            allowed = both(j < start + self.chunk)
            if self.variant != "linear":
                allowed = both(j >= start - L)
        if self.variant == "local":
            allowed = both((i - j).abs() <= self.window)
        if valid is not None and not bool(valid.all()):
            slots = torch.ones(valid.shape[0], L, dtype=torch.bool, device=valid.device)
            kp = torch.cat([slots, valid], dim=1)[:, None, :]
            return kp if allowed is None else allowed[None] & kp
        return None if allowed is None else allowed[None]

    def chunk_mask(self) -> torch.Tensor | None:
        """Static (C, cache_len + C) mask of a chunk's queries against its keys."""
        if self.variant != "local":
            return None
        assert self.chunk is not None
        q = self.cache_len + torch.arange(self.chunk)[:, None]
        k = torch.arange(self.cache_len + self.chunk)[None]
        return (q - k).abs() <= self.window


class SelfAttention(nn.Module):
    """(B, T, D) -> (B, T, D)."""

    def __init__(self, d: int, plan: AttentionPlan) -> None:
        super().__init__()
        if d % plan.heads:
            raise ValueError(f"heads={plan.heads} must divide d_model={d}")
        self.plan, self.h, self.dk, self.d = plan, plan.heads, d // plan.heads, d
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        if plan.variant == "relpos":
            self.rel = nn.Parameter(torch.randn(plan.heads, 2 * MAX_REL + 1) * 0.02)

    def _heads(self, x: torch.Tensor) -> list[torch.Tensor]:
        B, T, _ = x.shape
        y, d = self.qkv(x), self.d  # static slices: converters choke on traced Split sizes
        return [y[..., i * d:(i + 1) * d].reshape(B, T, self.h, self.dk).transpose(1, 2)
                for i in range(3)]

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        B, H, T, dk = x.shape
        return self.out(x.transpose(1, 2).reshape(B, T, H * dk))

    def _rel_bias(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        idx = (k_pos[None] - q_pos[:, None]).clamp(-MAX_REL, MAX_REL) + MAX_REL
        return self.rel[:, idx]  # (H, Tq, Tk)

    def _softmax_attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        mask: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
        s = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(self.dk))
        if bias is not None:
            s = s + bias
        p = torch.softmax(s, dim=-1)
        if mask is not None:
            p = p * mask
            p = p / (p.sum(dim=-1, keepdim=True) + 1e-9)
        return p @ v

    @staticmethod
    def _phi(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.elu(x) + 1.0

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        """``mask`` from :meth:`AttentionPlan.full_mask`; ``valid`` (B, T) marks real frames."""
        q, k, v = self._heads(x)
        T = x.shape[1]
        if self.plan.variant == "linear":
            fq, fk = self._phi(q), self._phi(k)
            if self.plan.chunk is None:  # non-causal: O(T d^2) form
                if valid is not None:
                    fk = fk * valid[:, None, :, None].to(fk.dtype)
                kv = fk.transpose(-1, -2) @ v
                num, den = fq @ kv, fq @ fk.sum(dim=2).unsqueeze(-1)
            else:  # chunk-causal: the masked quadratic form equals the recurrent one
                a = fq @ fk.transpose(-1, -2)
                if mask is not None:
                    a = a * mask[:, None].to(a.dtype)
                num, den = a @ v, a.sum(dim=-1, keepdim=True)
            return self._merge(num / (den + 1e-6))
        L = self.plan.cache_len
        if L:  # the zero slots of a stream's initial cache
            zeros = q.new_zeros(q.shape[0], self.h, L, self.dk)
            k, v = torch.cat([zeros, k], dim=2), torch.cat([zeros, v], dim=2)
        bias = None
        if self.plan.variant == "relpos":
            bias = self._rel_bias(torch.arange(T, device=x.device),
                                  torch.arange(-L, T, device=x.device))
        m = None if mask is None else mask[:, None].to(x.dtype)
        return self._merge(self._softmax_attend(q, k, v, m, bias))

    # --- chunk mode -----------------------------------------------------------
    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        if self.plan.variant == "linear":
            return [(B, self.h, self.dk, self.dk), (B, self.h, self.dk)]
        L = self.plan.cache_len
        return [(B, self.h, L, self.dk), (B, self.h, L, self.dk)] if L else []

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        q, k, v = self._heads(x)
        C = x.shape[1]
        if self.plan.variant == "linear":
            s, z = caches
            fq, fk = self._phi(q), self._phi(k)
            s = s + fk.transpose(-1, -2) @ v
            z = z + fk.sum(dim=2)
            out = (fq @ s) / (fq @ z.unsqueeze(-1) + 1e-6)
            return self._merge(out), [s, z]
        L = self.plan.cache_len
        if L:
            k = torch.cat([caches[0], k], dim=2)
            v = torch.cat([caches[1], v], dim=2)
        bias = None
        if self.plan.variant == "relpos":
            bias = self._rel_bias(L + torch.arange(C, device=x.device),
                                  torch.arange(L + C, device=x.device))
        # a static 2-D (C, L + C) band: converters mis-broadcast 4-D masks
        static = self.plan.chunk_mask()
        mask = None if static is None else static.to(x.dtype)
        out = self._softmax_attend(q, k, v, mask, bias)
        new = [k[:, :, -L:], v[:, :, -L:]] if L else []
        return self._merge(out), new
