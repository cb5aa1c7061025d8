"""The executor seam: units of work go out, results come back to the driver.

A *unit* is a plain, picklable description of one piece of work (export an
architecture, measure an artifact on a device, train a rung) with a
``run(ctx)`` method. It names what it needs (a device by name, a corpus by
its description) instead of holding live objects, so an executor may run it
in this process or on another host. ``ctx`` is the worker's
:class:`WorkerContext`: what a process opens once and reuses (adapters,
corpora).

The driver submits units and consumes the results; it stays the single
writer of the profile store and the study. Units write only their own
output folders (an export, a trial's run folder).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol


class Unit(Protocol):
    def run(self, ctx: WorkerContext) -> Any: ...

    def needs(self) -> dict[str, Any]:
        """What the unit needs where it runs: ``num_cpus`` and ``resources``
        (a device's resource, :func:`device_resource`), as Ray places tasks."""
        ...


def device_resource(device: str) -> str:
    """The cluster resource a node advertises for one attached device (one
    unit of it: one measurement at a time)."""
    return f"device:{device}"


class WorkerLost(RuntimeError):
    """The worker (process or node) running a unit died; the unit did not
    fail, and may run again elsewhere."""


class WorkerContext:
    """What a worker process opens once and reuses, by key: device adapters,
    corpora, supernets -- each workload's own helper names its key and how to
    open it (``hwnas.profiling.units.adapter_of``, ``hwnas.training.prepare.
    corpus_of``, ``hwnas.asr.supernet.workspace.supernet_of``), so this layer knows
    none of them. The local executor shares the driver's own, so a device is
    not opened twice and features are computed once."""

    def __init__(self, devices_from: str | Path | None = None) -> None:
        self._opened: dict[Any, Any] = {}
        # a bench host's own workspace: its device files (serial -> name) are
        # the ones that count where its phones are attached
        self.devices_from = Path(devices_from) if devices_from else None

    def opened(self, key: Any, open_: Callable[[], Any]) -> Any:
        """What ``key`` names, opened by ``open_()`` the first time."""
        if key not in self._opened:
            self._opened[key] = open_()
        return self._opened[key]

    def share(self, key: Any, value: Any) -> None:
        """Use the driver's ``value`` for ``key`` (it is not opened again)."""
        self._opened[key] = value


class Executor(ABC):
    """Runs units; ``submit`` returns a future whose result (or exception) is
    the unit's."""

    name = "?"
    #: units run concurrently (the driver may keep several in flight)
    concurrent = False

    def abandon(self, future: Future) -> None:  # noqa: B027 - nothing to abandon in process
        """Give up on a submitted unit (its device is gone): stop it where it
        runs, if it still does; its future will not be waited for."""

    def device_available(self, device: str) -> bool | None:
        """Whether a worker advertises ``device`` now; None: this executor
        cannot tell (its devices are this host's)."""
        return None

    @abstractmethod
    def submit(self, unit: Unit) -> Future: ...

    #: times a unit whose worker died is submitted again by ``map``
    RETRIES = 2

    def map(self, units: Iterable[Unit]) -> Iterator[Any]:
        """Every unit's result, in the order given (all submitted first). A
        unit whose worker died (:class:`WorkerLost`) runs again, up to
        ``RETRIES`` times: units are idempotent (a rung restarts from the
        snapshot its previous rung left)."""
        units = list(units)
        futures = [self.submit(u) for u in units]
        for unit, f in zip(units, futures):
            for attempt in range(self.RETRIES + 1):
                try:
                    yield f.result()
                    break
                except WorkerLost:
                    if attempt == self.RETRIES:
                        raise
                    f = self.submit(unit)

    def close(self) -> None:  # noqa: B027 - optional: the local executor holds nothing
        """Release what the executor holds (workers, connections)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def node_name() -> str:
    """The host a unit ran on: $HWNAS_LAB_NODE (set by `hwnas lab join`) or
    the host name."""
    import os
    import socket

    return os.environ.get("HWNAS_LAB_NODE") or socket.gethostname()
