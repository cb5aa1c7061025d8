"""Verification of the search's answer on the device itself.

Every architecture of the feasible Pareto set is measured on the target
(through the profiler, so the rows also land in the target's profile and
later improve its predictor). One that misses the latency constraint when
measured is dropped and reported with both numbers. p90 and real-time
factor are reported on the label's scale (scaled by label / raw p50 where
the label is the probe-normalised p50).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwnas.space import ArchConfig, default_space


def verify(rows: list[dict[str, Any]], spec: Any, workspace: Path, label: str,
           max_latency_ms: float | None, measure: Callable[[Any], Any] | None = None,
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """(kept, dropped, reason-if-not-verified). ``label`` is the predictor's
    label column (``norm_p50_ms`` or ``p50_ms``), so measured and predicted
    figures are the same quantity."""
    from hwnas.adapters import DeviceUnavailable
    from hwnas.predict.dataset import from_rows
    from hwnas.profiling.profiler import ProfileRun

    if not rows:
        return [], [], None
    archs = [ArchConfig.from_dict(r["arch"]) for r in rows]
    run = ProfileRun(spec, workspace, len(archs), 0, default_space(), archs=archs)
    try:  # the run checks the device first and raises before measuring anything
        if measure is not None:
            measure(run)
        else:
            for _ in run.run():
                pass
    except DeviceUnavailable as e:
        return rows, [], f"{e}: latencies are predicted"
    rows_all = run.store().rows()
    measured = from_rows(rows_all, "norm" if label == "norm_p50_ms" else "raw")
    by_id = dict(zip(measured.ids, measured.y))
    extra: dict[str, dict[str, float]] = {}
    for row in rows_all:
        if row.get("status") == "ok" and row["arch_id"] in by_id and row.get("p50_ms"):
            scale = (row.get(label) or row["p50_ms"]) / row["p50_ms"]
            extra.setdefault(row["arch_id"], {  # (not every tool reports a p90)
                **{k: float(row[k]) * scale if row.get(k) is not None else None
                   for k in ("p90_ms", "rtf")},
                "model_bytes": row.get("model_bytes")})
    kept, dropped = [], []
    for r in rows:
        m = by_id.get(r["arch_id"])
        r = {**r, "predicted_ms": r["latency_ms"]}
        if m is None:
            dropped.append({**r, "reason": "no ok measurement (failed or flagged)"})
            continue
        r.update(latency_ms=float(m), latency_source="measured", **extra.get(r["arch_id"], {}))
        if max_latency_ms is not None and m > max_latency_ms:
            dropped.append({**r, "reason": f"measured {m:.2f} ms > {max_latency_ms:g} ms "
                                           f"(predicted {r['predicted_ms']:.2f} ms)"})
        else:
            kept.append(r)
    return kept, dropped, None
