"""What other installed packages add to hwnas's registries, through Python
entry points: ``hwnas.adapters``, ``hwnas.strategies``, ``hwnas.executors``
and ``hwnas.tasks``, each ``name = "module:attribute"``. In a package's
``pyproject.toml``::

    [project.entry-points."hwnas.adapters"]
    mydsp = "mydsp_hwnas:DSPAdapter"

A built-in name is never replaced by a plugin of the same name."""

from __future__ import annotations

import importlib
from typing import Any

GROUPS = ("hwnas.adapters", "hwnas.strategies", "hwnas.executors", "hwnas.tasks")
_FOUND: dict[str, dict[str, str]] = {}


def installed(group: str) -> dict[str, str]:
    """name -> "module:attribute" that installed packages declare in ``group``
    (read once per process)."""
    if group not in _FOUND:
        from importlib.metadata import entry_points

        _FOUND[group] = {ep.name: ep.value for ep in entry_points(group=group)}
    return _FOUND[group]


def forget() -> None:
    """Read the entry points again on next use (after installing a package)."""
    _FOUND.clear()


def load(target: str) -> Any:
    """The attribute that ``"module:attribute"`` names."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj
