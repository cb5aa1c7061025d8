"""This host's CPU: ONNX Runtime, LiteRT (or legacy tflite-runtime) and
PyTorch, timed in-process with one call per streaming chunk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.adapters._base import Adapter, Plan, Timing
from hwnas.adapters.host import cpu_descriptor, host_details, rss_mb
from hwnas.adapters.records import ModelRun
from hwnas.adapters.runtimes import (
    Handle,
    io_of,
    ort_callables,
    ort_session,
    stream_call,
    torch_callables,
    torch_module,
)
from hwnas.adapters.timing import timed_loop
from hwnas.errors import first_line

RUNTIME_FORMATS = {
    "onnxruntime": ("onnx",),
    "litert": ("tflite", "tflite-dynamic", "tflite-int8"),
    "tflite-runtime": ("tflite", "tflite-dynamic", "tflite-int8"),
    "torch": ("torch",),
}


class CPUAdapter(Adapter):
    name = "cpu"
    OPTIONS = {
        "runtime": ("onnxruntime", "onnxruntime | litert | tflite-runtime | torch"),
        "threads": (1, "intra-op threads (1 gives the steadiest numbers on small hosts)"),
        "format": ("", "export format; empty = the runtime's default "
                       "(onnx, tflite, torch); litert also runs tflite-dynamic, tflite-int8"),
        "reference": ("conformer_xs", "preset timed (ONNX Runtime, 1 thread) after every call "
                                      "as a probe of the host's speed at that moment; "
                                      "\"\" = none"),
    }
    FORMATS = tuple(dict.fromkeys(f for fs in RUNTIME_FORMATS.values() for f in fs))
    CHOICES = {"runtime": tuple(RUNTIME_FORMATS), "format": ("", *FORMATS)}
    runs_on_host = True
    RANGES = {"threads": (1, 1024)}

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        out = super().validate_options(options)
        if out["format"] and out["format"] not in RUNTIME_FORMATS[out["runtime"]]:
            raise ValueError(f"runtime {out['runtime']} runs "
                             f"{', '.join(RUNTIME_FORMATS[out['runtime']])}, not {out['format']}")
        if out["threads"] < 1:
            raise ValueError("threads must be >= 1")
        if out["reference"]:
            from hwnas.tasks import preset_names

            if out["reference"] not in preset_names():
                raise ValueError(f"reference must be a preset ({', '.join(preset_names())}) "
                                 f"or \"\", got {out['reference']!r}")
        return out

    def __init__(self, device: str, options: dict[str, Any]) -> None:
        super().__init__(device, options)
        self._probe: Any = None

    def probe(self) -> Any:
        """The reference workload as a callable (built on first use)."""
        if self._probe is None and self.options["reference"]:
            import shutil
            import tempfile

            from hwnas.export import export
            from hwnas.tasks import preset

            work = Path(tempfile.mkdtemp(prefix="hwnas-reference-"))
            try:
                art = export(preset(self.options["reference"]), "onnx", work, check=False)
                sess = ort_session(art.path, 1)   # holds the model in memory from here on
            finally:
                shutil.rmtree(work, ignore_errors=True)
            run, feed, _ = ort_callables(sess, art.inputs, art.outputs)

            def probe() -> None:
                out = run()
                if feed is not None:
                    feed(out)

            self._probe = probe
        return self._probe

    def reference_times(self, seconds: float) -> list[float] | None:
        """Seconds per call of the reference workload over ``seconds`` (None without one)."""
        probe = self.probe()
        if probe is None:
            return None
        import time

        for _ in range(10):
            probe()
        times, end = [], time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            probe()
            times.append(time.perf_counter() - t0)
        return times

    @property
    def runtime(self) -> str:
        return self.options["runtime"]

    @property
    def threads(self) -> int:
        return self.options["threads"]

    @property
    def format(self) -> str:
        return self.options["format"] or RUNTIME_FORMATS[self.runtime][0]

    @property
    def formats(self) -> tuple[str, ...]:
        return RUNTIME_FORMATS[self.runtime]

    def check(self) -> str | None:
        module = {"onnxruntime": "onnxruntime", "litert": "ai_edge_litert",
                  "tflite-runtime": "tflite_runtime", "torch": "torch"}[self.runtime]
        import importlib.util

        if importlib.util.find_spec(module) is None:
            pkg = {"litert": "ai-edge-litert"}.get(self.runtime, self.runtime)
            return f"runtime {self.runtime} is not installed (pip install {pkg})"
        if self.runtime == "tflite-runtime":
            try:
                import tflite_runtime.interpreter  # noqa: F401
            except Exception as e:  # noqa: BLE001 - any import failure is the reason
                return f"tflite-runtime does not load here: {first_line(e)}"
        return None

    def prepare(self, artifact: Any) -> Handle:
        """Load an exported architecture, or a ModelRun (a model file made
        anywhere, with its inputs' values and state pairs)."""
        before = rss_mb()
        io = io_of(artifact)
        if self.runtime == "onnxruntime":
            sess = ort_session(artifact.path, self.threads)
            run, feed, reset = ort_callables(sess, artifact.inputs, artifact.outputs, io)
            return Handle("onnxruntime", run, feed, reset, before, sess)
        if self.runtime == "torch":
            import torch

            torch.set_num_threads(self.threads)
            graph = torch_module(artifact)
            run, feed, reset = torch_callables(graph, artifact.inputs, artifact.outputs, io=io)
            return Handle("torch", run, feed, reset, before, graph)
        from hwnas.adapters import _litert

        h = (_litert.load_run(artifact, self.threads, self.runtime)
             if isinstance(artifact, ModelRun) else
             _litert.load(artifact.path, artifact.inputs, artifact.outputs, self.threads,
                          self.runtime))
        return Handle("litert", None, None, None, before, h)

    def caller(self, handle: Handle) -> Any:
        if handle.kind == "litert":
            from hwnas.adapters import _litert

            return lambda: _litert.call(handle.keep)
        return stream_call(handle)

    def _run(self, handle: Handle, plan: Plan) -> Timing:
        probe = self.probe()
        probe_times: list[float] = []
        if handle.kind == "litert":
            from hwnas.adapters import _litert

            times = _litert.time_handle(handle.keep, plan, probe, probe_times)
        else:
            if handle.reset is not None:
                handle.reset()
            times = timed_loop(handle.run, plan, handle.feed, handle.reset, probe=probe,
                               probe_times=probe_times)
        return Timing(times_s=times, memory_mb=round(rss_mb() - handle.rss_before, 2),
                      probe_s=probe_times or None)

    def describe(self) -> dict[str, Any]:
        if self.runtime == "onnxruntime":
            import onnxruntime

            version = f"onnxruntime {onnxruntime.__version__}"
        elif self.runtime == "torch":
            import torch

            version = f"torch {torch.__version__}"
        else:
            from hwnas.adapters._litert import runtime_version

            version = runtime_version(self.runtime)
        ref = (f"{self.options['reference']} chunk graph, onnxruntime, 1 thread"
               if self.options["reference"] else None)
        return {"runtime": version, "threads": self.threads, "reference": ref, **host_details(),
                "descriptor": cpu_descriptor()}
