"""Decoders (:mod:`hwnas.asr.models.decoders`): the CTC head, RNN-T's
prediction and joint networks, and the attention decoders' teacher-forced
pass (utterance graphs only; a chunk graph is the CTC pass)."""

from __future__ import annotations

from hwnas.asr.arch import DECODE_TOKENS
from hwnas.asr.cost._tally import Shapes, Tally

HEADS = 4


def cost(t: Tally, s: Shapes) -> None:
    c = s.cols
    dec, d, T, V = c["decoder"], c["d_model"], s.T, c["vocab_size"]
    P, DL = c["decoder_dim"], c["decoder_layers"]
    ctc = dec != "rnnt"            # a CTC head unless RNN-T
    t.fl["joint"] += ctc * 2 * T * d * V
    t.pa["joint"] += ctc * (d * V + V)
    t.ops += ctc * 2
    rnnt = dec == "rnnt"
    t.fl["decoder"] += rnnt * (2 * V * P + 2 * 4 * P * 2 * P * DL + 2 * P * P)
    t.pa["decoder"] += rnnt * (V * P + DL * (8 * P * P + 8 * P) + P * P + P)
    t.fl["joint"] += rnnt * (2 * T * d * P + 2 * T * P * V)
    t.pa["joint"] += rnnt * (d * P + P + P * V + V)
    t.act += rnnt * T * (P + V)
    t.ops += rnnt * (14 + 2 * DL)
    t.cache += rnnt * 2 * DL * P
    U = DECODE_TOKENS
    las = (dec == "las") & ~s.stream
    t.fl["decoder"] += las * (2 * U * V * P + 2 * 4 * P * 2 * P * U * DL + 2 * U * P * d
                              + 4 * U * T * d + 2 * U * (P + d) * V)
    tdec = (dec == "transformer") & ~s.stream
    per_layer = (2 * U * P * P * 4 + 2 * U * P * 2 * P + 4 * U * U * P + 2 * T * d * 2 * P
                 + 4 * U * T * P + 2 * U * P * 4 * P * 2)
    t.fl["decoder"] += tdec * (2 * U * V * P + DL * per_layer + 2 * U * P * V)
    t.pa["decoder"] += las * (V * P + DL * (8 * P * P + 8 * P) + P * d + d + (P + d) * V + V)
    t.pa["decoder"] += tdec * (V * P + DL * (4 * P * P + 4 * P + P * P + P + 2 * P * d + 2 * P
                                             + P * P + P + 8 * P * P + 5 * P + 6 * P)
                               + 2 * P + P * V + V)
    t.act += las * U * (T + 4 * P) + tdec * DL * (2 * HEADS * U * T + 10 * U * P)
    t.ops += las * (20 + 2 * DL) + tdec * (6 + 45 * DL)
    t.lstm_steps += las * U * DL
