"""export -> prepare -> measure -> store, for N sampled architectures.

Resumable: the architectures are ``space.sample_distinct(n, seed)`` (the
first k of a larger n are the same k), and every stored key is skipped. An
architecture that fails to export or run is stored with its reason; a device
that drops off (DeviceUnavailable) stops the run, keeping every stored row.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwnas.adapters import Adapter, DeviceError, DeviceUnavailable, Measurement, Plan
from hwnas.adapters.devicefile import DeviceSpec
from hwnas.asr import ArchConfig
from hwnas.asr.graph_io import audio_ms_per_call
from hwnas.errors import first_line
from hwnas.execution import LocalExecutor
from hwnas.execution.units import Export, Measure
from hwnas.profiling.row import LATENCY_FIELDS
from hwnas.profiling.store import ProfileStore, profile_dir
from hwnas.space import SearchSpace


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


def _torch_artifact(arch: ArchConfig, out_dir: Path) -> TorchArtifact:
    from hwnas.asr.models import build, device_graph

    work = out_dir / arch.id
    work.mkdir(parents=True, exist_ok=True)
    path = work / "arch.json"
    path.write_text(arch.to_json(indent=2) + "\n")
    model = build(arch)
    graph = device_graph(model)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return TorchArtifact(arch.id, "torch", str(path), size,
                         arch.graph,
                         [{"name": s.name, "shape": list(s.shape)} for s in graph.inputs],
                         list(graph.outputs))


def export_for(arch: ArchConfig, fmt: str, out_dir: Path) -> Any:
    if fmt == "torch":
        return _torch_artifact(arch, out_dir)
    from hwnas.export import export

    return export(arch, fmt, out_dir)


def plan_for(arch: ArchConfig, plan: Plan) -> Plan:
    """Chunk graphs restart their stream every 4.8 s of audio, as utterances do."""
    if arch.streaming:
        return plan.replace(calls_per_stream=max(1, 4800 // arch.chunk_ms))
    return plan


def row_key(arch_id: str, fmt: str, repeat: int = 1) -> str:
    """Store key of one measurement: repeats after the first get ``#N``."""
    return f"{arch_id}:{fmt}" + (f"#{repeat}" if repeat > 1 else "")


def base_row(arch: ArchConfig, fmt: str, repeat: int = 1) -> dict[str, Any]:
    """The fields of a profile row that come from the architecture alone."""
    from hwnas.asr.models.stats import model_stats

    st = model_stats(arch)
    return {
        "key": row_key(arch.id, fmt, repeat), "arch_id": arch.id, "format": fmt,
        "arch": arch.to_dict(),
        "encoder": arch.encoder, "decoder": arch.decoder, "streaming": arch.streaming,
        "graph": arch.graph, "params": st.graph_params,
        "flops": st.flops, "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
    }


