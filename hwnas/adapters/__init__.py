"""Device adapters and the device files that configure them.

The registry maps an adapter name (``adapter = "..."`` in a device file) to
the module that implements it; modules are imported only when a device uses
them, so a missing optional package fails only that adapter.
"""

from __future__ import annotations

import importlib
from typing import Any

from hwnas.adapters._base import (
    Adapter,
    DeviceError,
    DeviceUnavailable,
    Measurement,
    Plan,
    Timing,
)

REGISTRY: dict[str, str] = {
    "cpu": "hwnas.adapters.cpu:CPUAdapter",
    "cuda": "hwnas.adapters.cuda:CUDAAdapter",
    "android": "hwnas.adapters.android:AndroidAdapter",
    "edgetpu": "hwnas.adapters.edgetpu:EdgeTPUAdapter",
}


def registry() -> dict[str, str]:
    """The built-in adapters, then those installed packages add
    (``hwnas.adapters`` entry points, ``hwnas.plugins``)."""
    from hwnas.plugins import installed

    return {**installed("hwnas.adapters"), **REGISTRY}


def adapter_class(name: str) -> type[Adapter]:
    known = registry()
    if name not in known:
        raise ValueError(f"unknown adapter {name!r}; one of {', '.join(known)}")
    module, cls = known[name].split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise DeviceUnavailable(f"adapter {name!r} needs the package {e.name!r}: "
                                f"pip install {e.name}") from None
    return getattr(mod, cls)


def make_adapter(device: str, adapter: str, options: dict[str, Any]) -> Adapter:
    return adapter_class(adapter)(device, options)


def runnable_formats() -> list[str]:
    """Every format some registered adapter declares it runs (registry order)."""
    out: dict[str, None] = {}
    for name in registry():
        try:
            out.update(dict.fromkeys(adapter_class(name).FORMATS))
        except DeviceUnavailable:   # its package is missing: it runs nothing here
            continue
    return list(out)


__all__ = ["REGISTRY", "Adapter", "DeviceError", "DeviceUnavailable", "Measurement", "Plan",
           "Timing", "adapter_class", "make_adapter", "registry", "runnable_formats"]
