"""Acoustic front-ends.

Where feature extraction sits: the STFT (25 ms Hann window, 10 ms hop, 16 kHz)
and, for log-mel and MFCC, the fixed filterbank and DCT run *outside* the
network in :class:`FeatureExtractor` -- the same code in training, calibration
and deployment, as a DSP stage beside the model. The learnable front-end is the
exception by design: the network receives the log-power spectrum and its first
layer is a filterbank learned with the rest of the model
(:class:`LearnableFilterbank`), so the exported graph contains it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SAMPLE_RATE = 16000
N_FFT = 400          # 25 ms
HOP = 160            # 10 ms
N_BINS = N_FFT // 2 + 1
EPS = 1e-6


def mel_filterbank(n_filters: int, n_bins: int = N_BINS, sample_rate: int = SAMPLE_RATE,
                   f_min: float = 20.0, f_max: float | None = None) -> torch.Tensor:
    """HTK-style triangular mel filterbank, shape (n_filters, n_bins)."""
    f_max = f_max or sample_rate / 2

    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    cpu = torch.device("cpu")   # also when modules are built on the meta device
    mels = torch.linspace(hz_to_mel(torch.tensor(f_min, device=cpu)).item(),
                          hz_to_mel(torch.tensor(f_max, device=cpu)).item(), n_filters + 2,
                          device=cpu)
    hz = mel_to_hz(mels)
    bins = torch.linspace(0, sample_rate / 2, n_bins, device=cpu)
    lower, center, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (bins[None] - lower) / (center - lower)
    down = (upper - bins[None]) / (upper - center)
    return torch.clamp(torch.minimum(up, down), min=0.0)


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II, shape (n, n): row k is basis k."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None]
    m = torch.cos(math.pi / n * (i + 0.5) * k) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m.float()


def input_dim(frontend: str, n_filters: int) -> int:
    """Width of the feature frames the network receives."""
    return N_BINS if frontend == "learnable" else n_filters


class FeatureExtractor(nn.Module):
    """Waveform (B, S) at 16 kHz -> feature frames (B, T, input_dim).

    T = 1 + (S - N_FFT) // HOP (no centre padding, so streaming extraction
    frame by frame gives identical frames). MFCCs use as many cepstra as mel
    filters (Kaldi's high-resolution MFCC convention).
    """

    def __init__(self, frontend: str, n_filters: int) -> None:
        super().__init__()
        if frontend not in ("logmel", "mfcc", "learnable"):
            raise ValueError(f"frontend: unknown kind {frontend!r}")
        self.frontend = frontend
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("mel", mel_filterbank(n_filters), persistent=False)
        self.register_buffer("dct", dct_matrix(n_filters), persistent=False)

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 1:
            wave = wave[None]
        if wave.shape[-1] < N_FFT:
            raise ValueError(f"waveform too short: {wave.shape[-1]} samples < {N_FFT}")
        spec = torch.stft(wave, N_FFT, HOP, window=self.window, center=False,
                          return_complex=True)
        power = spec.abs().pow(2).transpose(1, 2)  # (B, T, N_BINS)
        if self.frontend == "learnable":
            return torch.log(power + EPS)
        logmel = torch.log(power @ self.mel.T + EPS)
        return logmel if self.frontend == "logmel" else logmel @ self.dct.T

    @staticmethod
    def num_frames(num_samples: int) -> int:
        return 1 + (num_samples - N_FFT) // HOP


class LearnableFilterbank(nn.Module):
    """A filterbank learned with the model, applied to the log-power spectrum:
    (B, T, N_BINS) -> (B, T, n_filters). Initialised as a row-normalised mel
    filterbank, so it starts as a log-domain mel average and then adapts."""

    def __init__(self, n_filters: int) -> None:
        super().__init__()
        self.proj = nn.Linear(N_BINS, n_filters)
        with torch.no_grad():
            fb = mel_filterbank(n_filters)
            self.proj.weight.copy_(fb / fb.sum(dim=1, keepdim=True).clamp(min=EPS))
            self.proj.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)
