"""Exporters: ONNX, TFLite (fp32, dynamic-range, full-integer int8) and the
Edge TPU compile step. Heavy modules load on first use."""

from __future__ import annotations

from typing import Any

from hwnas.export.errors import ExportError
from hwnas.export.formats import FORMATS

__all__ = ["FORMATS", "Artifact", "ExportError", "check_parity", "export"]


def __getattr__(name: str) -> Any:
    if name in ("Artifact", "check_parity", "export"):
        from hwnas.export import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
