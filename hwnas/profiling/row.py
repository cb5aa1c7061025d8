"""One profile row: one architecture measured in one format on one device.

:class:`ProfileRow` is the one place the row's fields are written down; the
store's Parquet columns (:data:`COLUMNS`), the JSON-encoded ones and the
latency statistics copied from a measurement are derived from it.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

#: a field filled from the adapter's latency summary (``Measurement.latency``)
_LAT = {"from": "latency"}


def _lat() -> Any:
    return field(default=None, metadata=_LAT)


@dataclass
class ProfileRow:
    # identity: what was measured
    key: str                                 # arch_id:format[#repeat]
    arch_id: str
    format: str
    status: str | None = None                # ok | flagged | failed
    error: str | None = None                 # why failed or flagged
    graph: str | None = None                 # chunk | utterance
    # latency per device-graph call, ms (estimates over the timed calls)
    p50_ms: float | None = _lat()
    p90_ms: float | None = _lat()
    p99_ms: float | None = _lat()
    mean_ms: float | None = _lat()
    std_ms: float | None = _lat()
    min_ms: float | None = _lat()
    max_ms: float | None = _lat()
    cv: float | None = _lat()
    n: int | None = _lat()
    # quality checks and what the measurement cost
    robust_cv: float | None = None
    drift: float | None = None
    attempts: int | None = None
    flags: list[str] | None = None
    audio_ms: float | None = None            # audio per call (chunk or utterance)
    rtf: float | None = None                 # p50 / audio
    memory_mb: float | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    model_bytes: int | None = None
    params: int | None = None                # of the device graph
    flops: int | None = None                 # per device-graph call
    # the host's speed divided out: per-call ratios to the reference workload
    ref_p50_ms: float | None = _lat()
    rel_p50: float | None = _lat()
    norm_p50_ms: float | None = None         # rel_p50 x the profile's nominal reference ms
    export_s: float | None = None
    measure_s: float | None = None
    encoder: str | None = None
    decoder: str | None = None
    streaming: bool | None = None
    arch: dict[str, Any] | None = None       # the ArchConfig
    provenance: dict[str, Any] | None = None  # device, adapter, runtime, host, inputs, date
    extra: dict[str, Any] | None = None      # what the adapter adds
    seed: int | None = None
    date: str | None = None
    # 95% confidence intervals of the estimates (statistics.quantile_ci) and how they were made
    p50_ci_lo: float | None = _lat()
    p50_ci_hi: float | None = _lat()
    p90_ci_lo: float | None = _lat()
    p90_ci_hi: float | None = _lat()
    rel_p50_ci_lo: float | None = _lat()
    rel_p50_ci_hi: float | None = _lat()
    norm_p50_ci_lo: float | None = None
    norm_p50_ci_hi: float | None = None
    ci: float | None = None                  # half-width of the p50's interval, relative
    ci_method: str | None = _lat()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_ARROW = {"str": "string", "float": "float64", "int": "int64", "bool": "bool"}


def _arrow_type(annotation: str) -> str:
    base = annotation.split("|")[0].strip()
    return _ARROW.get(base, "string")   # lists and dicts are stored as JSON strings


#: column -> Arrow type name, in the store's column order
COLUMNS: dict[str, str] = {f.name: _arrow_type(str(f.type)) for f in fields(ProfileRow)}
#: columns holding nested values, stored as JSON strings
JSON_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ProfileRow)
                                      if str(f.type).split("[")[0] in ("list", "dict"))
#: the statistics a row copies from the adapter's latency summary
LATENCY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ProfileRow)
                                        if f.metadata.get("from") == "latency")
#: the fields every row has (no default)
REQUIRED: tuple[str, ...] = tuple(f.name for f in fields(ProfileRow)
                                  if f.default is MISSING and f.default_factory is MISSING)
