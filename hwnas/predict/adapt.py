"""Few-shot adaptation of a latency predictor to another device.

A predictor trained on device A ranks architectures well on device B when the
two share most of their cost structure; what changes is the scale and how
much each kind of work costs. With a handful of measurements on B we fit a
small correction in log space on top of A's prediction p_A:

  scale    log y_B = log p_A + b
  affine   log y_B = log p_A + b + c log p_A
  ridge    affine + ridge terms on where the work is (share of FLOPs in
           attention / LSTM / convolution / feed-forward, log operator count,
           log cache size)

and keep the one with the lowest leave-one-out error on the measurements.
The architectures to measure are chosen for coverage: one per quantile of
A's predicted latency, spreading the encoder families over the quantiles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.predict.features import analytic_column
from hwnas.space.space import Arch

METHODS = ("scale", "affine", "ridge")
RIDGE_LAMBDA = 1.0


def _shares(X: np.ndarray) -> np.ndarray:
    def col(n: str) -> np.ndarray:
        return analytic_column(X, n)

    total = np.maximum(col("flops"), 1.0)
    return np.stack([
        (col("flops_attention_proj") + col("flops_attention_scores")) / total,
        col("flops_lstm") / total,
        (col("flops_conv") + col("flops_subsampling")) / total,
        col("flops_ffn") / total,
        np.log(np.maximum(col("ops"), 1.0)),
        np.log1p(col("cache_elems")),
    ], axis=1)


def _zstats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the ridge terms over the measured rows (a constant
    term is left unscaled)."""
    z = _shares(X)
    zmean, zstd = z.mean(axis=0), z.std(axis=0)
    zstd[zstd == 0] = 1.0
    return zmean, zstd


def _design(method: str, X: np.ndarray, base: np.ndarray,
            zmean: np.ndarray | None = None, zstd: np.ndarray | None = None) -> np.ndarray:
    lp = np.log(base)[:, None]
    one = np.ones_like(lp)
    if method == "scale":
        return one
    if method == "affine":
        return np.concatenate([one, lp], axis=1)
    z = (_shares(X) - zmean) / zstd
    return np.concatenate([one, lp, z], axis=1)


