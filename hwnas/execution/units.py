"""The units of work the profiler sends: export an architecture, measure it.
Units of other work live beside it (``hwnas.training.units.TrainRung``,
``hwnas.supernet.units.ScoreSubnet``, ``hwnas.tts.units``): an executor
knows a unit only through its interface (``run(ctx)``, ``needs()``).

Each is a frozen dataclass of plain values (architectures as dicts, paths as
strings), so it pickles to another process or host, and a ``run(ctx)``
that does the work there and returns plain results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._base import device_resource


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

        adapter = ctx.adapter(self.device, self.workspace)
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


def node_name() -> str:
    """The host a unit ran on: $HWNAS_LAB_NODE (set by `hwnas lab join`) or
    the host name."""
    import os
    import socket

    return os.environ.get("HWNAS_LAB_NODE") or socket.gethostname()
