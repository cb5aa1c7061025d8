"""Latency statistics and the measurement rules (warm-up, minimum runs and
duration, re-measurement of noisy or drifting runs, flags)."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.adapters import Adapter, Plan, Timing
from hwnas.adapters.statistics import (
    drift,
    quality,
    quantile_ci,
    robust_cv,
    summarise,
    summary_from_counts,
)
from hwnas.adapters.timing import timed_loop


def test_summary_in_milliseconds():
    s = summarise([0.001, 0.002, 0.003, 0.004])
    assert s["n"] == 4 and s["mean_ms"] == pytest.approx(2.5)
    assert s["p50_ms"] == pytest.approx(2.5) and s["max_ms"] == pytest.approx(4.0)
    assert s["cv"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2.5)
    with pytest.raises(ValueError):
        summarise([])


def test_drift_and_noise_detection():
    steady = np.full(100, 0.010) + np.random.default_rng(0).normal(0, 1e-5, 100)
    assert abs(drift(steady)) < 0.01
    throttled = np.linspace(0.010, 0.014, 100)
    assert drift(throttled) > 0.3
    checks, problems = quality(throttled, max_ci=0.5, max_drift=0.1)
    assert any(p.startswith("drift") for p in problems)
    # single calls that scatter make the median imprecise after 200 calls, not after
    # 20,000: the spread of calls is a description, how well the median is known decides
    noisy = np.random.default_rng(1).uniform(0.005, 0.015, 20000)
    assert robust_cv(noisy) > 0.2
    assert any(p.startswith("imprecise") for p in quality(noisy[:200], 0.02, 0.5)[1])
    checks, problems = quality(noisy, 0.02, 0.5)
    assert problems == [] and checks["robust_cv"] > 0.2 and checks["ci"] < 0.01
    # one scheduler hiccup does not make a run noisy
    hiccup = steady.copy()
    hiccup[50] = 0.5
    assert quality(hiccup, 0.1, 0.1)[1] == []


def test_summary_from_counts_never_invents_percentiles():
    s = summary_from_counts(50, 249684, 1442, 247067, 254474)
    assert "p50_ms" not in s and s["mean_ms"] == pytest.approx(249.684)
    s = summary_from_counts(50, 1000, 10, 990, 1100, p50_us=995, p95_us=1050)
    assert s["p50_ms"] == pytest.approx(0.995) and s["p95_ms"] == pytest.approx(1.05)


def test_timed_loop_honours_runs_duration_and_streams():
    calls, resets = [], []
    plan = Plan(warmup_runs=3, min_runs=10, min_seconds=0.0, calls_per_stream=4)
    times = timed_loop(lambda: calls.append(1), plan, reset=lambda: resets.append(1))
    assert len(times) == 10 and len(calls) == 13
    assert len(resets) >= 1 + 2  # after warm-up, then every 4 timed calls
    import time

    plan = Plan(warmup_runs=0, min_runs=1, min_seconds=0.05)
    times = timed_loop(lambda: time.sleep(0.005), plan)
    assert sum(times) >= 0.045 and len(times) >= 5


class _Scripted(Adapter):
    """An adapter whose runs are given in advance (the rules, not a device)."""

    name = "scripted"

    def __init__(self, runs: list[list[float]]) -> None:
        super().__init__("scripted", {})
        self.runs = runs

    @property
    def format(self) -> str:
        return "onnx"

    def check(self) -> str | None:
        return None

    def prepare(self, artifact):
        return None

    def _run(self, handle, plan) -> Timing:
        self.calls = getattr(self, "calls", 0) + 1
        return Timing(times_s=self.runs.pop(0) if len(self.runs) > 1 else self.runs[0])

    def describe(self) -> dict:
        return {}


def test_an_imprecise_run_is_measured_longer_into_the_same_series():
    rng = np.random.default_rng(0)
    noisy = [list(rng.uniform(0.001, 0.003, 100)) for _ in range(60)]
    a = _Scripted(noisy)
    m = a.measure(None, Plan(retries=2, min_seconds=0.0), arch_id="x", graph="chunk",
                  model_bytes=1)
    # +-2% on a median of U(1, 3) ms needs ~2,000 calls: measured longer, not flagged
    assert m.ok and m.attempts == 1 and 1000 < m.latency["n"] < 6000
    assert m.latency["p50_ci_lo"] < m.latency["p50_ms"] < m.latency["p50_ci_hi"]
    assert m.checks["ci"] <= 0.02 and m.checks["robust_cv"] > 0.2
    # a run that cannot reach the precision within max_seconds is flagged as imprecise
    slow = _Scripted([list(rng.uniform(0.001, 0.003, 30))])
    m = slow.measure(None, Plan(retries=0, min_seconds=1.0, max_seconds=1.5), arch_id="x",
                     graph="chunk", model_bytes=1)
    assert not m.ok and m.flags[0].startswith("imprecise") and m.latency["n"] < 1000


def test_a_run_that_stays_bad_is_flagged_not_kept_silently():
    ramp = list(np.linspace(0.001, 0.002, 100))
    a = _Scripted([ramp, ramp, ramp])
    m = a.measure(None, Plan(retries=2, max_seconds=1.0), arch_id="x", graph="chunk", model_bytes=1)
    assert not m.ok and m.attempts == 3
    assert any(f.startswith("drift") for f in m.flags)


def test_probe_is_timed_per_block_and_aligned_with_calls():
    import time

    probes: list[float] = []
    calls = []

    def probe():
        calls.append("probe")
        time.sleep(0.002)

    plan = Plan(warmup_runs=2, min_runs=30, min_seconds=0.0)
    times = timed_loop(lambda: time.sleep(0.01), plan, probe=probe, probe_times=probes)
    assert len(probes) == len(times) == 30
    # per ~100 ms block: one untimed (cache warm-up) and one timed probe
    assert 0.0015 < min(probes) and len(calls) <= 2 * 5


def test_reference_probe_divides_host_speed_swings_out():
    """Calls and probe slow down together (a host in a slow phase): the
    per-call ratio stays flat, so the run is neither noisy nor drifting."""
    speed = np.r_[np.ones(50), np.full(50, 1.4)]          # host 40% slower halfway
    times = list(0.002 * speed)
    probe = list(0.004 * speed)

    class Probed(_Scripted):
        def _run(self, handle, plan):
            return Timing(times_s=times, probe_s=probe)

    m = Probed([]).measure(None, Plan(retries=0), arch_id="x", graph="chunk", model_bytes=1)
    assert m.ok and m.latency["rel_p50"] == pytest.approx(0.5)
    assert m.latency["ref_p50_ms"] > 0
    raw = _Scripted([times]).measure(None, Plan(retries=0, max_seconds=1.0), arch_id="x",
                                     graph="chunk", model_bytes=1)
    assert not raw.ok   # without the probe the same run looks like drift


def _ar1_lognormal(rng, n, phi, sigma=0.12):
    """A host's per-call times: log-normal around 1.0 (true median 1.0) whose
    log follows an AR(1) process (correlated neighbours, phases of ~1/(1-phi) calls)."""
    e = rng.normal(0, sigma * np.sqrt(1 - phi ** 2), n)
    x = np.empty(n)
    x[0] = rng.normal(0, sigma)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return np.exp(x)


def test_interval_coverage_is_honest_on_correlated_series():
    """The 95% interval of the median holds the true median about 95% of the
    time on correlated series; an i.i.d. interval of the same calls does not."""
    rng = np.random.default_rng(7)
    inside = iid_inside = 0
    reps = 300
    for _ in range(reps):
        x = _ar1_lognormal(rng, 3000, phi=0.9)
        lo, hi, method = quantile_ci(x, 0.5)
        inside += lo <= 1.0 <= hi
        # what an interval that assumes independent calls would say
        se = 1.2533 * x.std() / np.sqrt(len(x))
        iid_inside += abs(np.median(x) - 1.0) <= 1.96 * se
    assert method.startswith("batch quantiles")
    assert 0.90 <= inside / reps <= 0.99, inside / reps
    assert iid_inside / reps < 0.75, iid_inside / reps


def test_p90_interval_and_short_series():
    rng = np.random.default_rng(3)
    inside = 0
    q90 = np.exp(0.12 * 1.2816)
    for _ in range(200):
        x = _ar1_lognormal(rng, 3000, phi=0.5)
        lo, hi, _ = quantile_ci(x, 0.9)
        inside += lo <= q90 <= hi
    assert 0.88 <= inside / 200 <= 0.995
    lo, hi, method = quantile_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0])
    assert method.startswith("order statistics") and lo < 6.0 < hi
    lo, hi, _ = quantile_ci([1.0])
    assert lo == float("-inf") and hi == float("inf")
