"""Accuracy of latency predictions against measurements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either ranking handled), O(n^2): held-out sets
    have hundreds of points, not millions."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) != len(y):
        raise ValueError("kendall_tau: sequences of different length")
    if len(x) < 2:
        return float("nan")
    iu = np.triu_indices(len(x), k=1)
    dx = np.sign(x[:, None] - x[None, :])[iu]
    dy = np.sign(y[:, None] - y[None, :])[iu]
    concordance = float(np.sum(dx * dy))
    denom = np.sqrt(float(np.sum(dx != 0)) * float(np.sum(dy != 0)))
    return concordance / denom if denom else float("nan")


def spearman_rho(a: Sequence[float], b: Sequence[float]) -> float:
    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        # average ranks of ties
        _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return (sums / counts)[inv]

    x, y = ranks(np.asarray(a, dtype=float)), ranks(np.asarray(b, dtype=float))
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def accuracy(measured: Sequence[float], predicted: Sequence[float]) -> dict[str, Any]:
    """Share within +-5 % / +-10 %, RMSPE, MAPE, worst error, Kendall tau,
    Spearman rho; relative errors are (predicted - measured) / measured."""
    y, p = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    if len(y) == 0:
        return {"n": 0}
    if np.any(y <= 0):
        raise ValueError("measured latencies must be positive")
    rel = p / y - 1.0
    err = np.abs(rel)
    tol = 1e-9  # 2.2 / 2.0 - 1 is 0.10000000000000009 in floating point
    return {
        "n": int(len(y)),
        "within_5pct": float(np.mean(err <= 0.05 + tol)),
        "within_10pct": float(np.mean(err <= 0.10 + tol)),
        "rmspe": float(np.sqrt(np.mean(rel ** 2))),
        "mape": float(np.mean(err)),
        "median_ape": float(np.median(err)),
        "p90_ape": float(np.quantile(err, 0.9)),
        "max_ape": float(err.max()),
        "kendall_tau": kendall_tau(y, p),
        "spearman_rho": spearman_rho(y, p),
    }


def fmt_pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}%"
