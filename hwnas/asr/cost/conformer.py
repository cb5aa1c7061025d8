"""Conformer blocks (:mod:`hwnas.asr.models.encoders.conformer`): attention,
two half-step feed-forward blocks and the convolution module."""

from __future__ import annotations

import numpy as np

from hwnas.asr.cost._attention import attention, feed_forward
from hwnas.asr.cost._tally import Shapes, Tally


def cost(t: Tally, s: Shapes, m: np.ndarray) -> None:
    d, L, k, T = s.cols["d_model"], s.cols["num_layers"], s.cols["conv_kernel"], s.T
    attention(t, s, m)
    feed_forward(t, s, m * L * 2)
    # convolution module: pointwise GLU, depthwise, pointwise
    t.fl["conv"] += m * L * (2 * T * d * 2 * d + 2 * d * k * T + 2 * T * d * d)
    t.pa["conv"] += m * L * (2 * d * d + 2 * d + d * k + d + d * d + d + 4 * d + 2 * d)
    t.act += m * L * 5 * T * d
    t.ops += m * L * 16
    t.cache += m * L * d * (k - 1)
