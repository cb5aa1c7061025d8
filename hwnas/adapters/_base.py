"""The device interface, and only the interface: ``check``/``available``,
``prepare``, ``measure``, ``describe``, plus what an adapter declares (its
options, the formats it runs, whether it runs on this host) and one optional
capability (a reference workload that tells how fast the device is right
now). Everything hardware-specific lives behind it; the measurement rules
live once in :mod:`hwnas.adapters.timing`, the records in
:mod:`hwnas.adapters.records`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from hwnas.adapters.records import Measurement, Plan, Timing

__all__ = ["Adapter", "DeviceError", "DeviceUnavailable", "Measurement", "Plan", "Timing"]


class DeviceError(RuntimeError):
    """The device cannot do what was asked (unreachable, tool missing, run
    failed); the message is one line a user can act on."""


class DeviceUnavailable(DeviceError):
    """The device is not reachable now; the reason is the message."""


class Adapter(ABC):
    """One kind of device. Subclasses implement ``check``, ``prepare``,
    ``_run`` and ``describe``; ``measure`` applies the shared rules."""

    #: registry name, as written in a device file's ``adapter =``
    name: str = ""
    #: option -> (default, help); a device file's [options] table is checked against it
    OPTIONS: dict[str, tuple[Any, str]] = {}
    #: option -> allowed values
    CHOICES: dict[str, tuple[Any, ...]] = {}
    #: numeric option -> (lowest, highest) allowed; any other number must be
    #: finite and within NUMBER_RANGE
    RANGES: dict[str, tuple[float, float]] = {}
    NUMBER_RANGE = (0, 2**31 - 1)
    #: every format an adapter of this kind can run (``formats`` narrows it per device)
    FORMATS: tuple[str, ...] = ()
    #: it runs on this host's own CPU: its latency belongs to the host, so its
    #: predictors predict ratios to a reference workload, calibrated per host
    runs_on_host: bool = False

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(cls.OPTIONS))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)} for adapter {cls.name!r}; "
                             f"known: {', '.join(cls.OPTIONS)}")
        out = {k: d for k, (d, _) in cls.OPTIONS.items()}
        for k, v in options.items():
            default = cls.OPTIONS[k][0]
            if default is not None and not isinstance(v, type(default)) and not (
                    isinstance(default, float) and isinstance(v, int)):
                raise ValueError(f"option {k} must be {type(default).__name__}, got {v!r}")
            if k in cls.CHOICES and v not in cls.CHOICES[k]:
                raise ValueError(f"option {k} must be one of "
                                 f"{', '.join(map(str, cls.CHOICES[k]))}, got {v!r}")
            if isinstance(v, int | float) and not isinstance(v, bool):
                import math

                low, high = cls.RANGES.get(k, cls.NUMBER_RANGE)
                if not math.isfinite(v) or not low <= v <= high:
                    raise ValueError(f"option {k} must be from {low:g} to {high:g}, got {v!r}")
            out[k] = v
        return out

    def __init__(self, device: str, options: dict[str, Any]) -> None:
        self.device = device
        self.options = options

    # -- what subclasses provide -------------------------------------------
    @abstractmethod
    def check(self) -> str | None:
        """None when the device can be used now, else the reason in one line."""

    def check_runtime(self) -> str | None:
        """As ``check``, for running a model file made elsewhere (``hwnas
        bench``): what exporting to the device needs (a compiler) is not asked."""
        return self.check()

    @property
    @abstractmethod
    def format(self) -> str:
        """Export format this device runs ("onnx", "tflite-int8", "torch", ...)."""

    @property
    def formats(self) -> tuple[str, ...]:
        """Every format this device can run (``--format`` overrides must be one)."""
        return self.FORMATS or (self.format,)

    @abstractmethod
    def prepare(self, artifact: Any) -> Any:
        """Load/push the model; returns a handle for ``measure``."""

    @abstractmethod
    def _run(self, handle: Any, plan: Plan) -> Timing:
        """One timed run following ``plan``."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Runtime and version, threads, host or phone details."""

    def caller(self, handle: Any) -> Any:
        """One untimed call of a prepared model as a stream makes it (states
        fed to the next call), returning its outputs: for cold starts and
        for interleaving models call by call. None: this device runs a whole
        timed series per request (a phone's benchmark tool)."""
        return None

    def batch(self, handle: Any, plan: Plan) -> Timing:
        """One timed series of a prepared model, unjudged: what comparing
        models batch by batch alternates on a device without ``caller``."""
        return self._run(handle, plan)

    def release(self, handle: Any) -> None:  # noqa: B027 - optional hook
        """Free what ``prepare`` loaded."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Drop connections."""

    # -- optional: a reference workload ---------------------------------------
    def reference_times(self, seconds: float) -> list[float] | None:
        """Seconds per call of a fixed reference workload, timed for
        ``seconds``: how fast the device is right now. None: it has none."""
        return None

    def reference_summary(self, seconds: float) -> dict[str, Any] | None:
        """The reference workload timed for ``seconds``: {"ms" (median), "ci_lo",
        "ci_hi" (its 95% interval), "ci_method", "n"}; None: the device has none.
        Devices whose tool prints statistics rather than every call override it."""
        times = self.reference_times(seconds)
        if not times:
            return None
        import numpy as np

        from hwnas.adapters.statistics import quantile_ci

        lo, hi, method = quantile_ci(times, 0.5)
        return {"ms": float(np.median(times)) * 1e3, "ci_lo": lo * 1e3, "ci_hi": hi * 1e3,
                "ci_method": method, "n": len(times)}

    def calibrate_reference(self, seconds: float = 5.0) -> float | None:
        """Median ms of the reference workload over ``seconds`` (None without one)."""
        got = self.reference_summary(seconds)
        return got["ms"] if got else None

    # -- shared -------------------------------------------------------------
    def available(self) -> bool:
        return self.check() is None

    def measure(self, handle: Any, plan: Plan, *, arch_id: str, graph: str,
                model_bytes: int, inputs: list[dict[str, Any]] | None = None) -> Measurement:
        """Time ``handle`` by ``plan`` under the shared rules
        (:func:`hwnas.adapters.timing.measure`)."""
        from hwnas.adapters.timing import measure

        return measure(self, handle, plan, arch_id=arch_id, graph=graph,
                       model_bytes=model_bytes, inputs=inputs)
