"""What flows through the device interface: how to time a model
(:class:`Plan`), what one timed run gives (:class:`Timing`) and the judged
result (:class:`Measurement`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


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
class ModelRun:
    """A model file to run as given (``hwnas bench``): the value of every
    input, and which output feeds which input on the next call. Adapters
    take it wherever they take an exported artifact."""

    path: str
    format: str                       # onnx | tflite | torchscript | torch-export
    inputs: list[dict[str, Any]]      # name, shape, dtype
    outputs: list[str]
    feeds: dict[str, Any]             # input name -> numpy array
    pairs: dict[str, str]             # output name -> the input it feeds next call

    @property
    def arch_id(self) -> str:
        """The file's stem as a name a device's file system takes."""
        import re
        from pathlib import Path

        return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(self.path).stem)


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
