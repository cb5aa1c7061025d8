"""The device interface: ``check``/``available``, ``prepare``, ``measure``,
``describe``. Everything hardware-specific lives behind it; the measurement
rules (warm-up, minimum runs and duration, re-measure when noisy or
drifting, flag what stays bad) live here once for every adapter.
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.profiling.statistics import ci_halfwidth, intervals, quality, summarise


class DeviceError(RuntimeError):
    """The device cannot do what was asked (unreachable, tool missing, run
    failed); the message is one line a user can act on."""


class DeviceUnavailable(DeviceError):
    """The device is not reachable now; the reason is the message."""


@dataclass(frozen=True)
class Plan:
    """How to time one model. Defaults follow TFLite benchmark_model and
    MLPerf single-stream: warm-up excluded, at least ``min_runs`` runs *and*
    ``min_seconds`` of timed work."""

    warmup_runs: int = 10
    min_runs: int = 50
    min_seconds: float = 1.0
    max_seconds: float = 60.0       # stop adding runs after this (slow models, and
    #                                 measuring longer for a tight interval)
    max_ci: float = 0.02            # 95% CI of the p50 wider than +-this: measure longer,
    max_ci_seconds: float = 10.0    # up to this many seconds in all (then flag as imprecise)
    max_cv: float = 0.10            # descriptive only (older device files set it): the
    #                                 spread of single calls is stored, never a reason to discard
    max_drift: float = 0.10         # median change first->last fifth above this = drift
    retries: int = 2                # re-measurements of a drifting run
    calls_per_stream: int = 0       # chunk graphs: reset caches after this many calls

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown plan option(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(known))}")
        for k, v in d.items():
            want = type(getattr(cls, k))
            if isinstance(v, bool) or not isinstance(v, (int, float) if want is float else want):
                raise ValueError(f"plan option {k} must be a {want.__name__}, got {v!r}")
        plan = cls(**d)
        plan.check()
        return plan

    def check(self) -> None:
        """Settings that cannot mean anything are refused up front."""
        if self.warmup_runs < 0:
            raise ValueError(f"warmup_runs must be >= 0, got {self.warmup_runs}")
        if self.min_runs < 2:
            raise ValueError(f"min_runs must be >= 2 (a median of one run has no interval), "
                             f"got {self.min_runs}")
        if not self.min_seconds >= 0:
            raise ValueError(f"min_seconds must be >= 0, got {self.min_seconds}")
        if not self.max_seconds >= self.min_seconds:
            raise ValueError(f"max_seconds ({self.max_seconds}) must be >= min_seconds "
                             f"({self.min_seconds})")
        if not self.max_ci > 0 or not self.max_drift > 0:
            raise ValueError("max_ci and max_drift must be > 0")
        if self.retries < 0 or self.calls_per_stream < 0:
            raise ValueError("retries and calls_per_stream must be >= 0")

    def replace(self, **kw: Any) -> Plan:
        plan = Plan(**{**asdict(self), **kw})
        plan.check()
        return plan


@dataclass
class Timing:
    """What one timed run produced: per-call times, or (for tools that only
    print aggregates) a ready summary."""

    times_s: list[float] | None = None
    summary: dict[str, Any] | None = None
    memory_mb: float | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: seconds of a fixed reference workload timed right after each timed call
    probe_s: list[float] | None = None


@dataclass
class Measurement:
    arch_id: str
    device: str
    adapter: str
    format: str
    graph: str                        # "chunk" (per streaming chunk) or "utterance"
    latency: dict[str, Any]           # p50_ms, p90_ms, p99_ms, mean_ms, std_ms, cv, n, ...
    checks: dict[str, float]          # robust_cv, drift
    attempts: int
    flags: list[str]                  # problems that persisted after re-measuring
    memory_mb: float | None
    init_ms: float | None
    first_ms: float | None
    model_bytes: int
    provenance: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.flags

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Adapter(ABC):
    """One kind of device. Subclasses implement ``check``, ``prepare``,
    ``_run`` and ``describe``; ``measure`` applies the shared rules."""

    #: registry name, as written in a device file's ``adapter =``
    name: str = ""
    #: option -> (default, help); a device file's [options] table is checked against it
    OPTIONS: dict[str, tuple[Any, str]] = {}
    #: option -> allowed values
    CHOICES: dict[str, tuple[Any, ...]] = {}

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(cls.OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)} for adapter {cls.name!r}; "
                             f"known: {', '.join(cls.OPTIONS)}")
        out = {k: d for k, (d, _) in cls.OPTIONS.items()}
        for k, v in options.items():
            default = cls.OPTIONS[k][0]
            if default is not None and not isinstance(v, type(default)) and not (
                    isinstance(default, float) and isinstance(v, int)):
                raise ValueError(f"option {k} must be {type(default).__name__}, got {v!r}")
            if k in cls.CHOICES and v not in cls.CHOICES[k]:
                raise ValueError(f"option {k} must be one of "
                                 f"{', '.join(map(str, cls.CHOICES[k]))}, got {v!r}")
            out[k] = v
        return out

    def __init__(self, device: str, options: dict[str, Any]) -> None:
        self.device = device
        self.options = options

    # -- what subclasses provide -------------------------------------------
    @abstractmethod
    def check(self) -> str | None:
        """None when the device can be used now, else the reason in one line."""

    @property
    @abstractmethod
    def format(self) -> str:
        """Export format this device runs ("onnx", "tflite-int8", "torch", ...)."""

    @property
    def formats(self) -> tuple[str, ...]:
        """Every format this device can run (``--format`` overrides must be one)."""
        return (self.format,)

    @abstractmethod
    def prepare(self, artifact: Any) -> Any:
        """Load/push the model; returns a handle for ``measure``."""

    @abstractmethod
    def _run(self, handle: Any, plan: Plan) -> Timing:
        """One timed run following ``plan``."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Runtime and version, threads, host or phone details."""

    def release(self, handle: Any) -> None:  # noqa: B027 - optional hook
        """Free what ``prepare`` loaded."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Drop connections."""

    # -- shared -------------------------------------------------------------
    def available(self) -> bool:
        return self.check() is None

    def measure(self, handle: Any, plan: Plan, *, arch_id: str, graph: str,
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
            timing = self._run(handle, plan)
            if timing.times_s is not None:
                times, probes = list(timing.times_s), list(timing.probe_s or [])
                while True:
                    latency, checks, problems = self._judge(times, probes, plan)
                    # time spent: the wall clock, or the timed calls where a tool's
                    # clock says more (a replayed or remote run returns at once)
                    spent = max(time.perf_counter() - t0, float(sum(times)))
                    limit = min(plan.max_seconds, max(plan.max_ci_seconds, plan.min_seconds))
                    if checks["ci"] <= plan.max_ci or spent + max(plan.min_seconds, 1e-3 + (
                            float(sum(timing.times_s or [])))) > limit:
                        break
                    more = self._run(handle, plan)   # longer, not again: same series
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
        prov = {"device": self.device, "adapter": self.name, "format": self.format,
                "inputs": inputs or [], "date": _dt.datetime.now(_dt.UTC).isoformat(
                    timespec="seconds"), **self.describe()}
        return Measurement(arch_id=arch_id, device=self.device, adapter=self.name,
                           format=self.format, graph=graph, latency=latency, checks=checks,
                           attempts=attempts, flags=problems, memory_mb=timing.memory_mb,
                           init_ms=timing.init_ms, first_ms=timing.first_ms,
                           model_bytes=model_bytes, provenance=prov, extra=timing.extra)


    @staticmethod
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


def host_details() -> dict[str, Any]:
    """CPU model, cores and kernel of this host."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


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
