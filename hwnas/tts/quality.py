"""TTS quality: mel L1, mel-cepstral distortion, and a Griffin-Lim vocoder
to listen to (and transcribe) what a model says.

MCD here is computed from the 80-band log-mel frames (cepstra: an
orthonormal DCT of half the log power, i.e. of the log amplitude; c1-c24,
c0 left out as loudness), with the true durations so that frames line up
without DTW: ``10 / ln 10 * sqrt(2 * sum_d (c_d - c'_d)^2)`` averaged over
frames. It is not SPTK's mel-cepstrum, so compare it within hwnas only.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hwnas.nn.frontend import EPS, HOP, N_BINS, N_FFT, dct_matrix, mel_filterbank

MCD_COEFFS = 24
GRIFFIN_LIM_ITERS = 32


def mel_cepstra(logmel: torch.Tensor) -> torch.Tensor:
    """(T, n_mels) natural-log mel power -> (T, MCD_COEFFS) cepstra c1..c24."""
    c = (0.5 * logmel) @ dct_matrix(logmel.shape[-1]).T.to(logmel.dtype)
    return c[..., 1:MCD_COEFFS + 1]


def mcd_db(ref: torch.Tensor, hyp: torch.Tensor) -> float:
    """Mean mel-cepstral distortion (dB) of two aligned (T, n_mels) log-mels."""
    d = mel_cepstra(ref) - mel_cepstra(hyp)
    return float((10.0 / math.log(10.0)) * torch.sqrt(2.0 * (d ** 2).sum(-1)).mean())


def griffin_lim(logmel: torch.Tensor, iters: int = GRIFFIN_LIM_ITERS, seed: int = 0
                ) -> np.ndarray:
    """(T, n_mels) log-mel power -> 16 kHz waveform: the power spectrum by
    the filterbank's pseudo-inverse (clamped at zero), then Griffin-Lim's
    phase iterations with the ASR front-end's window and hop."""
    fb = mel_filterbank(logmel.shape[-1]).double()                     # (M, N_BINS)
    power = torch.exp(logmel.double()) - EPS
    lin = torch.clamp(power @ torch.linalg.pinv(fb).T, min=0.0)      # (T, N_BINS)
    mag = torch.sqrt(lin).T[None]                                      # (1, N_BINS, T)
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    phase = torch.exp(2j * math.pi * torch.rand(mag.shape, generator=g, dtype=torch.float64))
    # centred frames: the Hann window's zero ends fail istft's overlap check
    # without padding (the front-end's uncentred frames sit 12.5 ms later)
    n = (mag.shape[-1] - 1) * HOP
    assert mag.shape[1] == N_BINS
    wave = torch.zeros(1, n, dtype=torch.float64)
    for _ in range(max(1, iters)):
        wave = torch.istft(mag * phase, N_FFT, HOP, window=window, center=True, length=n)
        spec = torch.stft(wave, N_FFT, HOP, window=window, center=True, return_complex=True)
        phase = torch.exp(1j * torch.angle(spec))
    wave = torch.istft(mag * phase, N_FFT, HOP, window=window, center=True, length=n)[0]
    peak = float(wave.abs().max())
    return (wave / peak * 0.9 if peak > 0 else wave).float().numpy()
