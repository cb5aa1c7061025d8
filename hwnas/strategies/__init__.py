"""Search strategies: a registry of what `hwnas search --sampler` can use.

Adding one is a module here with a ``Strategy`` subclass plus one line below.
Entries are "module:Class", imported when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from hwnas.strategies._base import Strategy

REGISTRY: dict[str, str] = {
    "nsga2": "optuna:NSGA2",
    "tpe": "optuna:TPE",
    "gp": "optuna:GP",
    "random": "optuna:Random",
    "evolution": "evolution:Evolution",
}


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def make(name: str, space: Any, seed: int = 0, objectives: Any = ("cer",),
         population: int = 8) -> Strategy:
    if name not in REGISTRY:
        raise ValueError(f"unknown sampler {name!r}; one of {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    klass = getattr(importlib.import_module(f"hwnas.strategies.{module}"), cls)
    return klass(space, seed=seed, objectives=objectives, population=population)


__all__ = ["REGISTRY", "Strategy", "make", "names"]
