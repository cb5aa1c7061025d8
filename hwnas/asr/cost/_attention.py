"""Self-attention layers, shared by the attention encoders
(:mod:`hwnas.nn.attention`) and their feed-forward blocks."""

from __future__ import annotations

import numpy as np

from hwnas.asr.cost._tally import Shapes, Tally


def attention(t: Tally, s: Shapes, m: np.ndarray) -> None:
    """``num_layers`` attention layers for the architectures in ``m``."""
    c = s.cols
    d, L, att, T = c["d_model"], c["num_layers"], c["attention"], s.T
    h = np.maximum(c["heads"], 1)
    linear, local = att == "linear", att == "local"
    left = np.where(s.stream & ~linear, c["left_chunks"] * s.C, 0)
    Lc = np.where(local, np.minimum(left, c["local_window"]), left)
    K = np.where(m, Lc + T, 0)
    dk = d / h
    proj = 2 * T * d * 3 * d + 2 * T * d * d
    scores = np.where(linear, 4 * T * d * dk + 2 * T * d, 4 * T * K * d)
    n = m * L
    t.key_len += K
    t.fl["attention_proj"] += n * proj
    t.fl["attention_scores"] += n * scores
    t.pa["attention_proj"] += n * (4 * d * d + 4 * d + 2 * d)  # + pre-norm
    t.pa["attention_scores"] += n * np.where(att == "relpos", h * 129, 0)
    score_elems = n * np.where(linear, h * dk * dk, h * T * K)
    t.score_elems += score_elems
    t.act += n * (4 * T * d) + score_elems
    t.ops += n * np.where(linear, 24, 18 + 4 * (local | (att == "relpos")))
    t.cache += n * s.stream * np.where(linear, h * dk * dk + h * dk, 2 * Lc * d)


def feed_forward(t: Tally, s: Shapes, n: np.ndarray) -> None:
    """``n`` feed-forward blocks per architecture."""
    d, r, T = s.cols["d_model"], s.cols["ffn_ratio"], s.T
    t.fl["ffn"] += n * 4 * T * d * r * d
    t.pa["ffn"] += n * (2 * r * d * d + r * d + 3 * d)
    t.act += n * T * d * (r + 1)
    t.ops += n * 7
