"""Front-end (the learnable filterbank, the look-ahead convolution) and
subsampling (:mod:`hwnas.nn.frontend`, ``subsampling``)."""

from __future__ import annotations

import numpy as np

from hwnas.asr.arch import UTTERANCE_FRAMES
from hwnas.asr.cost._tally import N_BINS, Shapes, Tally

CONV_SUB_LAYERS = {"conv2d4": [(3, 2), (3, 2)], "conv2d6": [(3, 2), (5, 3)],
                   "conv2d8": [(3, 2), (3, 2), (3, 2)]}


def cost(t: Tally, s: Shapes) -> None:
    c = s.cols
    f, d = c["n_filters"], c["d_model"]
    stream, C, factor, la = s.stream, s.C, s.factor, s.la
    learn = c["frontend"] == "learnable"
    t.fl["frontend"] += np.where(learn, 2 * s.T_in * N_BINS * f, 0)
    t.pa["frontend"] += np.where(learn, N_BINS * f + f, 0)
    has_la = la > 0
    t.fl["frontend"] += np.where(has_la, 2 * f * (la + 1) * np.where(stream, C * factor,
                                                                     UTTERANCE_FRAMES), 0)
    t.pa["frontend"] += np.where(has_la, f * (la + 1) + f, 0)
    t.ops += learn * 2 + has_la * 3

    ch = np.maximum(16, d // 4)
    for kind, layers in CONV_SUB_LAYERS.items():
        m = c["subsampling"] == kind
        context, stride = 0, 1
        for kt, st in layers:
            context += (kt - st) * stride
            stride *= st
        n = np.where(stream, context + C * factor, context + UTTERANCE_FRAMES)
        fr, c_in = f.copy(), 1
        sf = np.zeros_like(d)
        sp = np.zeros_like(d)
        for kt, st in layers:
            n = (n - kt) // st + 1
            fr = (fr + 2 - 3) // 2 + 1
            sf += 2 * ch * c_in * kt * 3 * n * fr
            sp += ch * c_in * kt * 3 + ch
            t.act += m * ch * n * fr
            c_in = ch
        sf += 2 * n * ch * fr * d
        sp += ch * fr * d + d
        t.fl["subsampling"] += m * sf
        t.pa["subsampling"] += m * sp
        t.ops += m * (3 * len(layers) + 6)
        t.cache += m * stream * context * f
    stack = c["subsampling"] == "stack4"
    t.fl["subsampling"] += stack * 2 * s.T * 4 * f * d
    t.pa["subsampling"] += stack * (4 * f * d + d)
    t.ops += stack * 3