def export_row(arch: ArchConfig, fmt: str, out_dir: Path, repeat: int = 1
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


def measure_artifact(adapter: Adapter, arch: ArchConfig, art: Any, plan: Plan,
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
    audio = audio_ms_per_call(art.graph, arch.chunk_ms)
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


def measure_arch(adapter: Adapter, arch: ArchConfig, plan: Plan, out_dir: Path,
                 fmt: str | None = None, ref_nominal_ms: float | None = None,
                 repeat: int = 1) -> tuple[dict[str, Any], Measurement | None]:
    """One architecture on one device, exported here: :func:`export_row`, then
    :func:`measure_artifact`."""
    row, art = export_row(arch, fmt or adapter.format, out_dir, repeat)
    if art is None:
        return row, None
    return measure_artifact(adapter, arch, art, plan, row, ref_nominal_ms)


@dataclass
class ProfileRun:
    spec: DeviceSpec
    workspace: Path
    n: int
    seed: int
    space: SearchSpace
    fmt: str | None = None
    plan: Plan | None = None
    keep_models: bool = False
    retry_failed: bool = False
    repeats: int = 1         # independent measurements per architecture (later passes
                             # run after the whole first pass, at another time)
    archs: list[ArchConfig] | None = None  # measure these instead of sampling n
    executor: Any = None     # where measurements run (default: this process)
    stored_rows: int = 0     # rows in the profile after the last run()
    notes: list[str] = field(default_factory=list)  # what opening the store recovered

    @property
    def folder(self) -> Path:
        return profile_dir(self.workspace, self.spec.name)

    def store(self) -> ProfileStore:
        return ProfileStore(self.folder, self.spec.name, create=True,
                            device_file=Path(self.spec.source).read_text())

    @staticmethod
    def reference(store: ProfileStore, adapter: Adapter) -> float | None:
        """The reference workload's nominal ms for this profile, calibrated once
        when the profile starts so that every later run shares the same scale."""
        ref = store.manifest.get("reference")
        if ref is None:
            nominal = adapter.calibrate_reference()
            if nominal is None:
                return None
            ref = {"workload": adapter.describe().get("reference"), "nominal_ms": nominal,
                   "calibrated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
            store.set_meta("reference", ref)
        return float(ref["nominal_ms"])

    def todo(self, store: ProfileStore, adapter: Adapter) -> list[tuple[ArchConfig, int]]:
        """(architecture, repeat) pairs not stored yet, pass by pass."""
        fmt = self.fmt or adapter.format
        keys = store.keys()
        if self.retry_failed:
            keys = keys - store.failed_keys()
        archs = self.archs if self.archs is not None else \
            self.space.sample_distinct(self.n, self.seed)
        archs = list({a.id: a for a in archs}.values())  # an architecture once per pass
        return [(a, r) for r in range(1, self.repeats + 1) for a in archs
                if row_key(a.id, fmt, r) not in keys]

    def drive(self, measure: Callable[[ProfileRun], Any] | None = None) -> None:
        """Measure everything missing: through ``measure(self)`` (e.g. under a
        progress bar), or silently."""
        if measure is not None:
            measure(self)
        else:
            for _ in self.run():
                pass

    def run(self, on_start: Callable[[int, int], None] | None = None,
            ) -> Iterator[dict[str, Any]]:
        """Measure what is missing; yields each stored row."""
        adapter = self.spec.make()
        if self.fmt is not None and self.fmt not in adapter.formats:
            raise ValueError(f"device {self.spec.name} runs {', '.join(adapter.formats)}, "
                             f"not {self.fmt}")
        why = adapter.check()
        if why is not None:
            raise DeviceUnavailable(f"device {self.spec.name}: {why}")
        store = self.store()
        self.notes = list(store.notes)
        todo = self.todo(store, adapter)
        if on_start:
            on_start(len(todo), len(store))
        plan = self.plan or self.spec.plan
        nominal = self.reference(store, adapter)
        cache = Path(tempfile.mkdtemp(prefix="hwnas-profile-"))
        executor = self.executor or LocalExecutor()
        ctx = getattr(executor, "ctx", None)
        if ctx is not None:   # in this process: the units use the adapter opened here
            ctx.share_adapter(self.spec.name, adapter)
        fmt = self.fmt or adapter.format

        def rows() -> Iterator[tuple[ArchConfig, dict[str, Any]]]:
            for arch, rep in todo:   # host work, then device work, as two units
                row, art = executor.submit(Export(arch.to_dict(), fmt, str(cache), rep)).result()
                if art is not None:
                    row = executor.submit(Measure(self.spec.name, str(self.workspace), row, art,
                                                  asdict(plan), nominal)).result()
                yield arch, row

        try:
            # the results come back here: this process alone writes the store
            for arch, row in rows():
                row["seed"] = self.seed
                store.append(row, replace_failed=self.retry_failed)
                if not self.keep_models:
                    shutil.rmtree(cache / arch.id, ignore_errors=True)
                yield row
        finally:
            store.compact()
            self.stored_rows = len(store)
            adapter.close()
            if self.keep_models:
                keep = self.workspace / "runs" / "profile-models" / self.spec.name
                keep.mkdir(parents=True, exist_ok=True)
                for d in cache.iterdir():
                    shutil.rmtree(keep / d.name, ignore_errors=True)
                    shutil.move(str(d), keep / d.name)
            shutil.rmtree(cache, ignore_errors=True)

