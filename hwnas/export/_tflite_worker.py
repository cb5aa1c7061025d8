"""Isolated TFLite conversion (run as ``python -m hwnas.export._tflite_worker``).

The TF converter can segfault on some graphs (full-int8 LSTMs); running it in
a child process turns a crash into an error for one architecture.

    python -m hwnas.export._tflite_worker MODEL.onnx WORKDIR FORMAT [--calib FILE.npz]

FORMAT is fp32, dynamic or int8. Writes WORKDIR/model_FORMAT.tflite.
ONNX -> SavedModel goes through onnx2tf (once per WORKDIR, inputs kept in
their ONNX layout), then tf.lite.TFLiteConverter makes each format.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ERROR_TAG = "hwnas-export-error: "


def _quiet() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def saved_model(onnx_path: Path, work: Path, unroll_rnn: bool = False) -> Path:
    """ONNX -> SavedModel; ``unroll_rnn`` unrolls LSTMs over time (the TF
    converter segfaults quantising LSTM ops to full int8, but quantises the
    unrolled cell fine)."""
    sm = work / ("saved_model_unrolled" if unroll_rnn else "saved_model")
    if (sm / "saved_model.pb").is_file():
        return sm
    import onnx
    import onnx2tf

    names = [i.name for i in onnx.load(str(onnx_path)).graph.input]
    tmp = work / f"{sm.name}.tmp"
    # onnx2tf's strict mode checks each op numerically and fails on some
    # scalar-constant Mul/Add patterns; the relaxed mode converts those. The
    # parent's parity check against PyTorch catches a wrong conversion either way.
    first: BaseException | None = None
    for strict in (True, False):
        try:
            onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(tmp),
                            keep_shape_absolutely_input_names=names, output_signaturedefs=True,
                            non_verbose=True, copy_onnx_input_output_names_to_tflite=True,
                            disable_strict_mode=not strict, enable_rnn_unroll=unroll_rnn)
            break
        except (Exception, SystemExit) as e:
            first = first or e
    else:
        assert first is not None
        raise first
    for f in tmp.glob("*.tflite"):  # onnx2tf's own float models: we convert ourselves
        f.unlink()
    if sm.exists():
        import shutil

        shutil.rmtree(sm)
    tmp.rename(sm)
    return sm


def _has_rnn(onnx_path: Path) -> bool:
    import onnx

    return any(n.op_type in ("LSTM", "GRU", "RNN") for n in onnx.load(str(onnx_path)).graph.node)


def convert(sm: Path, fmt: str, calib: Path | None) -> bytes:
    import numpy as np
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(str(sm))
    if fmt in ("dynamic", "int8"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "int8":
        if calib is None:
            raise SystemExit("int8 needs --calib")
        data = np.load(calib)
        names = list(data.files)
        n = data[names[0]].shape[0]

        def representative():
            for i in range(n):
                yield {k: data[k][i] for k in names}

        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def main() -> int:
    _quiet()
    p = argparse.ArgumentParser()
    p.add_argument("onnx", type=Path)
    p.add_argument("work", type=Path)
    p.add_argument("format", choices=["fp32", "dynamic", "int8"])
    p.add_argument("--calib", type=Path)
    a = p.parse_args()
    try:
        sm = saved_model(a.onnx, a.work, unroll_rnn=a.format == "int8" and _has_rnn(a.onnx))
        blob = convert(sm, a.format, a.calib)
    except (Exception, SystemExit) as e:  # onnx2tf may sys.exit() on failure
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        print(f"{ERROR_TAG}{type(e).__name__}: {' '.join(lines[:2])}"[:400], file=sys.stderr)
        return 1
    out = a.work / f"model_{a.format}.tflite"
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
