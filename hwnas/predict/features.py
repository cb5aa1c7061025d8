"""Predictor features: the space's encoding plus an analytic cost model.

The cost model derives, from the architecture alone, what one device-graph call
does (the graph the profiler measures: one chunk for streaming architectures,
one 4.8 s utterance otherwise): FLOPs and parameters per operator kind,
sequence lengths, attention key length, cache and activation sizes, and a
rough count of graph operators (per-op overhead dominates small models).

It is written in NumPy over columns of many architectures at once, so that a
search can score 100,000s of candidates per second; ``tests/test_predict.py``
checks its FLOPs and parameter totals against the counted values in the
shipped profile (:func:`hwnas.models.stats.model_stats`).

FLOPs count 2 per multiply-add of matrix products and convolutions only (the
convention of PyTorch's FLOP counter); element-wise work shows up in the
activation and operator counts instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.space import ArchConfig, default_space
from hwnas.space.arch import DECODE_TOKENS, UTTERANCE_FRAMES
from hwnas.space.decisions import SUBSAMPLING_FACTOR
from hwnas.space.space import columns

#: Bump when a feature is added, removed or computed differently: a predictor
#: refuses features of another schema.
SCHEMA_VERSION = 1

N_BINS = 201               # log-power bins of the learnable front-end (frontend.N_BINS)
POS_CONV_KERNEL = 15       # transformer position convolution
CONTEXTNET_CONVS = 3       # depthwise-separable convs per ContextNet block
SE_REDUCTION = 8
CNN_LSTM_CONVS = 2
DECODER_HEADS = 4
CONV_SUB_LAYERS = {"conv2d4": [(3, 2), (3, 2)], "conv2d6": [(3, 2), (5, 3)],
                   "conv2d8": [(3, 2), (3, 2), (3, 2)]}

KINDS = ("frontend", "subsampling", "attention_proj", "attention_scores", "ffn", "conv",
         "lstm", "se", "decoder", "joint")
ANALYTIC = ([f"flops_{k}" for k in KINDS] + [f"params_{k}" for k in KINDS] +
            ["flops", "params", "in_frames", "enc_frames", "key_len", "cache_elems",
             "input_elems", "output_elems", "act_elems", "score_elems", "ops",
             "weight_mb", "flops_per_param", "flops_per_op", "lstm_steps"])

def feature_names() -> list[str]:
    return default_space().feature_names() + ANALYTIC


def analytic(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The cost model; every entry an array over architectures."""
    enc, dec, att = cols["encoder"], cols["decoder"], cols["attention"]
    stream = cols["streaming"] != 0
    f, d, L = cols["n_filters"], cols["d_model"], cols["num_layers"]
    V, P, DL = cols["vocab_size"], cols["decoder_dim"], cols["decoder_layers"]
    k, r, h = cols["conv_kernel"], cols["ffn_ratio"], np.maximum(cols["heads"], 1)
    factor = np.array([SUBSAMPLING_FACTOR[s] for s in cols["subsampling"]], dtype=np.float64)
    learn = cols["frontend"] == "learnable"
    F = np.where(learn, N_BINS, f)
    C = np.where(stream, cols["chunk_ms"] / (10 * factor), 0)
    la = cols["lookahead"] * factor
    T_in = np.where(stream, C * factor + la, UTTERANCE_FRAMES)
    T = np.where(stream, C, UTTERANCE_FRAMES / factor)
    zero = np.zeros_like(d)
    fl = {kind: zero.copy() for kind in KINDS}
    pa = {kind: zero.copy() for kind in KINDS}
    ops = zero.copy()
    act = T_in * F
    cache = zero.copy()

    # front-end, look-ahead convolution
    fl["frontend"] += np.where(learn, 2 * T_in * N_BINS * f, 0)
    pa["frontend"] += np.where(learn, N_BINS * f + f, 0)
    has_la = la > 0
    fl["frontend"] += np.where(has_la, 2 * f * (la + 1) * np.where(stream, C * factor,
                                                                   UTTERANCE_FRAMES), 0)
    pa["frontend"] += np.where(has_la, f * (la + 1) + f, 0)
    ops += learn * 2 + has_la * 3

    # subsampling
    ch = np.maximum(16, d // 4)
    for kind, layers in CONV_SUB_LAYERS.items():
        m = cols["subsampling"] == kind
        context, stride = 0, 1
        for kt, st in layers:
            context += (kt - st) * stride
            stride *= st
        t = np.where(stream, context + C * factor, context + UTTERANCE_FRAMES)
        fr, c_in = f.copy(), 1
        sf = zero.copy()
        sp = zero.copy()
        for kt, st in layers:
            t = (t - kt) // st + 1
            fr = (fr + 2 - 3) // 2 + 1
            sf += 2 * ch * c_in * kt * 3 * t * fr
            sp += ch * c_in * kt * 3 + ch
            act += m * ch * t * fr
            c_in = ch
        sf += 2 * t * ch * fr * d
        sp += ch * fr * d + d
        fl["subsampling"] += m * sf
        pa["subsampling"] += m * sp
        ops += m * (3 * len(layers) + 6)
        cache += m * stream * context * f
    stack = cols["subsampling"] == "stack4"
    fl["subsampling"] += stack * 2 * T * 4 * f * d
    pa["subsampling"] += stack * (4 * f * d + d)
    ops += stack * 3

    # attention encoders
    is_att = np.isin(enc, ("conformer", "transformer"))
    linear = att == "linear"
    local = att == "local"
    left = np.where(stream & ~linear, cols["left_chunks"] * C, 0)
    Lc = np.where(local, np.minimum(left, cols["local_window"]), left)
    K = np.where(is_att, Lc + T, 0)
    dk = d / h
    proj = 2 * T * d * 3 * d + 2 * T * d * d
    scores = np.where(linear, np.where(stream, 4 * T * d * dk + 2 * T * d,
                                       4 * T * d * dk + 2 * T * d),
                      4 * T * K * d)
    n_att = is_att * L
    fl["attention_proj"] += n_att * proj
    fl["attention_scores"] += n_att * scores
    pa["attention_proj"] += n_att * (4 * d * d + 4 * d + 2 * d)  # + pre-norm
    pa["attention_scores"] += n_att * np.where(att == "relpos", h * 129, 0)
    score_elems = n_att * np.where(linear, h * dk * dk, h * T * K)
    act += n_att * (4 * T * d) + score_elems
    ops += n_att * np.where(linear, 24, 18 + 4 * (local | (att == "relpos")))
    cache += n_att * stream * np.where(linear, h * dk * dk + h * dk, 2 * Lc * d)

    conformer = enc == "conformer"
    n_ffn = L * np.where(conformer, 2, np.where(enc == "transformer", 1, 0))
    fl["ffn"] += n_ffn * 4 * T * d * r * d
    pa["ffn"] += n_ffn * (2 * r * d * d + r * d + 3 * d)
    act += n_ffn * T * d * (r + 1)
    ops += n_ffn * 7
    # conformer convolution module: pointwise GLU, depthwise, pointwise
    fl["conv"] += conformer * L * (2 * T * d * 2 * d + 2 * d * k * T + 2 * T * d * d)
    pa["conv"] += conformer * L * (2 * d * d + 2 * d + d * k + d + d * d + d + 4 * d + 2 * d)
    act += conformer * L * 5 * T * d
    ops += conformer * L * 16
    cache += conformer * L * d * (k - 1)
    # transformer position convolution and final norm
    tr = enc == "transformer"
    fl["conv"] += tr * 2 * d * POS_CONV_KERNEL * T
    pa["conv"] += tr * (d * POS_CONV_KERNEL + d + 2 * d)
    ops += tr * 8
    cache += tr * stream * d * (POS_CONV_KERNEL - 1)

    # recurrent encoders
    lstm, blstm, cnl = enc == "lstm", enc == "blstm", enc == "cnn_lstm"
    H = np.where(blstm, d / 2, d)
    dirs = np.where(blstm, 2, 1)
    rec = lstm | blstm | cnl
    lstm_f = 2 * 4 * H * (d + H) * T * dirs * L
    fl["lstm"] += rec * lstm_f
    pa["lstm"] += rec * L * dirs * (4 * H * (d + H) + 8 * H)
    act += rec * L * T * 4 * H * dirs
    ops += rec * (6 + 2 * L)
    cache += rec * stream * 2 * L * H * dirs
    lstm_steps = rec * T * L
    fl["conv"] += cnl * CNN_LSTM_CONVS * 2 * d * d * k * T
    pa["conv"] += cnl * CNN_LSTM_CONVS * (d * d * k + d + 2 * d)
    act += cnl * CNN_LSTM_CONVS * 2 * T * d
    ops += cnl * CNN_LSTM_CONVS * 8
    cache += cnl * CNN_LSTM_CONVS * d * (k - 1)

    # ContextNet
    cn = enc == "contextnet"
    fl["conv"] += cn * L * CONTEXTNET_CONVS * (2 * d * k * T + 2 * T * d * d)
    pa["conv"] += cn * L * CONTEXTNET_CONVS * (d * k + d + d * d + d + 2 * d)
    se_rows = np.where(stream, T, 1)
    fl["se"] += cn * L * 2 * 2 * se_rows * d * (d // SE_REDUCTION)
    pa["se"] += cn * L * (2 * d * (d // SE_REDUCTION) + d + d // SE_REDUCTION)
    act += cn * L * (CONTEXTNET_CONVS * 3 + 2) * T * d
    ops += cn * L * (CONTEXTNET_CONVS * 10 + 12 + stream * 6)
    cache += cn * L * (CONTEXTNET_CONVS * d * (k - 1) + stream * (d + 1))

    # decoders: CTC head unless RNN-T
    ctc = dec != "rnnt"
    fl["joint"] += ctc * 2 * T * d * V
    pa["joint"] += ctc * (d * V + V)
    ops += ctc * 2
    rnnt = dec == "rnnt"
    fl["decoder"] += rnnt * (2 * V * P + 2 * 4 * P * 2 * P * DL + 2 * P * P)
    pa["decoder"] += rnnt * (V * P + DL * (8 * P * P + 8 * P) + P * P + P)
    fl["joint"] += rnnt * (2 * T * d * P + 2 * T * P * V)
    pa["joint"] += rnnt * (d * P + P + P * V + V)
    act += rnnt * T * (P + V)
    ops += rnnt * (14 + 2 * DL)
    cache += rnnt * 2 * DL * P
    # attention decoders run in utterance graphs only (a chunk graph is the CTC pass)
    U = DECODE_TOKENS
    las = (dec == "las") & ~stream
    fl["decoder"] += las * (2 * U * V * P + 2 * 4 * P * 2 * P * U * DL + 2 * U * P * d
                            + 4 * U * T * d + 2 * U * (P + d) * V)
    tdec = (dec == "transformer") & ~stream
    per_layer = (2 * U * P * P * 4 + 2 * U * P * 2 * P + 4 * U * U * P + 2 * T * d * 2 * P
                 + 4 * U * T * P + 2 * U * P * 4 * P * 2)
    fl["decoder"] += tdec * (2 * U * V * P + DL * per_layer + 2 * U * P * V)
    pa["decoder"] += las * (V * P + DL * (8 * P * P + 8 * P) + P * d + d + (P + d) * V + V)
    pa["decoder"] += tdec * (V * P + DL * (4 * P * P + 4 * P + P * P + P + 2 * P * d + 2 * P
                                           + P * P + P + 8 * P * P + 5 * P + 6 * P)
                             + 2 * P + P * V + V)
    act += las * U * (T + 4 * P) + tdec * DL * (2 * DECODER_HEADS * U * T + 10 * U * P)
    ops += las * (20 + 2 * DL) + tdec * (6 + 45 * DL)
    lstm_steps += las * U * DL

    out: dict[str, np.ndarray] = {f"flops_{kd}": fl[kd] for kd in KINDS}
    out.update({f"params_{kd}": pa[kd] for kd in KINDS})
    flops = sum(fl.values())
    params = sum(pa.values())
    out.update({
        "flops": flops, "params": params, "in_frames": T_in, "enc_frames": T, "key_len": K,
        "cache_elems": cache, "input_elems": T_in * F + cache,
        "output_elems": T * V + cache, "act_elems": act, "score_elems": score_elems,
        "ops": ops, "weight_mb": params * 4 / 2**20,
        "flops_per_param": flops / np.maximum(params, 1),
        "flops_per_op": flops / np.maximum(ops, 1), "lstm_steps": lstm_steps,
    })
    return out


def feature_matrix(archs: Sequence[ArchConfig]) -> np.ndarray:
    """(N, len(feature_names())) float64 features of ``archs``."""
    if not archs:
        return np.zeros((0, len(feature_names())))
    cols = columns(archs)
    a = analytic(cols)
    parts = [*default_space().encode_many(archs, cols).T, *(a[n] for n in ANALYTIC)]
    # filled feature by feature (contiguous rows), returned as an (N, F) view
    out = np.empty((len(parts), len(archs)))
    for i, p in enumerate(parts):
        out[i] = p
    return out.T


def costs(arch: ArchConfig) -> dict[str, Any]:
    """The analytic cost model of one architecture, as plain numbers."""
    a = analytic(columns([arch]))
    return {k: float(v[0]) for k, v in a.items()}
