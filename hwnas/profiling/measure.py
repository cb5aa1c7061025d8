"""One architecture on one device: the host work (export, and the row's
fields that come from the architecture) and the device work (measure the
artifact, complete the row). The executor's Export and Measure units run
these; :mod:`hwnas.profiling.profiler` drives them over many architectures."""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas import tasks
from hwnas.adapters import Adapter, DeviceError, DeviceUnavailable, Measurement, Plan
from hwnas.errors import first_line
from hwnas.profiling.row import LATENCY_FIELDS
from hwnas.space.space import Arch


@dataclass
class TorchArtifact:
    """What the torch runtimes "export": the architecture file itself."""

    arch_id: str
    format: str
    path: str
    size_bytes: int
    graph: str
    inputs: list[dict[str, Any]]
    outputs: list[str]
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _torch_artifact(arch: Arch, out_dir: Path) -> TorchArtifact:
    from hwnas.tasks import build_model, device_graph

    work = out_dir / arch.id
    work.mkdir(parents=True, exist_ok=True)
    path = work / "arch.json"
    path.write_text(arch.to_json(indent=2) + "\n")
    model = build_model(arch)
    graph = device_graph(model)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return TorchArtifact(arch.id, "torch", str(path), size,
                         arch.graph,
                         [{"name": s.name, "shape": list(s.shape)} for s in graph.inputs],
                         list(graph.outputs))


def export_for(arch: Arch, fmt: str, out_dir: Path) -> Any:
    if fmt == "torch":
        return _torch_artifact(arch, out_dir)
    from hwnas.export import export

    return export(arch, fmt, out_dir)


def plan_for(arch: Arch, plan: Plan) -> Plan:
    """A streaming graph restarts its stream where its task says an input ends
    (the recogniser's every 4.8 s of audio, as utterances do)."""
    calls = tasks.calls_per_stream(arch)
    return plan if calls is None else plan.replace(calls_per_stream=calls)


def row_key(arch_id: str, fmt: str, repeat: int = 1) -> str:
    """Store key of one measurement: repeats after the first get ``#N``."""
    return f"{arch_id}:{fmt}" + (f"#{repeat}" if repeat > 1 else "")


def base_row(arch: Arch, fmt: str, repeat: int = 1) -> dict[str, Any]:
    """The fields of a profile row that come from the architecture alone."""
    from hwnas import tasks

    st = tasks.stats(arch)
    return {
        "key": row_key(arch.id, fmt, repeat), "arch_id": arch.id, "format": fmt,
        "arch": arch.to_dict(), **tasks.row_fields(arch),
        "graph": arch.graph, "params": st["params"],
        "flops": st["flops"], "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
    }


def export_row(arch: Arch, fmt: str, out_dir: Path, repeat: int = 1
               ) -> tuple[dict[str, Any], Any]:
    """Host work: (the row so far, the artifact); a failed export is a finished
    row (status failed, with its reason) and no artifact."""
    from hwnas.export.errors import ExportError

    row = base_row(arch, fmt, repeat)
    t0 = time.perf_counter()
    try:
        art = export_for(arch, fmt, out_dir)
    except (ExportError, ValueError, RuntimeError) as e:
        return {**row, "status": "failed", "error": f"export: {e}",
                "export_s": round(time.perf_counter() - t0, 3)}, None
    row["export_s"] = round(time.perf_counter() - t0, 3)
    return row, art


def measure_artifact(adapter: Adapter, arch: Arch, art: Any, plan: Plan,
                     row: dict[str, Any], ref_nominal_ms: float | None = None
                     ) -> tuple[dict[str, Any], Measurement | None]:
    """Device work: ``row`` (from :func:`export_row`) completed by measuring
    ``art`` (status ok|flagged|failed). DeviceUnavailable propagates: the
    device, not the architecture, failed.

    Where the adapter times a reference workload beside every call, the row
    also holds ``rel_p50`` (median per-call ratio to the reference) and
    ``norm_p50_ms`` = rel_p50 x the reference's nominal time for this profile:
    the latency with the host's speed swings divided out."""
    row = dict(row)
    t1 = time.perf_counter()
    handle = None
    try:
        handle = adapter.prepare(art)
        m = adapter.measure(handle, plan_for(arch, plan), arch_id=arch.id, graph=art.graph,
                            model_bytes=art.size_bytes, inputs=art.inputs)
    except DeviceUnavailable:
        raise
    except (DeviceError, RuntimeError, ValueError, OSError) as e:
        return {**row, "status": "failed", "error": f"run: {first_line(e)}",
                "measure_s": round(time.perf_counter() - t1, 3)}, None
    finally:
        if handle is not None:
            adapter.release(handle)
    from hwnas.tasks import audio_ms

    audio = audio_ms(arch)
    lat = m.latency
    p50 = lat.get("p50_ms", lat.get("mean_ms"))
    row.update({k: lat.get(k) for k in LATENCY_FIELDS})
    row["ci"] = m.checks.get("ci")
    if lat.get("rel_p50") is not None and ref_nominal_ms:
        row["norm_p50_ms"] = lat["rel_p50"] * ref_nominal_ms
        if lat.get("rel_p50_ci_lo") is not None:
            row["norm_p50_ci_lo"] = lat["rel_p50_ci_lo"] * ref_nominal_ms
            row["norm_p50_ci_hi"] = lat["rel_p50_ci_hi"] * ref_nominal_ms
    row.update({
        "status": "ok" if m.ok else "flagged", "error": "; ".join(m.flags) or None,
        "robust_cv": m.checks.get("robust_cv"), "drift": m.checks.get("drift"),
        "attempts": m.attempts, "flags": m.flags, "audio_ms": audio,
        "rtf": p50 / audio if p50 is not None else None, "memory_mb": m.memory_mb,
        "init_ms": m.init_ms, "first_ms": m.first_ms, "model_bytes": m.model_bytes,
        "measure_s": round(time.perf_counter() - t1, 3), "provenance": m.provenance,
        "extra": m.extra,
    })
    return row, m


def measure_arch(adapter: Adapter, arch: Arch, plan: Plan, out_dir: Path,
                 fmt: str | None = None, ref_nominal_ms: float | None = None,
                 repeat: int = 1) -> tuple[dict[str, Any], Measurement | None]:
    """One architecture on one device, exported here: :func:`export_row`, then
    :func:`measure_artifact`."""
    row, art = export_row(arch, fmt or adapter.format, out_dir, repeat)
    if art is None:
        return row, None
    return measure_artifact(adapter, arch, art, plan, row, ref_nominal_ms)
