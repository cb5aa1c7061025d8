"""ContextNet blocks (:mod:`hwnas.asr.models.encoders.contextnet`):
depthwise-separable convolutions and squeeze-and-excitation."""

from __future__ import annotations

import numpy as np

from hwnas.asr.cost._tally import Shapes, Tally

CONVS = 3                  # depthwise-separable convs per block
SE_REDUCTION = 8


def cost(t: Tally, s: Shapes, m: np.ndarray) -> None:
    d, L, k, T, stream = s.cols["d_model"], s.cols["num_layers"], s.cols["conv_kernel"], \
        s.T, s.stream
    t.fl["conv"] += m * L * CONVS * (2 * d * k * T + 2 * T * d * d)
    t.pa["conv"] += m * L * CONVS * (d * k + d + d * d + d + 2 * d)
    se_rows = np.where(stream, T, 1)
    t.fl["se"] += m * L * 2 * 2 * se_rows * d * (d // SE_REDUCTION)
    t.pa["se"] += m * L * (2 * d * (d // SE_REDUCTION) + d + d // SE_REDUCTION)
    t.act += m * L * (CONVS * 3 + 2) * T * d
    t.ops += m * L * (CONVS * 10 + 12 + stream * 6)
    t.cache += m * L * (CONVS * d * (k - 1) + stream * (d + 1))
