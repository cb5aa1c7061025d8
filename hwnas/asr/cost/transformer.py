"""Transformer layers (:mod:`hwnas.asr.models.encoders.transformer`):
attention and feed-forward, a position convolution and a final norm."""

from __future__ import annotations

import numpy as np

from hwnas.asr.cost._attention import attention, feed_forward
from hwnas.asr.cost._tally import Shapes, Tally

POS_CONV_KERNEL = 15       # position convolution


def cost(t: Tally, s: Shapes, m: np.ndarray) -> None:
    d = s.cols["d_model"]
    attention(t, s, m)
    feed_forward(t, s, m * s.cols["num_layers"])
    t.fl["conv"] += m * 2 * d * POS_CONV_KERNEL * s.T
    t.pa["conv"] += m * (d * POS_CONV_KERNEL + d + 2 * d)
    t.ops += m * 8
    t.cache += m * s.stream * d * (POS_CONV_KERNEL - 1)
