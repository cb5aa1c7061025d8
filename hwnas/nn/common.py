"""Small building blocks shared by encoder and decoder families."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def length_mask(lengths: torch.Tensor | None, T: int, B: int) -> torch.Tensor:
    """(B, T) bool, True on valid frames."""
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool)
    return torch.arange(T, device=lengths.device)[None] < lengths[:, None]


def keep_frames(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, 1) multiplier in ``x``'s dtype: 1 on valid frames of (B, T, D) ``x``, else 0."""
    return length_mask(lengths, x.shape[1], x.shape[0])[..., None].to(x.dtype)


class FeedForward(nn.Module):
    """Pre-norm position-wise feed-forward: (B, T, D) -> (B, T, D)."""

    def __init__(self, d: int, ratio: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d * ratio), nn.SiLU(),
                                 nn.Linear(d * ratio, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TimeConv(nn.Module):
    """1-D convolution over time on (B, T, C) inputs.

    Causal mode pads k-1 frames on the left in full-sequence mode and keeps
    those frames as a cache (B, C, k-1) in chunk mode, so chunk-by-chunk output
    equals the full-sequence output. Non-causal mode pads symmetrically
    (full-context only).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, causal: bool,
                 depthwise: bool = False) -> None:
        super().__init__()
        if not causal and kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd for non-causal convolution, got {kernel}")
        self.kernel, self.causal, self.c_in = kernel, causal, c_in
        self.conv = nn.Conv1d(c_in, c_out, kernel, groups=c_in if depthwise else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        k = self.kernel - 1
        if k:
            # zeros made from the input rather than Pad/constants: onnx2tf
            # mis-infers the layout of padded 3-D tensors (see subsampling)
            left = k if self.causal else k // 2
            parts = [x[:, :, :1] * 0.0 + x.new_zeros(1, 1, left), x]
            if not self.causal:
                parts.append(parts[0])
            x = torch.cat(parts, dim=2)
        return self.conv(x).transpose(1, 2)

    def cache_shapes(self, B: int) -> list[tuple[int, ...]]:
        return [(B, self.c_in, self.kernel - 1)] if self.kernel > 1 else []

    def forward_chunk(self, x: torch.Tensor, caches: list[torch.Tensor]
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = x.transpose(1, 2)
        if self.kernel == 1:
            return self.conv(x).transpose(1, 2), []
        full = torch.cat([caches[0], x], dim=2)
        return self.conv(full).transpose(1, 2), [full[:, :, -(self.kernel - 1):]]


def cache_shapes_of(modules: Sequence[nn.Module], B: int) -> list[tuple[int, ...]]:
    """The caches of modules run one after another: each one's, in order."""
    return [s for m in modules for s in m.cache_shapes(B)]


def chunk_call(m: nn.Module, x: torch.Tensor, caches: list[torch.Tensor]
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``m.forward_chunk(x, caches)``, made through the module's own call, so
    that an exporter's trace names the ops inside by the module's path, as in
    an utterance graph (``/encoder/layers.1/conv/...``), instead of numbering
    anonymous scopes. Its ``forward`` is ``forward_chunk`` for this call only."""
    own = m.__dict__.get("forward")
    m.forward = m.forward_chunk
    try:
        return m(x, caches)
    finally:
        if own is None:
            del m.forward
        else:
            m.forward = own


def chunk_through(modules: Sequence[nn.Module], x: torch.Tensor, caches: list[torch.Tensor],
                  between: Callable[[int, torch.Tensor], torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``x`` through each module's ``forward_chunk`` in turn, each given its own
    slice of ``caches`` (as many as its ``cache_shapes`` lists); ``between(i,
    y)`` maps module i's output to the next input. Returns the output and the
    new caches in the same order (see :func:`cache_shapes_of`)."""
    new: list[torch.Tensor] = []
    i = 0
    for k, m in enumerate(modules):
        n = len(m.cache_shapes(1))
        x, c = chunk_call(m, x, caches[i:i + n])
        if between is not None:
            x = between(k, x)
        new += c
        i += n
    return x, new


def sinusoid_table(n: int, d: int) -> torch.Tensor:
    """Sinusoidal position table (n, d)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float32)
    angle = pos / torch.pow(10000.0, i / d)
    table = torch.zeros(n, d)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d // 2])
    return table


def zero_state(x: torch.Tensor, layers: int, hidden: int) -> torch.Tensor:
    """Zero LSTM state (layers, B, hidden) computed from ``x`` (B, T, D).

    A constant initial state, or an Expand, exports to ops that onnx2tf
    cannot turn into graph layers, and a 3-D state built directly gets its
    layout guessed wrongly; this builds it the way a chunk graph receives
    its state input: flat (B, layers * hidden), reshaped, then transposed."""
    flat = x[:, 0, :1] * 0.0 + x.new_zeros(1, layers * hidden)
    return flat.reshape(x.shape[0], layers, hidden).transpose(0, 1).contiguous()
