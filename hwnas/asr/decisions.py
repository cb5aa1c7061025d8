"""The speech decisions: the built-in ASR search space as a decision graph
(see :mod:`hwnas.space.decisions`), with the constants its rules read."""

from __future__ import annotations

from hwnas.space.decisions import Context, Decision

ATTENTION_ENCODERS = ("conformer", "transformer")
CONV_ENCODERS = ("conformer", "cnn_lstm", "contextnet")
BIDIRECTIONAL_ENCODERS = ("blstm",)
SUBSAMPLING_FACTOR = {"conv2d4": 4, "conv2d6": 6, "conv2d8": 8, "stack4": 4}
FRAME_SHIFT_MS = 10


def _is_attention(ctx: Context) -> bool:
    return ctx.get("encoder") in ATTENTION_ENCODERS


def _has_conv(ctx: Context) -> bool:
    return ctx.get("encoder") in CONV_ENCODERS


def _is_streaming(ctx: Context) -> bool:
    return bool(ctx.get("streaming"))


def _chunk_fits(chunk_ms: int, ctx: Context) -> bool:
    frame_ms = FRAME_SHIFT_MS * SUBSAMPLING_FACTOR[ctx["subsampling"]]
    return chunk_ms % frame_ms == 0


def default_decisions() -> list[Decision]:
    """The built-in speech search space, in decision order."""
    return [
        Decision("frontend", ("logmel", "mfcc", "learnable"),
                 "acoustic front-end: log-mel, MFCC, or a learnable filterbank"),
        Decision("n_filters", (40, 64, 80), "number of filterbank channels / cepstra",
                 numeric=True),
        Decision("subsampling", tuple(SUBSAMPLING_FACTOR),
                 "time reduction: causal conv2d x4/x6/x8, or stacking 4 frames"),
        Decision("encoder", ("conformer", "transformer", "lstm", "blstm", "cnn_lstm",
                             "contextnet"), "encoder family"),
        Decision("streaming", (False, True), "chunked streaming (True) or full context",
                 allowed=lambda v, c: not (v and c["encoder"] in BIDIRECTIONAL_ENCODERS),
                 reads=("encoder",),
                 rule="bidirectional encoders (blstm) are invalid in streaming mode"),
        Decision("num_layers", (1, 2, 4, 6, 8), "encoder layers (blocks)", numeric=True),
        Decision("d_model", (96, 144, 192, 256), "encoder width", numeric=True),
        Decision("attention", ("mhsa", "relpos", "local", "linear"),
                 "self-attention variant: multi-head, relative-position bias, "
                 "local window, linear-complexity",
                 applies=_is_attention, reads=("encoder",),
                 rule="applies only to conformer and transformer encoders"),
        Decision("heads", (2, 4, 8), "attention heads", numeric=True,
                 applies=_is_attention,
                 allowed=lambda v, c: c["d_model"] % v == 0,
                 reads=("encoder", "d_model"),
                 rule="applies only to attention encoders; must divide d_model"),
        Decision("local_window", (8, 16, 32), "local attention window (encoder frames)",
                 numeric=True,
                 applies=lambda c: _is_attention(c) and c.get("attention") == "local",
                 reads=("encoder", "attention"),
                 rule="applies only to local attention"),
        Decision("ffn_ratio", (2, 4), "feed-forward expansion ratio", numeric=True,
                 applies=_is_attention, reads=("encoder",),
                 rule="applies only to attention encoders"),
        Decision("conv_kernel", (3, 7, 15, 31), "convolution kernel (frames)", numeric=True,
                 applies=_has_conv, allowed=lambda v, c: v % 2 == 1, reads=("encoder",),
                 rule="applies only to conformer, cnn_lstm and contextnet; must be odd"),
        Decision("causal_conv", (False, True), "causal convolutions in full-context mode",
                 applies=lambda c: _has_conv(c) and not _is_streaming(c),
                 reads=("encoder", "streaming"),
                 rule="applies only to convolutional encoders in full-context mode "
                      "(streaming convolutions are always causal)"),
        Decision("decoder", ("ctc", "rnnt", "las", "transformer"),
                 "decoder: CTC, RNN-T, LAS-style attention, transformer (the last two "
                 "with a joint CTC head)"),
        Decision("decoder_layers", (1, 2), "decoder / prediction-network layers",
                 numeric=True,
                 applies=lambda c: c.get("decoder") != "ctc", reads=("decoder",),
                 rule="does not apply to CTC"),
        Decision("decoder_dim", (128, 256), "decoder / prediction-network width",
                 numeric=True,
                 applies=lambda c: c.get("decoder") != "ctc", reads=("decoder",),
                 rule="does not apply to CTC"),
        Decision("chunk_ms", (240, 480, 960), "streaming chunk length (ms)", numeric=True,
                 applies=_is_streaming, allowed=_chunk_fits,
                 reads=("streaming", "subsampling"),
                 rule="applies only to streaming; must be a multiple of the "
                      "subsampled frame (10 ms x subsampling factor)"),
        Decision("left_chunks", (0, 1, 2, 4), "attention left context, in chunks",
                 numeric=True,
                 applies=lambda c: _is_streaming(c) and _is_attention(c)
                 and c.get("attention") != "linear",
                 reads=("streaming", "encoder", "attention"),
                 rule="applies only to streaming attention encoders other than linear "
                      "attention (whose state covers all the past)"),
        Decision("lookahead", (0, 1, 2), "look-ahead (encoder frames) past the chunk end",
                 numeric=True, applies=_is_streaming, reads=("streaming",),
                 rule="applies only to streaming"),
    ]
