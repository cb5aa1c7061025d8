"""Exporters: ONNX, TFLite (fp32, dynamic-range, full-integer int8) and the
Edge TPU compile step."""

from hwnas.export.errors import ExportError
from hwnas.export.pipeline import FORMATS, Artifact, check_parity, export

__all__ = ["FORMATS", "Artifact", "ExportError", "check_parity", "export"]
