"""Executors: where units of work (export, measure, train a rung) run. A unit
lives beside its workload (``hwnas.profiling.units``, ``hwnas.tasks.units``,
...); this package knows it only through its interface.

``make(name)`` gives one; ``names()`` lists them. A new executor is one file
here plus one line in ``REGISTRY``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import Executor, Unit, WorkerContext, WorkerLost, device_resource, node_name
from .local import LocalExecutor
from .process import ProcessExecutor


def _ray(**options: Any) -> Executor:
    from .ray import RayExecutor  # Ray is imported only when asked for

    return RayExecutor(**options)


REGISTRY: dict[str, Callable[..., Executor]] = {
    "local": LocalExecutor,
    "process": ProcessExecutor,
    "ray": _ray,
}


def _installed() -> dict[str, str]:
    """Executors installed packages add (``hwnas.executors`` entry points)."""
    from hwnas.plugins import installed

    return {k: v for k, v in installed("hwnas.executors").items() if k not in REGISTRY}


def names() -> list[str]:
    return [*REGISTRY, *_installed()]


def make(name: str = "local", **options: Any) -> Executor:
    if name in REGISTRY:
        return REGISTRY[name](**options)
    if name in _installed():
        from hwnas.plugins import load

        return load(_installed()[name])(**options)
    raise ValueError(f"unknown executor {name!r}; choose from {', '.join(names())}")


__all__ = ["Executor", "LocalExecutor", "ProcessExecutor", "Unit", "WorkerContext", "WorkerLost",
           "device_resource", "make", "names", "node_name"]
