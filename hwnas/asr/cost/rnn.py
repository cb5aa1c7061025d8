"""LSTM layers (:mod:`hwnas.asr.models.encoders.rnn`): unidirectional, or
bidirectional with half the width each way."""

from __future__ import annotations

import numpy as np

from hwnas.asr.cost._tally import Shapes, Tally


def cost(t: Tally, s: Shapes, m: np.ndarray) -> None:
    d, L, T = s.cols["d_model"], s.cols["num_layers"], s.T
    blstm = s.cols["encoder"] == "blstm"
    H = np.where(blstm, d / 2, d)
    dirs = np.where(blstm, 2, 1)
    t.fl["lstm"] += m * 2 * 4 * H * (d + H) * T * dirs * L
    t.pa["lstm"] += m * L * dirs * (4 * H * (d + H) + 8 * H)
    t.act += m * L * T * 4 * H * dirs
    t.ops += m * (6 + 2 * L)
    t.cache += m * s.stream * 2 * L * H * dirs
    t.lstm_steps += m * T * L
