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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwnas.adapters import Adapter, DeviceUnavailable, Plan
from hwnas.adapters.devicefile import DeviceSpec
from hwnas.asr import ArchConfig
from hwnas.execution import LocalExecutor
from hwnas.execution.units import Export, Measure
from hwnas.profiling.measure import row_key
from hwnas.profiling.store import ProfileStore, profile_dir
from hwnas.space import SearchSpace


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

