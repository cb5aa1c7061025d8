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


CACHE_ENV = "HWNAS_EXPORT_CACHE"


def convert_tflite(onnx_path: Path, work: Path, fmt: str, calib: Path | None,
                   timeout_s: int = 900) -> tuple[Path, str | None]:
    """Convert ``onnx_path`` into ``work/model_<kind>.tflite``; returns the
    path and, when it came from the cache, a note saying so. With
    HWNAS_EXPORT_CACHE=DIR, a conversion of byte-identical inputs by the same
    converter is copied from DIR instead of being made again (~18 s each here)."""
    kind = TFLITE_FORMATS[fmt]
    out = work / f"model_{kind}.tflite"
    cache = ConversionCache.from_env(onnx_path, kind, calib)
    if cache is not None and cache.fetch(out):
        return out, f"converted earlier: copied from {cache.model}"
    _convert(onnx_path, work, fmt, kind, calib, timeout_s)
    if not out.is_file():
        raise ExportError(f"{fmt}: converter exited cleanly but wrote no {out.name}")
    if cache is not None:
        cache.store(out)
    return out, None


class ConversionCache:
    """One entry per (ONNX bytes, kind, calibration arrays, converter versions):
    KEY.tflite and KEY.tflite.sha256 in the cache folder. No library caches a
    subprocess's output file by content, hence this. An entry whose bytes no
    longer match its digest is set aside (renamed ``.bad-<time>``), never used."""

    def __init__(self, root: Path, key: str) -> None:
        self.model = root / f"{key}.tflite"
        self.digest = root / f"{key}.tflite.sha256"

    @classmethod
    def from_env(cls, onnx_path: Path, kind: str, calib: Path | None) -> ConversionCache | None:
        root = os.environ.get(CACHE_ENV)
        if not root:
            return None
        import hashlib
        from importlib.metadata import PackageNotFoundError, version

        from hwnas.paths import file_sha256

        h = hashlib.sha256(f"{kind}\n{file_sha256(onnx_path)}\n".encode())
        h.update(Path(__file__).with_name("_tflite_worker.py").read_bytes())
        for pkg in ("tensorflow", "onnx2tf", "onnx", "tf-keras"):
            try:
                h.update(f"{pkg}={version(pkg)}\n".encode())
            except PackageNotFoundError:
                h.update(f"{pkg}=none\n".encode())
        if calib is not None:   # the arrays, not the .npz: its zip entries carry times
            with np.load(calib) as z:
                for name in sorted(z.files):
                    h.update(name.encode() + z[name].tobytes())
        folder = Path(root).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ExportError(f"{CACHE_ENV}={root}: cannot make the folder "
                              f"({e.strerror or e})") from None
        return cls(folder, h.hexdigest()[:32])

    def fetch(self, out: Path) -> bool:
        import shutil

        from hwnas.paths import file_sha256

        if not (self.model.is_file() and self.digest.is_file()):
            return False
        if file_sha256(self.model) != self.digest.read_text().strip():
            import time

            self.model.rename(self.model.with_name(f"{self.model.name}.bad-{time.time():.0f}"))
            return False
        tmp = out.with_name(out.name + ".tmp")
        shutil.copyfile(self.model, tmp)
        tmp.replace(out)
        return True

    def store(self, out: Path) -> None:
        import shutil

        from hwnas.paths import file_sha256, write_atomic

        try:   # a copy renamed into place: a reader never sees half a model
            tmp = self.model.with_name(f"{self.model.name}.{os.getpid()}.tmp")
            shutil.copyfile(out, tmp)
            tmp.replace(self.model)
            write_atomic(self.digest, file_sha256(out) + "\n")
        except OSError:
            pass   # a cache that cannot be written costs time, not the export


def _convert(onnx_path: Path, work: Path, fmt: str, kind: str, calib: Path | None,
             timeout_s: int) -> None:
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
