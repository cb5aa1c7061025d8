"""Executors: where units of work (export, measure, train a rung) run.

``make(name)`` gives one; ``names()`` lists them. A new executor is one file
here plus one line in ``REGISTRY``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import Executor, Unit, WorkerContext
from .local import LocalExecutor
from .process import ProcessExecutor

REGISTRY: dict[str, Callable[..., Executor]] = {
    "local": LocalExecutor,
    "process": ProcessExecutor,
}


def names() -> list[str]:
    return list(REGISTRY)


def make(name: str = "local", **options: Any) -> Executor:
    if name not in REGISTRY:
        raise ValueError(f"unknown executor {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name](**options)


__all__ = ["Executor", "LocalExecutor", "ProcessExecutor", "Unit", "WorkerContext", "make", "names"]
