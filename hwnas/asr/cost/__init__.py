"""The analytic cost model of the speech task: from the architecture alone,
what one device-graph call does (the graph the profiler measures: one chunk
for streaming architectures, one 4.8 s utterance otherwise): FLOPs and
parameters per operator kind, sequence lengths, attention key length, cache
and activation sizes, and a rough count of graph operators (per-op overhead
dominates small models).

One function per part, beside the part's name: the front-end and subsampling
(``frontend.py``), one per encoder family (``conformer.py``, ...), the
decoders (``decoders.py``). Each adds its share to a :class:`Tally` of
NumPy arrays over many architectures at once, so that a search can score
100,000s of candidates per second; ``tests/test_predict.py`` checks the
totals against the counted values in the shipped profile
(:func:`hwnas.asr.models.stats.model_stats`).

FLOPs count 2 per multiply-add of matrix products and convolutions only (the
convention of PyTorch's FLOP counter); element-wise work shows up in the
activation and operator counts instead.
"""

from __future__ import annotations

import numpy as np

from hwnas.asr.cost import cnn_lstm, conformer, contextnet, decoders, frontend, rnn, transformer
from hwnas.asr.cost._tally import Shapes, Tally

#: encoder family -> its cost function (arguments: tally, shapes, mask of the
#: architectures of that family)
ENCODERS = {"conformer": conformer.cost, "transformer": transformer.cost,
            "lstm": rnn.cost, "blstm": rnn.cost, "cnn_lstm": cnn_lstm.cost,
            "contextnet": contextnet.cost}


def analytic(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The cost model; every entry an array over architectures (``cols`` are
    the space's ``columns``)."""
    s = Shapes.of(cols)
    t = Tally.zeros(s)
    frontend.cost(t, s)
    enc = cols["encoder"]
    for cost in dict.fromkeys(ENCODERS.values()):   # rnn.cost covers lstm and blstm
        mask = np.isin(enc, [f for f, c in ENCODERS.items() if c is cost])
        if mask.any():
            cost(t, s, mask)
    decoders.cost(t, s)
    return t.summary(s)
