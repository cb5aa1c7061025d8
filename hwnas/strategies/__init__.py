"""Search strategies: a registry of what `hwnas search --strategy` can use.

Adding one is a module here with a ``Strategy`` subclass plus one line below
("module:Class" and the line `hwnas search --help` shows; imported when used).
"""

from __future__ import annotations

import importlib
from typing import Any

from hwnas.strategies._base import Judge, Strategy

REGISTRY: dict[str, tuple[str, str]] = {
    "nsga2": ("optuna:NSGA2", "Optuna's NSGA-II, on Pareto rank and crowding (the default)"),
    "evolution": ("evolution:Evolution", "regularised (aging) evolution, Pareto tournaments"),
    "rl": ("rl:Reinforce", "REINFORCE controller, MnasNet reward, soft limit (w = -0.07)"),
    "rl-hard": ("rl:ReinforceHard", "the same, hard limit (w = -1 beyond it)"),
    "bo": ("bayesopt:BayesOpt", "BoTorch GP on CER, expected hypervolume improvement"),
    "transfer": ("transfer:CompoundScaling", "EfficientNet compound scaling of the best so far"),
    "darts": ("darts:Darts", "differentiable search in the supernets, latency-aware (DARTS)"),
    "tpe": ("optuna:TPE", "Optuna's tree-structured Parzen estimator"),
    "gp": ("optuna:GP", "Optuna's Gaussian-process sampler on Optuna's parameters"),
    "random": ("optuna:Random", "uniform random sampling (the baseline)"),
}


def _installed() -> dict[str, str]:
    """Strategies installed packages add (``hwnas.strategies`` entry points)."""
    from hwnas.plugins import installed

    return {k: v for k, v in installed("hwnas.strategies").items() if k not in REGISTRY}


def names() -> tuple[str, ...]:
    return (*REGISTRY, *_installed())


def summary(name: str) -> str:
    if name in REGISTRY:
        return REGISTRY[name][1]
    from hwnas.plugins import load

    doc = (load(_installed()[name]).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else f"from {_installed()[name]}"


def make(name: str, space: Any, seed: int = 0, objectives: Any = ("cer",),
         population: int = 8) -> Strategy:
    if name in REGISTRY:
        module, cls = REGISTRY[name][0].split(":")
        klass = getattr(importlib.import_module(f"hwnas.strategies.{module}"), cls)
    elif name in _installed():
        from hwnas.plugins import load

        klass = load(_installed()[name])
    else:
        raise ValueError(f"unknown strategy {name!r}; one of {', '.join(names())}")
    missing = [d for d in getattr(klass, "decisions", ()) if d not in space.domain]
    if missing:
        raise ValueError(f"--strategy {name} works on the decisions {', '.join(missing)}, "
                         "which this search's architectures do not have; choose another "
                         "strategy")
    return klass(space, seed=seed, objectives=objectives, population=population)


__all__ = ["REGISTRY", "Judge", "Strategy", "make", "names", "summary"]
