"""A model file made anywhere, read for what it declares: its format (from
the bytes, not the file name), its inputs and outputs with their shapes and
dtypes. A dimension the model leaves open is kept as its symbolic name (or
``None`` where it has none) until ``hwnas.bench.inputs`` gives it a value.

Formats: ONNX, TFLite (fp32, dynamic-range and int8 alike: the
quantisation is inside the file), TorchScript archives and ``torch.export``
archives (``.pt2``)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

Dim = int | str | None


class ModelError(ValueError):
    """The file is not a model hwnas can read; the message is one line."""


@dataclass
class Tensor:
    name: str
    shape: list[Dim] | None   # a dim None or named: left open; None: rank unknown
    dtype: str                # numpy's name: float32, int64, int8, bool, ...
    #: (scale, zero point) of a quantised tensor: its values stand for floats
    quant: tuple[float, int] | None = None

    def shape_text(self) -> str:
        if self.shape is None:
            return "?"
        return "x".join(str(d) if isinstance(d, int) and d >= 0 else (d or "?")
                        for d in self.shape) or "scalar"


@dataclass
class ModelFile:
    path: Path
    format: str                 # onnx | tflite | edgetpu | torchscript | torch-export
    inputs: list[Tensor]
    outputs: list[Tensor]
    size_bytes: int
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    def input(self, name: str) -> Tensor:
        return self._named(self.inputs, name, "input")

    def output(self, name: str) -> Tensor:
        return self._named(self.outputs, name, "output")

    def _named(self, tensors: list[Tensor], name: str, kind: str) -> Tensor:
        for t in tensors:
            if t.name == name:
                return t
        raise ModelError(f"{self.path.name} has no {kind} {name!r}; its {kind}s: "
                         f"{', '.join(t.name for t in tensors)}")


def sniff(path: Path) -> str:
    """The format of the file at ``path``, from its first bytes and, for zip
    archives, the names inside."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except IsADirectoryError:
        raise ModelError(f"{path} is a folder, not a model file") from None
    except OSError as e:
        raise ModelError(f"cannot read {path}: {e.strerror or e}") from None
    if not head:
        raise ModelError(f"{path} is empty")
    if head[4:8] == b"TFL3":
        return "tflite"
    if head[:2] == b"PK":
        try:
            names = zipfile.ZipFile(path).namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise ModelError(f"{path} is a damaged zip archive ({e})") from None
        if any(n.endswith(("archive_format", "serialized_exported_program.json"))
               or "/models/" in n for n in names):
            return "torch-export"
        if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
            return "torchscript"
        raise ModelError(f"{path} is a zip archive but neither TorchScript nor torch.export")
    return "onnx"   # protobuf has no magic number: the ONNX reader decides


#: the custom op the Edge TPU compiler puts in place of the ops it maps to the TPU
EDGETPU_OP = b"edgetpu-custom-op"


