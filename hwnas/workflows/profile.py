"""What a profile holds, summarised: rows by status, graphs, formats and
runtimes, per-encoder latency (one figure per architecture), and the
problems of the rows that are not ok (the same problem with other numbers
counts once)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any


def profile_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    status = Counter(r["status"] for r in rows)
    ok = [r for r in rows if r["status"] == "ok"]
    by_family: dict[str, dict[str, Any]] = {}
    for fam in sorted({r["encoder"] for r in ok}):
        # one figure per architecture (the median of its repeats), so an
        # architecture measured in two passes is not counted twice
        per_arch: dict[str, list[dict[str, Any]]] = {}
        for r in ok:
            if r["encoder"] == fam:
                per_arch.setdefault(r["arch_id"], []).append(r)
        lat = [float(np.median([r["p50_ms"] for r in rs])) for rs in per_arch.values()]
        norm = [float(np.median([r["norm_p50_ms"] for r in rs])) for rs in per_arch.values()
                if all(r.get("norm_p50_ms") for r in rs)]
        by_family[fam] = {"n": len(per_arch), "rows": sum(len(v) for v in per_arch.values()),
                          "p50_ms_median": float(np.median(lat)),
                          "p50_ms_min": float(min(lat)), "p50_ms_max": float(max(lat)),
                          "norm_p50_ms_median": float(np.median(norm)) if norm else None}
    by_graph = Counter(r["graph"] for r in ok)
    # the same problem with different numbers counts once: "noisy: robust CV N% > N%"
    reasons = Counter(re.sub(r"[-+]?\d+(?:\.\d+)?", "N", r.get("error") or "?")[:100]
                      for r in rows if r["status"] != "ok")
    runtimes = sorted({(r.get("provenance") or {}).get("runtime", "?") for r in ok})
    cvs = [r["cv"] for r in ok if r.get("cv") is not None]
    dates = sorted(r["date"] for r in rows)
    return {"rows": len(rows), "architectures": len({r["arch_id"] for r in rows}),
            "status": dict(status), "graphs": dict(by_graph),
            "formats": sorted({r["format"] for r in rows}), "runtimes": runtimes,
            "first": dates[0] if dates else None, "last": dates[-1] if dates else None,
            "by_encoder": by_family,
            "median_cv": float(np.median(cvs)) if cvs else None,
            "problems": dict(reasons.most_common(10))}


def check_ops_device(spec: Any) -> None:
    """``--ops`` times blocks with ONNX Runtime's profiler on this host: only a
    device that is this host's CPU with ONNX Runtime is profiled that way."""
    if spec.adapter not in ("cpu",) or spec.options.get("runtime") != "onnxruntime":
        raise ValueError(f"--ops: device {spec.name} is not this host's CPU with ONNX Runtime; "
                         "per-block times come from ONNX Runtime's profiler here (hwnas bench "
                         "--ops times a model file on such a device)")


def block_tables(rows: list[dict[str, Any]], spec: Any) -> list[dict[str, Any]]:
    """Where the time goes, per block, for each architecture measured (not failed) in
    ``rows``: its ONNX graph under ONNX Runtime's profiler on this host, with
    the device's threads. Only for host devices that run ONNX Runtime: a
    phone's own per-operator times come from its benchmark tool."""
    import tempfile

    from hwnas import tasks
    from hwnas.bench.run import block_profile
    from hwnas.export import export

    check_ops_device(spec)
    out = []
    done: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="hwnas-ops-") as tmp:
        for r in rows:
            if r["status"] == "failed" or not r.get("arch") or r["arch_id"] in done:
                continue
            done.add(r["arch_id"])
            art = export(tasks.arch_from_dict(r["arch"]), "onnx", tmp, check=False)
            got = block_profile(art.path, spec.options.get("threads", 1))
            out.append({"arch_id": r["arch_id"], "encoder": r.get("encoder"), **got})
    return out
