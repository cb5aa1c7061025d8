"""Encoder families, one module each. Every encoder maps (B, T, d_model) to
(B, T, d_model) and offers ``forward(x, lengths)``, ``cache_shapes(B)`` and
``forward_chunk(x, caches) -> (y, new_caches)``."""

from __future__ import annotations

from torch import nn

from hwnas.asr import ArchConfig


def build_encoder(arch: ArchConfig) -> nn.Module:
    from hwnas.asr.models.encoders import cnn_lstm, conformer, contextnet, rnn, transformer

    factories = {"conformer": conformer.conformer, "transformer": transformer.transformer,
                 "lstm": rnn.lstm, "blstm": rnn.blstm, "cnn_lstm": cnn_lstm.cnn_lstm,
                 "contextnet": contextnet.contextnet}
    if arch.encoder not in factories:
        raise ValueError(f"encoder: unknown family {arch.encoder!r}")
    return factories[arch.encoder](arch)
