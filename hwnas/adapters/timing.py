"""The measurement rules, once for every adapter: the timed loop (warm-up,
minimum runs *and* duration, a reference probe beside the calls) and the
judgement of a series (95% intervals, drift; measure longer when imprecise,
again when drifting, flag what stays bad)."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hwnas.adapters.records import Measurement, Plan, Timing
from hwnas.adapters.statistics import ci_halfwidth, intervals, quality, summarise


def measure(adapter: Any, handle: Any, plan: Plan, *, arch_id: str, graph: str,
        model_bytes: int, inputs: list[dict[str, Any]] | None = None) -> Measurement:
    """Time ``handle`` by ``plan``. A measurement is judged by how well its
    p50 is known (the 95% interval, see ``statistics.quantile_ci``) and by
    drift: while the interval is wider than ``max_ci``, more runs are added
    to the same series (up to ``max_ci_seconds`` in all, within
    ``max_seconds``); a drifting series is measured again from scratch
    (``retries``); problems that persist are flagged."""
    attempts, problems, timing, latency, checks = 0, ["not run"], Timing(), {}, {}
    while attempts <= plan.retries:
        attempts += 1
        t0 = time.perf_counter()
        timing = adapter._run(handle, plan)
        if timing.times_s is not None:
            times, probes = list(timing.times_s), list(timing.probe_s or [])
            while True:
                latency, checks, problems = _judge(times, probes, plan)
                # time spent: the wall clock, or the timed calls where a tool's
                # clock says more (a replayed or remote run returns at once)
                spent = max(time.perf_counter() - t0, float(sum(times)))
                limit = min(plan.max_seconds, max(plan.max_ci_seconds, plan.min_seconds))
                if checks["ci"] <= plan.max_ci or spent + max(plan.min_seconds, 1e-3 + (
                        float(sum(timing.times_s or [])))) > limit:
                    break
                more = adapter._run(handle, plan)   # longer, not again: same series
                times += more.times_s or []
                probes += more.probe_s or []
            timing.times_s, timing.probe_s = times, probes or None
        else:
            assert timing.summary is not None
            latency = dict(timing.summary)
            checks = {"cv": latency.get("cv", 0.0)}
            if latency.get("p50_ci_lo") is not None:
                checks["ci"] = ci_halfwidth(latency.get("p50_ms", latency["mean_ms"]),
                                            latency["p50_ci_lo"], latency["p50_ci_hi"])
            problems = list(timing.extra.get("problems", []))
            if checks.get("ci", 0.0) > plan.max_ci:
                problems.append(f"imprecise: p50 known to +-{checks['ci']:.1%} (95% CI) > "
                                f"+-{plan.max_ci:.0%}")
        # re-measure from scratch for drift (the device changed during the run);
        # a series still imprecise after max_seconds was already measured longer
        if not problems or all(p.startswith("imprecise") for p in problems):
            break
    prov = {"device": adapter.device, "adapter": adapter.name, "format": adapter.format,
            "inputs": inputs or [], "date": _dt.datetime.now(_dt.UTC).isoformat(
                timespec="seconds"), **adapter.describe()}
    return Measurement(arch_id=arch_id, device=adapter.device, adapter=adapter.name,
                       format=adapter.format, graph=graph, latency=latency, checks=checks,
                       attempts=attempts, flags=problems, memory_mb=timing.memory_mb,
                       init_ms=timing.init_ms, first_ms=timing.first_ms,
                       model_bytes=model_bytes, provenance=prov, extra=timing.extra)


def _judge(times: list[float], probes: list[float], plan: Plan
           ) -> tuple[dict[str, Any], dict[str, float], list[str]]:
    """(latency summary with intervals, checks, problems) of one series."""
    latency: dict[str, Any] = summarise(times)
    t = np.asarray(times)
    latency.update(intervals(t, scale=1e3))
    series: Any = t
    if probes and len(probes) == len(times):
        # Shared hosts change speed for seconds at a time; the reference
        # workload, timed beside the calls, slows down with them. Judge
        # precision and drift on the per-call ratio, where those swings cancel.
        r = np.asarray(probes)
        series = t / r
        latency.update(ref_p50_ms=float(np.median(r)) * 1e3,
                       rel_p50=float(np.median(series)))
        rel = intervals(series)
        latency.update(rel_p50_ci_lo=rel["p50_ci_lo"], rel_p50_ci_hi=rel["p50_ci_hi"])
    checks, problems = quality(series, plan.max_ci, plan.max_drift)
    return latency, checks, problems


PROBE_BLOCK_S = 0.1


def _wall(run: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = run()
    return out, time.perf_counter() - t0


def timed_loop(run: Callable[[], Any], plan: Plan, feed: Callable[[Any], None] | None = None,
               reset: Callable[[], None] | None = None,
               timer: Callable[[Callable[[], Any]], tuple[Any, float]] = _wall,
               probe: Callable[[], Any] | None = None,
               probe_times: list[float] | None = None) -> list[float]:
    """Warm up, then call ``run`` until ``min_runs`` *and* ``min_seconds`` are
    reached (or ``max_seconds``); returns per-call seconds. Outside the timed
    region, ``feed(result)`` passes states to the next call and ``reset()``
    starts a new stream every ``plan.calls_per_stream`` calls. ``timer(run)``
    returns (output, seconds): wall clock by default, device events for GPUs.
    ``probe`` (a fixed reference workload: how fast the host is right now)
    is timed once per block of about ``PROBE_BLOCK_S`` of calls, not between
    every call -- another model between calls would evict this one's weights
    from the caches and slow it down. ``probe_times`` gets, per timed call,
    the probe time of its block."""
    per = plan.calls_per_stream
    warm_start = time.perf_counter()
    for i in range(plan.warmup_runs):
        if reset is not None and per and i % per == 0:
            reset()
        out = run()
        if feed is not None:
            feed(out)
    if probe is not None:
        probe()
        per_call = (time.perf_counter() - warm_start) / max(plan.warmup_runs, 1)
        block = max(1, int(PROBE_BLOCK_S / max(per_call, 1e-6)))
    pending = 0
    if reset is not None:
        reset()
    times: list[float] = []
    clock = time.perf_counter
    start = clock()
    i = 0
    while True:
        if reset is not None and per and i and i % per == 0:
            reset()
        out, seconds = timer(run)
        times.append(seconds)
        if feed is not None:
            feed(out)
        i += 1
        elapsed = clock() - start
        done = (i >= plan.min_runs and elapsed >= plan.min_seconds) or elapsed >= plan.max_seconds
        if probe is not None and probe_times is not None:
            pending += 1
            if pending >= block or done:
                probe()   # untimed: brings the reference back into the caches, so the
                #           timed call below matches the reference's calibration
                probe_times.extend([_wall(probe)[1]] * pending)
                pending = 0
        if done:
            return times
