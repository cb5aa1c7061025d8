"""The analytic cost of one TTS device-graph call, in the speech cost
model's columns (:data:`hwnas.nn.costs.ANALYTIC`) so that one predictor
code path learns both tasks. The kinds map as: ``frontend`` the phoneme
embedding, ``subsampling`` the duration predictor and length regulator,
``attention_proj`` / ``attention_scores`` / ``ffn`` / ``conv`` the blocks'
parts (a convolution block's projections count as ``conv``), ``decoder``
the bridge and the mel head; ``lstm``, ``se`` and ``joint`` stay zero.
FLOPs count a multiply-add as 2."""

from __future__ import annotations

import numpy as np

from hwnas.nn.costs import ANALYTIC, KINDS
from hwnas.tts.arch import FRAME_BUCKET, PHONEME_BUCKET

FFN = 4


def _stack(cols: dict[str, np.ndarray], side: str, L: float, f: dict, p: dict,
           extra: dict) -> None:
    n, d = cols[f"{side}_layers"], cols[f"{side}_hidden"]
    block = cols[f"{side}_block"]
    H = np.maximum(cols[f"{side}_heads"], 1)
    k = np.maximum(cols[f"{side}_kernel"], 1)
    att, sep = block == "transformer", block == "sepconv"
    light, dyn = block == "lightconv", block == "dynconv"
    f["ffn"] += n * 4 * FFN * L * d * d
    p["ffn"] += n * (2 * FFN * d * d + 4 * d)
    f["attention_proj"] += n * att * 8 * L * d * d
    p["attention_proj"] += n * att * 4 * d * d
    f["attention_scores"] += n * att * 4 * L * L * d
    conv_f = (sep * (2 * L * d * k + 2 * L * d * d)
              + light * (4 * L * d * d + 2 * L * d * k + 2 * L * d * d)
              + dyn * (4 * L * d * d + 2 * L * d * H * k + 2 * L * d * k + 2 * L * d * d))
    conv_p = sep * (d * k + d * d) + light * (3 * d * d + H * k) + dyn * (3 * d * d + d * H * k)
    f["conv"] += n * conv_f
    p["conv"] += n * conv_p
    extra["score_elems"] += n * att * H * L * L
    extra["act_elems"] += n * L * d * (2 + FFN + att * 3 + (~att) * (1 + k * (light | dyn)))
    extra["ops"] += n * (12 + att * 14 + sep * 4 + light * (6 + k) + dyn * (6 + 3 * H * k))
    extra["key_len"] = np.maximum(extra["key_len"], att * L)


def analytic(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The :data:`ANALYTIC` columns of TTS architectures (``cols`` from the
    TTS space's ``columns``)."""
    m = len(cols["enc_layers"])
    N, T = float(PHONEME_BUCKET), float(FRAME_BUCKET)
    f = {k: np.zeros(m) for k in KINDS}
    p = {k: np.zeros(m) for k in KINDS}
    extra = {k: np.zeros(m) for k in ("score_elems", "act_elems", "ops", "key_len")}
    P, He, Hd = cols["n_phonemes"], cols["enc_hidden"], cols["dec_hidden"]
    vh, vk, M = cols["var_hidden"], cols["var_kernel"], cols["n_mels"]
    f["frontend"] += 2 * N * P * He
    p["frontend"] += P * He
    _stack(cols, "enc", N, f, p, extra)
    _stack(cols, "dec", T, f, p, extra)
    f["subsampling"] += 2 * N * vk * vh * (He + vh) + 2 * N * vh + 2 * T * N * Hd + 2 * N * N
    p["subsampling"] += vk * vh * (He + vh) + 6 * vh + 1
    f["decoder"] += 2 * N * He * Hd + 2 * T * Hd * M
    p["decoder"] += He * Hd + Hd * M + Hd + M
    extra["ops"] += 40
    flops = sum(f.values())
    params = sum(p.values())
    out = {**{f"flops_{k}": f[k] for k in KINDS}, **{f"params_{k}": p[k] for k in KINDS},
           "flops": flops, "params": params, "in_frames": np.full(m, N),
           "enc_frames": np.full(m, T), "key_len": extra["key_len"],
           "cache_elems": np.zeros(m), "input_elems": N * P, "output_elems": T * M,
           "act_elems": extra["act_elems"] + T * N + T * (Hd + M), "score_elems":
           extra["score_elems"], "ops": extra["ops"], "weight_mb": params * 4 / 1e6,
           "flops_per_param": flops / np.maximum(params, 1),
           "flops_per_op": flops / np.maximum(extra["ops"], 1), "lstm_steps": np.zeros(m)}
    assert list(out) == ANALYTIC or set(out) == set(ANALYTIC)
    return {k: np.asarray(out[k], dtype=np.float64) for k in ANALYTIC}
