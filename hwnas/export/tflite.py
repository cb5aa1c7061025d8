"""TFLite export (fp32, dynamic-range, full-integer int8 with int8 I/O) and a
small runner that feeds/reads tensors by the graph's names.

Conversion happens in a child process (see ``_tflite_worker``). The converted
models keep the ONNX input names; outputs are named ``output_K`` in the ONNX
output order, which the runner maps back to the graph's output names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from hwnas.export._tflite_worker import ERROR_TAG
from hwnas.export.errors import ExportError

TFLITE_FORMATS = {"tflite": "fp32", "tflite-dynamic": "dynamic", "tflite-int8": "int8"}


def convert_tflite(onnx_path: Path, work: Path, fmt: str, calib: Path | None,
                   timeout_s: int = 900) -> Path:
    kind = TFLITE_FORMATS[fmt]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "hwnas.export._tflite_worker", str(onnx_path), str(work), kind]
    if calib is not None:
        cmd += ["--calib", str(calib)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env=env, check=False)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{fmt}: conversion did not finish within {timeout_s} s") from None
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        raise ExportError(f"{fmt}: the TFLite converter crashed ({name})")
    if proc.returncode != 0:
        lines = [ln[len(ERROR_TAG):] for ln in proc.stderr.splitlines()
                 if ln.startswith(ERROR_TAG)]
        tail = lines[-1] if lines else (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"{fmt}: {tail}")
    out = work / f"model_{kind}.tflite"
    if not out.is_file():
        raise ExportError(f"{fmt}: converter exited cleanly but wrote no {out.name}")
    return out


class TFLiteRunner:
    """Run a converted model with LiteRT on named float inputs; int8 inputs and
    outputs are quantised/dequantised with the model's own parameters."""

    def __init__(self, path: Path, output_names: list[str], threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.runner = self.interpreter.get_signature_runner()
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()
        self.output_names = output_names

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = {}
        for name, v in feeds.items():
            d = self.inputs[name]
            if d["dtype"] == np.int8:
                scale, zero = d["quantization"]
                v = np.clip(np.round(v / scale + zero), -128, 127).astype(np.int8)
            args[name] = v.astype(d["dtype"], copy=False)
        raw = self.runner(**args)
        out = {}
        for key, v in raw.items():
            d = self.outputs[key]
            if d["dtype"] == np.int8:
                scale, zero = d["quantization"]
                v = (v.astype(np.float32) - zero) * scale
            name = (self.output_names[int(key.rsplit("_", 1)[1])]
                    if key.startswith("output_") else key)
            out[name] = v
        return out