def _solve(method: str, A: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Least squares for the correction ``t`` = log y - log p_A."""
    if method == "scale":
        return np.array([float(np.mean(t))])
    if method == "affine":
        return np.linalg.lstsq(A, t, rcond=None)[0]
    # ridge on the share terms only: with ~20 points they must stay small
    reg = np.diag([0.0, 0.0] + [RIDGE_LAMBDA] * (A.shape[1] - 2))
    return np.linalg.solve(A.T @ A + reg, A.T @ t)


def fit_correction(X: np.ndarray, base: np.ndarray, y: np.ndarray,
                   method: str = "auto") -> dict[str, Any]:
    """The correction (a JSON-able dict) mapping source predictions ``base``
    to the new device's measurements ``y``; ``auto`` picks by leave-one-out."""
    if len(y) < 3:
        raise ValueError(f"{len(y)} measurements are too few to adapt (need >= 3)")
    methods = METHODS if method == "auto" else (method,)
    if method != "auto" and method not in METHODS:
        raise ValueError(f"unknown adaptation method {method!r}; one of auto, "
                         f"{', '.join(METHODS)}")
    t = np.log(y) - np.log(base)
    zmean, zstd = _zstats(X)
    loo: dict[str, float] = {}
    errs: dict[str, list[float]] = {}
    for m in methods:
        A = _design(m, X, base, zmean, zstd)
        if A.shape[1] >= len(y) - 1:
            continue
        errs[m] = []
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            coef = _solve(m, A[keep], t[keep])
            errs[m].append(float(A[i] @ coef - t[i]))
        loo[m] = float(np.sqrt(np.mean(np.square(errs[m]))))
    if not loo:
        raise ValueError(f"{len(y)} measurements are too few for method {method!r}")
    best = min(loo, key=loo.__getitem__)
    coef = _solve(best, _design(best, X, base, zmean, zstd), t)
    # each measurement as predicted without it, as a relative error: how well
    # the correction holds on architectures it has not seen
    held = np.exp(np.array(errs[best])) - 1
    out = {"method": best, "coef": coef.tolist(), "zmean": zmean.tolist(),
           "zstd": zstd.tolist(), "n": int(len(y)), "loo_rmse_log": loo,
           "loo_median_abs": float(np.median(np.abs(held))),
           "loo_within_10pct": float(np.mean(np.abs(held) <= 0.10))}
    if best == "scale":   # the scale with its 95% interval (t on the log ratios)
        from scipy import stats

        # (a scale is fitted on >= 3 measurements: the interval is defined)
        half = stats.t.ppf(0.975, len(t) - 1) * float(np.std(t, ddof=1)) / np.sqrt(len(t))
        out["scale_ci"] = [float(np.exp(coef[0] - half)), float(np.exp(coef[0] + half))]
    return out


def least_certain(X_pool: np.ndarray, base_pool: np.ndarray, X: np.ndarray,
                  base: np.ndarray, k: int, exclude: Sequence[int] = ()) -> list[int]:
    """The ``k`` rows of the pool where a correction fitted on (X, base) is
    least certain: greedily, the largest leverage under the richest design
    (affine plus the ridge terms), each pick counted as measured before the
    next -- so the picks spread over what the measurements do not cover yet."""
    zmean, zstd = _zstats(X)
    A = _design("ridge", X, base, zmean, zstd)
    P = _design("ridge", X_pool, base_pool, zmean, zstd)
    M = A.T @ A + np.diag([1e-6, 1e-6] + [RIDGE_LAMBDA] * (A.shape[1] - 2))
    skip = set(exclude)
    picks: list[int] = []
    for _ in range(min(k, len(P) - len(skip))):
        lev = np.einsum("ij,jk,ik->i", P, np.linalg.inv(M), P)
        lev[list(skip | set(picks))] = -np.inf
        i = int(np.argmax(lev))
        picks.append(i)
        M = M + np.outer(P[i], P[i])
    return picks


def apply_correction(adapt: dict[str, Any], X: np.ndarray, base: np.ndarray) -> np.ndarray:
    A = _design(adapt["method"], X, base, np.array(adapt["zmean"]), np.array(adapt["zstd"]))
    return base * np.exp(A @ np.array(adapt["coef"]))


def select_for_coverage(pool: Sequence[Arch], predicted: np.ndarray, n: int
                        ) -> list[Arch]:
    """``n`` architectures from ``pool``: one per quantile bin of the source
    device's predicted latency, in each bin the encoder family chosen least so
    far (ties: the one nearest the bin's centre). Deterministic."""
    if n < 1:
        raise ValueError("--n must be >= 1")
    if n > len(pool):
        raise ValueError(f"asked for {n} architectures from a pool of {len(pool)}")
    lp = np.log(np.asarray(predicted, dtype=float))
    order = np.argsort(lp, kind="mergesort")
    bins = np.array_split(order, n)
    used: Counter[str] = Counter()
    out: list[Arch] = []
    for b in bins:
        centre = float(np.median(lp[b]))
        best = min(b, key=lambda i: (used[pool[i].encoder], abs(lp[i] - centre), pool[i].id))
        used[pool[best].encoder] += 1
        out.append(pool[best])
    return out


def device_card(device: str, store: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The part of a predictor's card that says which device and host measured it."""
    prov = next((r.get("provenance") for r in rows if r.get("provenance")), {}) or {}
    return {"device": device, "adapter": prov.get("adapter"), "runtime": prov.get("runtime"),
            "threads": prov.get("threads"), "format": prov.get("format"),
            "host": {k: prov.get(k) for k in ("cpu", "cores", "os")},
            "profile": {"folder": str(store.folder), "rows": len(rows),
                        "created": store.manifest.get("created"),
                        "updated": store.manifest.get("updated")}}


def host_mismatch(card: dict[str, Any], here: dict[str, Any]) -> str | None:
    """Why a host-CPU predictor does not describe this host (None if it does):
    another CPU model or core count."""
    host = card.get("host") or {}
    for key in ("cpu", "cores"):
        if host.get(key) != here.get(key):
            return f"it was measured on {host.get('cpu')} x{host.get('cores')}, this host is " \
                   f"{here.get('cpu')} x{here.get('cores')}"
    return None
