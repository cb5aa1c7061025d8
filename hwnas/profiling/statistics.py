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


def quality(times_s: list[float] | np.ndarray, max_cv: float,
            max_drift: float) -> tuple[dict[str, float], list[str]]:
    """(checks, problems): a measurement with problems is re-measured, and
    flagged if they persist."""
    checks = {"robust_cv": robust_cv(times_s), "drift": drift(times_s)}
    problems = []
    if checks["robust_cv"] > max_cv:
        problems.append(f"noisy: robust CV {checks['robust_cv']:.1%} > {max_cv:.0%}")
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
    return out
