"""The profiler's units of work (``hwnas.execution``): export an architecture
(host work), measure the artifact on a device (device work)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.execution import device_resource, node_name


def adapter_of(ctx: Any, device: str, workspace: str | Path | None) -> Any:
    """The worker's adapter of ``device``, opened once (from the bench host's
    own device files where it has them)."""
    def open_() -> Any:
        from hwnas.adapters.devicefile import load_device

        where = ctx.devices_from or (Path(workspace) if workspace else None)
        return load_device(device, where).make()

    return ctx.opened(("adapter", device), open_)


@dataclass(frozen=True)
class Export:
    """Host work: an architecture converted to a device format in ``out_dir``.
    Returns (the profile row so far, the artifact: a plain dataclass); a
    failed export is a finished row (status failed) and no artifact."""

    arch: dict[str, Any]
    fmt: str
    out_dir: str
    repeat: int = 1

    def run(self, ctx: Any) -> tuple[dict[str, Any], Any]:
        from hwnas.profiling.measure import export_row
        from hwnas.tasks import arch_from_dict

        return export_row(arch_from_dict(self.arch), self.fmt, Path(self.out_dir),
                          self.repeat)

    def needs(self) -> dict[str, Any]:
        return {"num_cpus": 1}


@dataclass(frozen=True)
class Measure:
    """Device work: an exported artifact measured on a device (by name), which
    completes the row for the driver to store. ``DeviceUnavailable``
    propagates: the device, not the architecture, failed."""

    device: str
    workspace: str | None
    row: dict[str, Any]
    artifact: Any
    plan: dict[str, Any]
    ref_nominal_ms: float | None = None

    def run(self, ctx: Any) -> dict[str, Any]:
        from hwnas.adapters import Plan
        from hwnas.profiling.measure import measure_artifact
        from hwnas.tasks import arch_from_dict

        adapter = adapter_of(ctx, self.device, self.workspace)
        row, _ = measure_artifact(adapter, arch_from_dict(self.row["arch"]),
                                  self.artifact, Plan(**self.plan), self.row,
                                  self.ref_nominal_ms)
        # which phone of a pool, on which host, measured it
        row["provenance"] = {**(row.get("provenance") or {}), "phone": self.device,
                             "node": node_name()}
        return row

    def needs(self) -> dict[str, Any]:
        # the device, not a CPU: a bench host's CPUs stay free of other work
        return {"num_cpus": 0, "resources": {device_resource(self.device): 1}}
