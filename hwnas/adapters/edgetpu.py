"""Coral Edge TPU (USB or PCIe): the compiled int8 .tflite run by LiteRT
with the libedgetpu delegate, timed per call; the compiler's report says
how many ops run on the TPU and how many fall back to the CPU. It runs an
exported architecture, or a compiled model made anywhere (``hwnas bench``:
a ModelRun, called by call with its states fed back)."""

from __future__ import annotations

from typing import Any

from hwnas.adapters._base import Adapter, DeviceError, Plan, Timing
from hwnas.adapters.host import host_details, rss_mb
from hwnas.adapters.records import ModelRun
from hwnas.errors import first_line


class EdgeTPUAdapter(Adapter):
    name = "edgetpu"
    RANGES = {"threads": (1, 1024)}
    OPTIONS = {
        "library": ("libedgetpu.so.1", "the Edge TPU runtime library (libedgetpu1-std/-max)"),
        "device": ("", "\"\" = first Edge TPU, or usb, pci, usb:0, pci:1, ..."),
        "runtime": ("litert", "litert | tflite-runtime"),
        "threads": (1, "CPU threads for ops the TPU does not run"),
    }
    CHOICES = {"runtime": ("litert", "tflite-runtime")}
    FORMATS = ("edgetpu",)

    @property
    def format(self) -> str:
        return "edgetpu"

    def _delegate(self) -> Any:
        from hwnas.adapters._litert import interpreter_class

        _, load_delegate = interpreter_class(self.options["runtime"])
        opts = {"device": self.options["device"]} if self.options["device"] else {}
        return load_delegate(self.options["library"], opts)

    def check(self) -> str | None:
        from hwnas.export.edgetpu import compiler_available

        ok, why = compiler_available()
        return why if not ok else self.check_runtime()

    def check_runtime(self) -> str | None:
        """The runtime and an attached Edge TPU (a compiled model needs no compiler)."""
        try:
            self._delegate()
        except (ValueError, OSError, RuntimeError) as e:
            msg = first_line(e)
            if "Failed to load delegate" in msg or "cannot open shared object" in msg:
                return (f"{self.options['library']} cannot be loaded (install the Edge TPU "
                        f"runtime, libedgetpu1-std)")
            return f"no Edge TPU attached ({msg})"
        except ImportError as e:
            return f"{e.name} is not installed"
        return None

    def prepare(self, artifact: Any) -> Any:
        from hwnas.adapters import _litert

        before = rss_mb()
        try:
            delegate = self._delegate()
        except (ValueError, OSError, RuntimeError) as e:
            raise DeviceError(f"Edge TPU delegate: {first_line(e)}") from None
        if isinstance(artifact, ModelRun):
            h = _litert.load_run(artifact, self.options["threads"], self.options["runtime"],
                                 [delegate])
        else:
            h = _litert.load(artifact.path, artifact.inputs, artifact.outputs,
                             self.options["threads"], self.options["runtime"], [delegate])
        report = getattr(artifact, "edgetpu", None) or {}
        return (h, before, report)

    def caller(self, handle: Any) -> Any:
        from hwnas.adapters import _litert

        return lambda: _litert.call(handle[0])

    def _run(self, handle: Any, plan: Plan) -> Timing:
        from hwnas.adapters import _litert

        h, before, report = handle
        times = _litert.time_handle(h, plan)
        # where each op runs comes from the compiler's report of this very model
        extra = {k: report.get(k) for k in ("tpu_ops", "cpu_ops", "total_ops", "subgraphs",
                                            "on_chip_bytes", "off_chip_bytes") if k in report}
        return Timing(times_s=times, memory_mb=round(rss_mb() - before, 2), extra=extra)

    def describe(self) -> dict[str, Any]:
        from hwnas.adapters._litert import runtime_version

        return {"runtime": f"{runtime_version(self.options['runtime'])} + "
                           f"{self.options['library']}",
                "edgetpu_device": self.options["device"] or "first",
                "threads": self.options["threads"], **host_details()}
