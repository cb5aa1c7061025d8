"""The small API for lab-bench scripts (see examples/lab_bench.py):

    from hwnas.lab import Lab

    with Lab("10.0.0.1:6379", workspace="lab") as lab:
        print(lab.phones("pixel6-*"))                       # every pixel6 of the lab
        lab.profile("pixel6", n=200, phones="pixel6-*")    # one profile, all of them
        lab.profile_each("pixel6-*", n=20)                 # a profile per phone

Everything is the command line's own code (ProfileRun, the Ray executor);
rows are stored in the workspace's profiles, resumably, as by `hwnas profile`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatch
from pathlib import Path
from typing import Any


class Lab:
    def __init__(self, address: str = "auto", workspace: str | Path | None = None,
                 say: Callable[[str], None] | None = print) -> None:
        from hwnas.execution.ray import RayExecutor
        from hwnas.paths import workspace as resolve

        self.workspace = resolve(str(workspace) if workspace else None)
        self.executor = RayExecutor(address)
        self.say = say

    def phones(self, pattern: str = "*") -> list[dict[str, Any]]:
        """The cluster's phones whose device name matches ``pattern``: device,
        host, state (free, busy, unreachable)."""
        from .cluster import cluster_devices

        return [r for r in cluster_devices(self.executor.ray) if fnmatch(r["device"], pattern)]

    def profile(self, device: str, n: int, phones: str | None = None, seed: int = 0,
                space: Any = None, on_row: Callable[[dict[str, Any]], None] | None = None,
                ) -> list[dict[str, Any]]:
        """Measure ``n`` sampled architectures for ``device``'s profile on the
        phones matching ``phones`` (default: the device itself); returns the new
        rows."""
        from hwnas import tasks
        from hwnas.adapters.devicefile import load_device, matching_devices
        from hwnas.profiling.profiler import ProfileRun

        spec = load_device(device, self.workspace)
        pool = matching_devices(phones, self.workspace, like=spec) if phones else None
        return ProfileRun(spec, self.workspace, n, seed, space or tasks.default_space(),
                          executor=self.executor, phones=pool, say=self.say).collect(on_row)

    def profile_each(self, pattern: str, n: int, seed: int = 0
                     ) -> dict[str, list[dict[str, Any]]]:
        """A profile per phone matching ``pattern`` (each its own device), all
        phones at once."""
        names = sorted({r["device"] for r in self.phones(pattern)})
        if not names:
            raise ValueError(f"no phone of the cluster matches {pattern!r}")
        with ThreadPoolExecutor(len(names)) as pool:
            futures = {name: pool.submit(self.profile, name, n, None, seed) for name in names}
            return {name: f.result() for name, f in futures.items()}

    def close(self) -> None:
        self.executor.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
