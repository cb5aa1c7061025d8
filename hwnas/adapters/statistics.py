"""Latency statistics and the quality checks a measurement must pass.

Pure functions on a list of per-call times (seconds), so that every adapter --
in-process timers, CUDA events, numbers parsed from a phone's benchmark tool --
is judged by the same rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def summarise(times_s: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p90/p99/mean/std/min/max in milliseconds, CV and n."""
    t = np.asarray(times_s, dtype=np.float64) * 1e3
    if t.size == 0:
        raise ValueError("no timed runs")
    mean = float(t.mean())
    std = float(t.std(ddof=1)) if t.size > 1 else 0.0
    p50, p90, p99 = (float(v) for v in np.percentile(t, [50, 90, 99]))
    return {"p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": mean, "std_ms": std,
            "min_ms": float(t.min()), "max_ms": float(t.max()),
            "cv": std / mean if mean > 0 else 0.0, "n": int(t.size)}


def drift(times_s: list[float] | np.ndarray, share: float = 0.2) -> float:
    """Relative change of the median from the first to the last ``share`` of
    the runs: positive when the device slowed down (thermal throttling)."""
    t = np.asarray(times_s, dtype=np.float64)
    k = max(int(len(t) * share), 1)
    if len(t) < 2 * k or k < 3:
        return 0.0
    first, last = float(np.median(t[:k])), float(np.median(t[-k:]))
    return last / first - 1.0 if first > 0 else 0.0


def robust_cv(times_s: list[float] | np.ndarray) -> float:
    """Spread of the bulk of the runs: IQR / (1.349 * median), which equals the
    CV for normal data but ignores a few scheduler hiccups."""
    t = np.asarray(times_s, dtype=np.float64)
    q1, med, q3 = np.percentile(t, [25, 50, 75])
    return float((q3 - q1) / (1.349 * med)) if med > 0 else 0.0


#: batches of the batch-quantile interval; fewer when a batch would hold < MIN_BATCH calls
BATCHES = 20
MIN_BATCH = 10
CI_LEVEL = 0.95
CI_METHOD = "batch quantiles (20 contiguous batches, Student t)"


def quantile_ci(x: list[float] | np.ndarray, q: float = 0.5, level: float = CI_LEVEL,
                batches: int = BATCHES) -> tuple[float, float, str]:
    """(lo, hi, method): a ``level`` confidence interval of the ``q`` quantile
    of a time-ordered series whose neighbouring values are correlated.

    Batch quantiles (the batch-means method applied to a quantile): the series
    is cut into contiguous batches, each batch's quantile is one observation,
    and the interval is the whole series' quantile +- t * sd(batch quantiles)
    / sqrt(batches). Contiguous batches much longer than the correlation keep
    the correlation inside them, so the batch figures are close to
    independent; an i.i.d. bootstrap of single calls would treat a slow phase
    of the host as many independent slow calls and give an interval far too
    narrow (tests/test_statistics.py measures both). Under 5 batches of
    ``MIN_BATCH`` (short series of slow models), the distribution-free
    order-statistic interval is used instead, which assumes independent calls
    and says so in ``method``."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        raise ValueError("no timed runs")
    est = float(np.quantile(x, q))
    b = min(batches, n // MIN_BATCH)
    if b >= 5:
        parts = np.array_split(x, b)
        bq = np.array([np.quantile(p, q) for p in parts])
        half = float(stats.t.ppf(0.5 + level / 2, b - 1) * bq.std(ddof=1) / np.sqrt(b))
        return est - half, est + half, f"batch quantiles ({b} contiguous batches, Student t)"
    if n < 2:
        return float("-inf"), float("inf"), "one run: no interval"
    # order statistics: P(x_(j) <= Q_q < x_(k)) from the binomial(n, q)
    srt = np.sort(x)
    lo_i = int(stats.binom.ppf((1 - level) / 2, n, q))
    hi_i = int(stats.binom.ppf(0.5 + level / 2, n, q))
    lo = float(srt[lo_i - 1]) if lo_i >= 1 else float("-inf")
    hi = float(srt[hi_i]) if hi_i < n else float("inf")
    return lo, hi, f"order statistics ({n} runs, assumed independent)"


def intervals(series: np.ndarray, prefix: str = "", scale: float = 1.0) -> dict[str, Any]:
    """``{prefix}p50_ci_lo/hi`` and ``{prefix}p90_ci_lo/hi`` of ``series`` x ``scale``."""
    out: dict[str, Any] = {}
    for q, name in ((0.5, "p50"), (0.9, "p90")):
        lo, hi, method = quantile_ci(series, q)
        out[f"{prefix}{name}_ci_lo"] = lo * scale
        out[f"{prefix}{name}_ci_hi"] = hi * scale
    out["ci_method"] = method
    return out


def ci_halfwidth(est: float, lo: float, hi: float) -> float:
    """Relative half-width of an interval around ``est`` (inf when unbounded)."""
    if not est or not np.isfinite(lo) or not np.isfinite(hi):
        return float("inf")
    return float((hi - lo) / 2 / abs(est))


def quality(times_s: list[float] | np.ndarray, max_ci: float,
            max_drift: float) -> tuple[dict[str, float], list[str]]:
    """(checks, problems): a measurement with problems is measured longer or
    re-measured, and flagged if they persist. The problems are how well the
    median is known (``ci``: relative half-width of its 95% interval above
    ``max_ci``) and drift; the spread of single calls (``robust_cv``) is kept
    as a description only -- on a noisy host it is large however well the
    median is known after thousands of calls."""
    t = np.asarray(times_s, dtype=np.float64)
    lo, hi, _ = quantile_ci(t, 0.5)
    checks = {"robust_cv": robust_cv(t), "drift": drift(t),
              "ci": ci_halfwidth(float(np.median(t)), lo, hi)}
    problems = []
    if checks["ci"] > max_ci:
        problems.append(f"imprecise: p50 known to +-{checks['ci']:.1%} (95% CI) > "
                        f"+-{max_ci:.0%}")
    if abs(checks["drift"]) > max_drift:
        problems.append(f"drift: median moved {checks['drift']:+.1%} from first to last runs "
                        f"(limit {max_drift:.0%})")
    return checks, problems


def summary_from_counts(count: int, mean_us: float, std_us: float, min_us: float,
                        max_us: float, p50_us: float | None = None,
                        p95_us: float | None = None) -> dict[str, Any]:
    """The same summary built from a benchmark tool's aggregate line, for tools
    that print statistics instead of every run. Percentiles the tool did not
    print are left out (never estimated)."""
    out: dict[str, Any] = {"mean_ms": mean_us / 1e3, "std_ms": std_us / 1e3,
                           "min_ms": min_us / 1e3, "max_ms": max_us / 1e3,
                           "cv": std_us / mean_us if mean_us > 0 else 0.0, "n": int(count)}
    if p50_us is not None:
        out["p50_ms"] = p50_us / 1e3
    if p95_us is not None:
        out["p95_ms"] = p95_us / 1e3
    # no per-run series: the interval of the mean under independent runs, put
    # around the median with the same relative width (labelled as such)
    if count > 1 and mean_us > 0:
        from scipy import stats

        rel = float(stats.t.ppf(0.5 + CI_LEVEL / 2, count - 1) * std_us / np.sqrt(count)
                    / mean_us)
        centre = out.get("p50_ms", out["mean_ms"])
        out.update(p50_ci_lo=centre * (1 - rel), p50_ci_hi=centre * (1 + rel),
                   ci_method="normal interval of the mean from the tool's count, mean and "
                             "std (runs assumed independent; no per-run times)")
    return out
