"""A server GPU through CUDA: PyTorch timed with CUDA events after warm-up,
or ONNX Runtime's CUDA execution provider timed per call on the host clock
(its ``run`` returns only after the outputs are back on the host)."""

from __future__ import annotations

from typing import Any

from hwnas.adapters._base import Adapter, Plan, Timing
from hwnas.adapters.host import host_details
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


class CUDAAdapter(Adapter):
    name = "cuda"
    OPTIONS = {
        "runtime": ("torch", "torch | onnxruntime"),
        "device_index": (0, "CUDA device number"),
    }
    CHOICES = {"runtime": ("torch", "onnxruntime")}
    FORMATS = ("torch", "onnx")

    @property
    def format(self) -> str:
        return "torch" if self.options["runtime"] == "torch" else "onnx"

    @property
    def formats(self) -> tuple[str, ...]:
        return (self.format,)

    @property
    def cuda_device(self) -> str:
        return f"cuda:{self.options['device_index']}"

    def check(self) -> str | None:
        if self.options["runtime"] == "onnxruntime":
            try:
                import onnxruntime as ort
            except ImportError:
                return "onnxruntime is not installed"
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                return ("no CUDA: this onnxruntime has no CUDAExecutionProvider "
                        "(install onnxruntime-gpu on a machine with an NVIDIA driver)")
            return None
        try:
            import torch
        except ImportError:
            return "torch is not installed"
        if torch.version.cuda is None:
            return f"no CUDA: torch {torch.__version__} is a CPU-only build"
        if not torch.cuda.is_available():
            return "no CUDA: no NVIDIA GPU or driver visible to torch"
        if self.options["device_index"] >= torch.cuda.device_count():
            return (f"no CUDA device {self.options['device_index']}: "
                    f"{torch.cuda.device_count()} visible")
        return None

    def prepare(self, artifact: Any) -> Handle:
        if self.options["runtime"] == "onnxruntime":
            sess = ort_session(artifact.path, 1, [
                ("CUDAExecutionProvider", {"device_id": self.options["device_index"]}),
                "CPUExecutionProvider"])
            run, feed, reset = ort_callables(sess, artifact.inputs, artifact.outputs,
                                             io_of(artifact))
            return Handle("onnxruntime", run, feed, reset, 0.0, sess)
        import torch

        torch.cuda.reset_peak_memory_stats(self.cuda_device)
        graph = torch_module(artifact).to(self.cuda_device)
        run, feed, reset = torch_callables(graph, artifact.inputs, artifact.outputs,
                                           self.cuda_device, io_of(artifact))
        return Handle("torch", run, feed, reset, 0.0, graph)

    def _run(self, handle: Handle, plan: Plan) -> Timing:
        if handle.reset is not None:
            handle.reset()
        if handle.kind == "onnxruntime":
            return Timing(times_s=timed_loop(handle.run, plan, handle.feed, handle.reset))
        import torch

        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)

        def events(run: Any) -> tuple[Any, float]:
            start.record()
            out = run()
            end.record()
            end.synchronize()
            return out, start.elapsed_time(end) / 1e3

        times = timed_loop(handle.run, plan, handle.feed, handle.reset, timer=events)
        peak = torch.cuda.max_memory_allocated(self.cuda_device) / 2**20
        return Timing(times_s=times, memory_mb=round(peak, 2),
                      extra={"memory_kind": "torch.cuda.max_memory_allocated"})

    def caller(self, handle: Handle) -> Any:
        call = stream_call(handle)
        if handle.kind != "torch":
            return call      # ONNX Runtime's run returns when the outputs are on the host
        import torch

        def synced() -> Any:   # a launch returns before the GPU is done: wait for it
            out = call()
            torch.cuda.synchronize(self.cuda_device)
            return out

        return synced

    def release(self, handle: Handle) -> None:
        handle.keep = None
        if self.options["runtime"] == "torch":
            import torch

            torch.cuda.empty_cache()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"threads": 1, **host_details()}
        if self.options["runtime"] == "onnxruntime":
            import onnxruntime

            out["runtime"] = f"onnxruntime {onnxruntime.__version__} CUDAExecutionProvider"
        else:
            import torch

            props = torch.cuda.get_device_properties(self.options["device_index"])
            out.update(runtime=f"torch {torch.__version__} (CUDA {torch.version.cuda})",
                       gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                       compute_capability=f"{props.major}.{props.minor}",
                       cudnn=torch.backends.cudnn.version())
        return out
