"""CNN-LSTM (:mod:`hwnas.asr.models.encoders.cnn_lstm`): convolutions in
front of LSTM layers."""

from __future__ import annotations

import numpy as np

from hwnas.asr.cost import rnn
from hwnas.asr.cost._tally import Shapes, Tally

CONVS = 2


def cost(t: Tally, s: Shapes, m: np.ndarray) -> None:
    d, k, T = s.cols["d_model"], s.cols["conv_kernel"], s.T
    rnn.cost(t, s, m)
    t.fl["conv"] += m * CONVS * 2 * d * d * k * T
    t.pa["conv"] += m * CONVS * (d * d * k + d + 2 * d)
    t.act += m * CONVS * 2 * T * d
    t.ops += m * CONVS * 8
    t.cache += m * CONVS * d * (k - 1)
