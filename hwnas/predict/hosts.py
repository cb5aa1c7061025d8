"""Host descriptors as predictor features: one predictor learns several CPUs.

A CPU predictor learns ratios to a reference workload timed beside every
call, which carries a profile to any host of the same microarchitecture.
Across microarchitectures the ratio itself changes (another cache, AVX-512
or not, AMX or not), so profiles made on different CPUs train one predictor
together, each row carrying its host's descriptor (``cpu_descriptor`` in
``hwnas.adapters.host``, recorded in every CPU measurement) as features, and
a prediction is asked for at this host's descriptor (``LatencyPredictor.at_host``).
What the descriptors cannot tell apart is left to the spot check.

Unknown parts of a descriptor (profiles recorded before descriptors were)
are NaN: the trees send them down their learnt default branch.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

HOST_FEATURES = ("host_amd", "host_avx2", "host_avx512", "host_avx512_bf16", "host_amx",
                 "host_l1d_kib", "host_l2_kib", "host_l3_mib", "host_runtime",
                 "host_log_ref_ms")


def runtime_number(runtime: str | None) -> float:
    """"onnxruntime 1.32.0" -> 1.32 (major + minor/100); NaN when unreadable."""
    m = re.search(r"(\d+)\.(\d+)", runtime or "")
    return int(m.group(1)) + int(m.group(2)) / 100 if m else math.nan


def host_vector(descriptor: dict[str, Any] | None, runtime: str | None,
                ref_ms: float | None) -> np.ndarray:
    """The HOST_FEATURES of one host (NaN where unknown)."""
    nan = math.nan
    d = descriptor or {}
    isa = set(d.get("isa") or []) if "isa" in d else None
    cache = d.get("cache_kib") or {}

    def has(flag: str) -> float:
        return nan if isa is None else float(flag in isa)

    vendor = d.get("vendor") or d.get("model_name") or ""
    amd = 1.0 if "AMD" in vendor.upper() else 0.0 if vendor else nan
    return np.array([amd, has("avx2"), has("avx512f"), has("avx512_bf16"), has("amx_tile"),
                     cache.get("l1", nan), cache.get("l2", nan),
                     cache["l3"] / 1024 if "l3" in cache else nan,
                     runtime_number(runtime),
                     math.log(ref_ms) if ref_ms and ref_ms > 0 else nan], dtype=float)


def row_host(row: dict[str, Any], ref_ms: float | None) -> tuple[str, np.ndarray]:
    """(a key naming the row's host kind, its host vector) from a profile row's
    provenance; rows without a descriptor fall back to the CPU model string."""
    prov = row.get("provenance") or {}
    if isinstance(prov, str):
        prov = json.loads(prov)
    d = prov.get("descriptor") or {"model_name": prov.get("cpu", "")}
    key = "|".join(str(x) for x in (d.get("model_name"), d.get("family_model"),
                                     ",".join(d.get("isa") or []), prov.get("runtime")))
    return key, host_vector(d, prov.get("runtime"), ref_ms)