def read_model(path: str | Path) -> ModelFile:
    """What the model at ``path`` declares; ModelError (one line) when it is
    not a readable model of a known format. A .tflite compiled for the Edge
    TPU (it holds the compiler's custom op) is format ``edgetpu``: LiteRT
    reads what it declares, and only the libedgetpu delegate runs it."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"no such file: {path}")
    fmt = sniff(path)
    reader = {"onnx": _onnx, "tflite": _tflite, "torchscript": _torchscript,
              "torch-export": _torch_export}[fmt]
    inputs, outputs, notes = reader(path)
    if fmt == "tflite" and EDGETPU_OP in path.read_bytes():
        fmt = "edgetpu"
        notes = [*notes, "compiled for the Edge TPU: runs with the libedgetpu delegate"]
    return ModelFile(path, fmt, inputs, outputs, path.stat().st_size, notes)


def _onnx(path: Path) -> tuple[list[Tensor], list[Tensor], list[str]]:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as e:
        why = str(e).splitlines()[0][:120] if str(e) else "parse error"
        raise ModelError(f"{path} is not a model file (not ONNX, TFLite, TorchScript or "
                         f"torch.export): {why}") from None
    if not model.graph.node or not model.graph.output:
        raise ModelError(f"{path} is not a model file: it holds no ONNX graph (truncated, "
                         "or another format)")
    init = {i.name for i in model.graph.initializer}

    def tensor(v: Any) -> Tensor:
        t = v.type.tensor_type
        shape: list[Dim] = []
        if t.HasField("shape"):
            for d in t.shape.dim:
                shape.append(d.dim_value if d.HasField("dim_value")
                             else (d.dim_param or None))
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        except (KeyError, ValueError):
            dtype = onnx.TensorProto.DataType.Name(t.elem_type).lower()
        return Tensor(v.name, shape, dtype)

    inputs = [tensor(v) for v in model.graph.input if v.name not in init]
    outputs = [tensor(v) for v in model.graph.output]
    notes = []
    if any(t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL
           for t in model.graph.initializer):
        notes.append("weights in external data files, next to the model")
    return inputs, outputs, notes


def _tflite(path: Path) -> tuple[list[Tensor], list[Tensor], list[str]]:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ModelError("reading a .tflite file needs LiteRT: pip install ai-edge-litert"
                         ) from None
    try:
        it = Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"{path} is not a readable TFLite model (truncated or damaged): "
                         f"{str(e).splitlines()[0][:120]}") from None

    def tensor(name: str, d: dict[str, Any]) -> Tensor:
        sig = d.get("shape_signature")
        dims = sig if sig is not None and len(sig) else d["shape"]
        scale, zero = d.get("quantization") or (0.0, 0)
        return Tensor(name, [int(x) if x >= 0 else None for x in dims],
                      np.dtype(d["dtype"]).name, (float(scale), int(zero)) if scale else None)

    from hwnas.adapters._litert import tflite_io

    ins, outs = tflite_io(it)
    return [tensor(n, d) for n, d in ins.items()], [tensor(n, d) for n, d in outs.items()], []


def _torch_error(path: Path, e: Exception) -> ModelError:
    return ModelError(f"{path} does not load in PyTorch: {str(e).splitlines()[0][:160]}")


def _torchscript(path: Path) -> tuple[list[Tensor], list[Tensor], list[str]]:
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # noqa: BLE001 - whatever the archive holds, one line
        raise _torch_error(path, e) from None
    args = module.forward.schema.arguments[1:]     # without self
    inputs = [Tensor(a.name, None, "float32") for a in args]
    returns = module.forward.schema.returns
    n_out = len(returns[0].type.elements()) if returns and str(returns[0].type).startswith(
        "Tuple") else 1
    outputs = [Tensor(f"output_{i}", None, "float32") for i in range(n_out)]
    return inputs, outputs, ["TorchScript declares no shapes or dtypes: give each input's "
                             "shape (--shape) or values (--inputs)"]


def _torch_export(path: Path) -> tuple[list[Tensor], list[Tensor], list[str]]:
    import torch

    try:
        ep = torch.export.load(str(path))
    except Exception as e:  # noqa: BLE001 - whatever the archive holds, one line
        raise _torch_error(path, e) from None
    placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}

    def tensor(name: str, val: Any) -> Tensor:
        if not isinstance(val, torch.Tensor):
            return Tensor(name, [], type(val).__name__)
        dims: list[Dim] = [int(d) if isinstance(d, int) else str(d) for d in val.shape]
        return Tensor(name, dims, str(val.dtype).removeprefix("torch."))

    inputs = [tensor(name, placeholders[name].meta.get("val"))
              for name in ep.graph_signature.user_inputs if name in placeholders]
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    vals = out_node.args[0] if isinstance(out_node.args[0], list | tuple) else [out_node.args[0]]
    user = set(ep.graph_signature.user_outputs)
    outputs = [tensor(f"output_{i}", getattr(v, "meta", {}).get("val"))
               for i, v in enumerate(x for x in vals if getattr(x, "name", None) in user)]
    return inputs, outputs, []
