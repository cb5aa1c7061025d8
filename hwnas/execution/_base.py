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
from collections.abc import Iterable, Iterator
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
    """What a worker process opens once: device adapters (by device name),
    corpora (by description) and supernets (by folder). The local executor
    shares the driver's own, so a device is not opened twice and features are
    computed once."""

    def __init__(self, devices_from: str | Path | None = None) -> None:
        self._adapters: dict[str, Any] = {}
        self._corpora: dict[str, Any] = {}
        self._supernets: dict[str, Any] = {}
        # a bench host's own workspace: its device files (serial -> name) are
        # the ones that count where its phones are attached
        self.devices_from = Path(devices_from) if devices_from else None

    def adapter(self, device: str, workspace: str | Path | None) -> Any:
        if device not in self._adapters:
            from hwnas.adapters.devicefile import load_device

            where = self.devices_from or (Path(workspace) if workspace else None)
            self._adapters[device] = load_device(device, where).make()
        return self._adapters[device]

    def share_adapter(self, device: str, adapter: Any) -> None:
        self._adapters[device] = adapter

    def corpus(self, description: dict, workspace: str | Path) -> Any:
        key = _corpus_key(description)
        if key not in self._corpora:
            from hwnas.training.prepare import corpus_from_description

            self._corpora[key] = corpus_from_description(description, Path(workspace))
        return self._corpora[key]

    def share_corpus(self, corpus: Any) -> None:
        self._corpora[_corpus_key(corpus.description)] = corpus

    def supernet(self, folder: str | Path) -> Any:
        """The supernet saved in ``folder``, read once per worker."""
        key = str(Path(folder).resolve())
        if key not in self._supernets:
            from hwnas.supernet.workspace import open_family

            self._supernets[key] = open_family(Path(folder))
        return self._supernets[key]


def _corpus_key(description: dict) -> str:
    import json

    return json.dumps(description, sort_keys=True)


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
