"""Representative and held-out inputs for quantisation and parity checks.

Features come from synthetic audio (harmonic tones with gliding pitch, noise
bursts and silences) through the real :class:`FeatureExtractor`, so their
ranges match speech features; chunk graphs are driven as a stream so the cache
inputs hold the values they have in use, not zeros.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hwnas.asr.models.graphs import ChunkGraph, UtteranceGraph
from hwnas.nn.frontend import HOP, N_FFT, SAMPLE_RATE, FeatureExtractor


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


def _features(graph: ChunkGraph | UtteranceGraph, frames: int, seed: int) -> torch.Tensor:
    arch = graph.model.arch
    seconds = (frames - 1) * HOP / SAMPLE_RATE + N_FFT / SAMPLE_RATE
    wave = synthetic_audio(seconds + 0.01, seed)
    feats = FeatureExtractor(arch.frontend, arch.n_filters)(wave)
    return feats[:, :frames]


def graph_inputs(graph: ChunkGraph | UtteranceGraph, n: int, seed: int) -> list[list[np.ndarray]]:
    """``n`` input sets for ``graph``, in its input order."""
    if hasattr(graph, "sample_inputs"):   # a graph that knows its own inputs (TTS)
        return graph.sample_inputs(n, seed)
    specs = graph.inputs
    samples: list[list[np.ndarray]] = []
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if isinstance(graph, UtteranceGraph):
            for i in range(n):
                feats = _features(graph, specs[0].shape[1], seed * 1000 + i)
                ins = [feats] + graph.example_inputs(seed * 1000 + i)[1:]
                samples.append([x.numpy() for x in ins])
            return samples
        model = graph.model
        state = graph.example_inputs(seed)[1:]
        utter = 0
        while len(samples) < n:
            feats = _features(graph, 400, seed * 1000 + utter)
            utter += 1
            state = graph.example_inputs(seed)[1:]  # a new stream starts from zeros
            for chunk in model.split_chunks(feats):
                ins = [chunk] + list(state)
                if graph.rnnt:  # a random previous token, as during decoding
                    V = model.arch.vocab_size
                    tok = torch.randint(0, V, (1,), generator=rng)
                    ins[1 + graph.n_cache] = torch.nn.functional.one_hot(tok, V).float()
                samples.append([x.numpy() for x in ins])
                outs = graph(*ins)
                nxt = list(ins[1:])
                for o, i in graph.feedback.items():
                    nxt[i - 1] = outs[o]
                state = nxt
                if len(samples) == n:
                    break
    return samples
