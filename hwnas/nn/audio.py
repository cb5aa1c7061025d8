"""Speech-like audio made on the spot: inputs for calibrating and checking a
graph whose ranges match speech features without shipping recordings."""

from __future__ import annotations

import math

import torch

from hwnas.nn.frontend import SAMPLE_RATE


def synthetic_audio(seconds: float, seed: int) -> torch.Tensor:
    """Speech-like 16 kHz waveform: voiced segments with gliding harmonics,
    unvoiced noise segments and pauses."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * SAMPLE_RATE)
    t = torch.arange(n) / SAMPLE_RATE
    wave = torch.zeros(n)
    pos = 0
    while pos < n:
        seg = int(SAMPLE_RATE * (0.05 + 0.25 * torch.rand(1, generator=g).item()))
        kind = torch.randint(0, 3, (1,), generator=g).item()
        sl = slice(pos, min(n, pos + seg))
        tt = t[sl] - t[pos]
        if kind == 0:  # voiced
            f0 = 90 + 160 * torch.rand(1, generator=g).item()
            glide = (torch.rand(1, generator=g).item() - 0.5) * 80
            phase = 2 * math.pi * (f0 * tt + 0.5 * glide * tt ** 2)
            amps = torch.rand(12, generator=g) / torch.arange(1, 13)
            wave[sl] = sum(a * torch.sin(k * phase) for k, a in enumerate(amps, start=1))
        elif kind == 1:  # unvoiced
            wave[sl] = 0.3 * torch.randn(tt.shape[0], generator=g)
        pos += seg
    wave = wave + 0.01 * torch.randn(n, generator=g)
    return wave / wave.abs().max().clamp(min=1e-6) * 0.5
