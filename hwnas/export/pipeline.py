"""export(arch, format) -> Artifact: build the device graph, convert it, and
check it against PyTorch on held-out inputs.

Layout of the output folder (one sub-folder per architecture id):
    <out>/<arch_id>/arch.json, model.onnx, calib.npz, saved_model/,
                    model_fp32.tflite, model_dynamic.tflite, model_int8.tflite,
                    model_int8_edgetpu.tflite
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.errors import first_line
from hwnas.export.edgetpu import compile_edgetpu, compiler_available
from hwnas.export.errors import ExportError
from hwnas.export.formats import FORMATS
from hwnas.export.onnx import export_onnx
from hwnas.export.tflite import TFLiteRunner, convert_tflite
from hwnas.nn.graph_io import DeviceGraph
from hwnas.paths import file_sha256, write_atomic
from hwnas.space.space import Arch
from hwnas.tasks import build_model, device_graph

FLOAT_TOLERANCE = 1e-4     # max |diff| vs PyTorch for fp32 formats
MIN_TOKEN_AGREEMENT = 0.95  # top-token agreement for quantised formats
CALIBRATION_SAMPLES = 64
CHECK_SAMPLES = 20


@dataclass
class Artifact:
    arch_id: str
    format: str
    path: str
    size_bytes: int
    graph: str                        # "chunk" or "utterance"
    inputs: list[dict[str, Any]]      # name, shape
    outputs: list[str]
    seconds: float                    # conversion time
    parity: dict[str, Any] | None = None
    edgetpu: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _graph(arch: Arch, weights: Path | None, seed: int) -> DeviceGraph:
    torch.manual_seed(seed)
    model = build_model(arch)
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except OSError as e:
            raise ExportError(f"cannot read weights {weights}: {e.strerror or e}") from None
        except Exception as e:  # noqa: BLE001 - a file torch cannot unpickle, whatever it holds
            why = first_line(e, 120)
            raise ExportError(f"weights {weights} are not a PyTorch weights file ({why})"
                              ) from None
        if isinstance(state, dict) and isinstance(state.get("model"), dict):
            state = state["model"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                                  for v in state.values()):
            raise ExportError(f"weights {weights} hold a {type(state).__name__}, not a state "
                              "dict of tensors (save model.state_dict(), or the weights.pt of "
                              "`hwnas train`)")
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            first = lines[1] if len(lines) > 1 else lines[0]
            raise ExportError(f"weights {weights} do not fit this architecture: "
                              f"{first[:200]}") from None
    return device_graph(model)


def _calibration(graph: DeviceGraph, path: Path, n: int) -> Path:
    if not path.is_file():
        samples = graph.sample_inputs(n, seed=0)
        arrays = {spec.name: np.stack([s[i] for s in samples])
                  for i, spec in enumerate(graph.inputs)}
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
    return path


def check_parity(graph: DeviceGraph, fmt: str, path: Path,
                 n: int = CHECK_SAMPLES) -> dict[str, Any]:
    """Compare a converted model with PyTorch on held-out inputs (not the
    calibration ones): max |diff| over every output, and top-token agreement
    of the logits outputs."""
    if fmt == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

        def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return dict(zip(graph.outputs, sess.run(graph.outputs, feeds)))
    else:
        run = TFLiteRunner(path, graph.outputs)
    max_diff, agree, total, signal, noise = 0.0, 0, 0, 0.0, 0.0
    for sample in graph.sample_inputs(n, seed=1):
        feeds = {spec.name: x for spec, x in zip(graph.inputs, sample)}
        with torch.no_grad():
            ref = graph(*[torch.from_numpy(x) for x in sample])
        got = run(feeds)
        for name, r in zip(graph.outputs, ref):
            g = got[name]
            if g.shape != tuple(r.shape):
                raise ExportError(f"{fmt}: output {name} has shape {g.shape}, "
                                  f"expected {tuple(r.shape)}")
            max_diff = max(max_diff, float(np.abs(g - r.numpy()).max()))
            if name.endswith("logits"):
                agree += int((g.argmax(-1) == r.numpy().argmax(-1)).sum())
                total += int(np.prod(g.shape[:-1]))
                signal += float((r.numpy().astype(np.float64) ** 2).sum())
                noise += float(((g - r.numpy()).astype(np.float64) ** 2).sum())
    sqnr = 10 * np.log10(signal / noise) if noise > 0 else float("inf")
    return {"samples": n, "max_abs_diff": max_diff, "token_agreement": agree / max(total, 1),
            "logits_sqnr_db": round(float(sqnr), 2)}


def export(arch: Arch, fmt: str, out_dir: Path, *, weights: Path | None = None,
           seed: int = 0, check: bool = True) -> Artifact:
    """Export ``arch`` to ``fmt``; raises ExportError with the reason on failure."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "edgetpu":  # fail before minutes of int8 conversion, not after
        ok, why = compiler_available()
        if not ok:
            raise ExportError(why)
    graph = _graph(arch, weights, seed)   # weights checked before anything is written
    work = Path(out_dir) / arch.id
    try:
        work.mkdir(parents=True, exist_ok=True)
        write_atomic(work / "arch.json", arch.to_json(indent=2) + "\n")
    except OSError as e:
        raise ExportError(f"cannot write to {out_dir}: {e.strerror or e}") from None
    t0 = time.perf_counter()
    onnx_path = export_onnx(graph, work / "model.onnx")
    notes: list[str] = []
    report = None
    if fmt == "onnx":
        path = onnx_path
    else:
        # the SavedModel is reused across formats only while the ONNX is unchanged
        digest = file_sha256(onnx_path)
        stamps = [work / d / "source.sha256" for d in ("saved_model", "saved_model_unrolled")]
        for stamp in stamps:
            if stamp.parent.exists() and (not stamp.is_file() or stamp.read_text() != digest):
                shutil.rmtree(stamp.parent)
        tfl = "tflite-int8" if fmt == "edgetpu" else fmt
        calib = _calibration(graph, work / "calib.npz", CALIBRATION_SAMPLES) \
            if tfl == "tflite-int8" else None
        path, cached = convert_tflite(onnx_path, work, tfl, calib)
        notes += [cached] if cached else []
        for stamp in stamps:
            if stamp.parent.is_dir() and not stamp.is_file():
                write_atomic(stamp, digest)
        if fmt == "edgetpu":
            path, rep = compile_edgetpu(path, work)
            report = rep.to_dict()
    seconds = time.perf_counter() - t0
    parity = None
    if check and fmt != "edgetpu":
        parity = check_parity(graph, fmt, path)
        if fmt in ("onnx", "tflite") and parity["max_abs_diff"] > FLOAT_TOLERANCE:
            raise ExportError(f"{fmt}: max |diff| vs PyTorch {parity['max_abs_diff']:.2e} "
                              f"> {FLOAT_TOLERANCE:.0e}")
        if fmt in ("tflite-dynamic", "tflite-int8"):
            if weights is None:
                # A random network's logits are near ties (median top-1 margin ~0.1),
                # so which token wins is noise; only a trained model's agreement means
                # something. Report it, with the SQNR, and gate trained models only.
                notes.append("random weights: token agreement is informative only; "
                             "pass trained weights for a gated check")
            elif parity["token_agreement"] < MIN_TOKEN_AGREEMENT:
                raise ExportError(f"{fmt}: top-token agreement "
                                  f"{parity['token_agreement']:.1%} < {MIN_TOKEN_AGREEMENT:.0%}")
    if fmt == "edgetpu":
        notes.append("not run here: executing it needs an Edge TPU")
    art = Artifact(arch_id=arch.id, format=fmt, path=str(path), size_bytes=path.stat().st_size,
                   graph=arch.graph,
                   inputs=[{"name": s.name, "shape": list(s.shape)} for s in graph.inputs],
                   outputs=list(graph.outputs), seconds=round(seconds, 3), parity=parity,
                   edgetpu=report, notes=notes)
    write_atomic(work / f"{path.name}.json", json.dumps(art.to_dict(), indent=2) + "\n")
    return art
