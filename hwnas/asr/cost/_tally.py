"""What every part's cost function reads (:class:`Shapes`) and adds to
(:class:`Tally`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwnas.asr.arch import UTTERANCE_FRAMES
from hwnas.asr.decisions import SUBSAMPLING_FACTOR
from hwnas.nn.costs import KINDS

N_BINS = 201               # log-power bins of the learnable front-end (frontend.N_BINS)


@dataclass
class Shapes:
    """The columns and the sequence lengths of one device-graph call."""

    cols: dict[str, np.ndarray]
    stream: np.ndarray       # bool: a chunk graph
    factor: np.ndarray       # subsampling factor
    F: np.ndarray            # input features per frame
    C: np.ndarray            # encoder frames per chunk (0 in full context)
    la: np.ndarray           # look-ahead input frames
    T_in: np.ndarray         # input frames per call
    T: np.ndarray            # encoder frames per call

    @classmethod
    def of(cls, cols: dict[str, np.ndarray]) -> Shapes:
        stream = cols["streaming"] != 0
        factor = np.array([SUBSAMPLING_FACTOR[s] for s in cols["subsampling"]],
                          dtype=np.float64)
        F = np.where(cols["frontend"] == "learnable", N_BINS, cols["n_filters"])
        C = np.where(stream, cols["chunk_ms"] / (10 * factor), 0)
        la = cols["lookahead"] * factor
        return cls(cols, stream, factor, F, C, la,
                   T_in=np.where(stream, C * factor + la, UTTERANCE_FRAMES),
                   T=np.where(stream, C, UTTERANCE_FRAMES / factor))


@dataclass
class Tally:
    """FLOPs and parameters per operator kind, operators, activation and cache
    elements, attention scores and recurrent steps, summed over the parts."""

    fl: dict[str, np.ndarray]
    pa: dict[str, np.ndarray]
    ops: np.ndarray
    act: np.ndarray
    cache: np.ndarray
    key_len: np.ndarray
    score_elems: np.ndarray
    lstm_steps: np.ndarray

    @classmethod
    def zeros(cls, s: Shapes) -> Tally:
        zero = np.zeros_like(s.cols["d_model"])
        return cls({k: zero.copy() for k in KINDS}, {k: zero.copy() for k in KINDS},
                   ops=zero.copy(), act=s.T_in * s.F, cache=zero.copy(), key_len=zero.copy(),
                   score_elems=zero.copy(), lstm_steps=zero.copy())

    def summary(self, s: Shapes) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {f"flops_{kd}": self.fl[kd] for kd in KINDS}
        out.update({f"params_{kd}": self.pa[kd] for kd in KINDS})
        flops = sum(self.fl.values())
        params = sum(self.pa.values())
        V = s.cols["vocab_size"]
        out.update({
            "flops": flops, "params": params, "in_frames": s.T_in, "enc_frames": s.T,
            "key_len": self.key_len, "cache_elems": self.cache,
            "input_elems": s.T_in * s.F + self.cache,
            "output_elems": s.T * V + self.cache, "act_elems": self.act,
            "score_elems": self.score_elems, "ops": self.ops,
            "weight_mb": params * 4 / 2**20,
            "flops_per_param": flops / np.maximum(params, 1),
            "flops_per_op": flops / np.maximum(self.ops, 1), "lstm_steps": self.lstm_steps,
        })
        return out
