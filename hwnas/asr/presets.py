"""Named presets: hand-designed baselines in the style of torchaudio's small
model factories. Each resembles a well-known model, scaled where noted so it
can be trained and measured on a small machine."""

from __future__ import annotations

from hwnas.asr.arch import ArchConfig

_PRESETS: dict[str, tuple[str, dict[str, object]]] = {
    "conformer_s": (
        "Conformer-S (Gulati et al., 2020): 16 blocks, d=144, 4 heads, kernel 31, "
        "relative positions, RNN-T with a 1-layer 320 LSTM; full context",
        dict(frontend="logmel", n_filters=80, subsampling="conv2d4", encoder="conformer",
             streaming=False, num_layers=16, d_model=144, attention="relpos", heads=4,
             ffn_ratio=4, conv_kernel=31, causal_conv=False, decoder="rnnt",
             decoder_layers=1, decoder_dim=320)),
    "conformer_s_streaming": (
        "Conformer-S made streaming: 480 ms chunks, 2 chunks of left context, causal "
        "convolutions, RNN-T",
        dict(frontend="logmel", n_filters=80, subsampling="conv2d4", encoder="conformer",
             streaming=True, num_layers=16, d_model=144, attention="relpos", heads=4,
             ffn_ratio=4, conv_kernel=31, decoder="rnnt", decoder_layers=1,
             decoder_dim=320, chunk_ms=480, left_chunks=2, lookahead=0)),
    "conformer_xs": (
        "a 2-block Conformer (d=144) with CTC: the size a few CPU-minutes can train",
        dict(frontend="logmel", n_filters=80, subsampling="conv2d4", encoder="conformer",
             streaming=False, num_layers=2, d_model=144, attention="relpos", heads=4,
             ffn_ratio=4, conv_kernel=15, causal_conv=False, decoder="ctc")),
    "lstm_rnnt": (
        "streaming LSTM RNN-T for mobile (He et al., 2019), scaled from 8x2048 to "
        "4x256: frame stacking, 2-layer prediction network",
        dict(frontend="logmel", n_filters=80, subsampling="stack4", encoder="lstm",
             streaming=True, num_layers=4, d_model=256, decoder="rnnt", decoder_layers=2,
             decoder_dim=256, chunk_ms=240, lookahead=0)),
    "blstm_ctc": (
        "DeepSpeech2-like: conv subsampling, 4 bidirectional LSTM layers, CTC; full context",
        dict(frontend="logmel", n_filters=80, subsampling="conv2d4", encoder="blstm",
             streaming=False, num_layers=4, d_model=256, decoder="ctc")),
    "contextnet_s": (
        "ContextNet-S-like (Han et al., 2020): 8x subsampling, kernel-5 separable conv "
        "blocks with squeeze-and-excitation, RNN-T; 8 blocks instead of 23",
        dict(frontend="logmel", n_filters=80, subsampling="conv2d8", encoder="contextnet",
             streaming=False, num_layers=8, d_model=256, conv_kernel=5, causal_conv=False,
             decoder="rnnt", decoder_layers=1, decoder_dim=320)),
    "transformer_ctc": (
        "ESPnet-style Transformer with joint CTC/attention: 6 layers, d=256, 4 heads",
        dict(frontend="logmel", n_filters=80, subsampling="conv2d4", encoder="transformer",
             streaming=False, num_layers=6, d_model=256, attention="mhsa", heads=4,
             ffn_ratio=4, decoder="transformer", decoder_layers=2, decoder_dim=256)),
}


def preset_names() -> list[str]:
    return list(_PRESETS)


def preset(name: str, vocab_size: int = 64) -> ArchConfig:
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; one of {', '.join(_PRESETS)}")
    return ArchConfig(**_PRESETS[name][1], vocab_size=vocab_size)  # type: ignore[arg-type]


def preset_description(name: str) -> str:
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; one of {', '.join(_PRESETS)}")
    return _PRESETS[name][0]
