"""ONNX export (TorchScript-based exporter, opset 17, static shapes).

The dynamo exporter fails on variable-length LSTMs, so the tracing exporter
is used for every family; shapes are static because TFLite needs them too.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from hwnas.nn.graph_io import DeviceGraph

OPSET = 17


def export_onnx(graph: DeviceGraph, path: Path) -> Path:
    inputs = tuple(graph.example_inputs())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.tmp")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, inputs, str(tmp), input_names=[s.name for s in graph.inputs],
                          output_names=graph.outputs, opset_version=OPSET, dynamo=False,
                          do_constant_folding=True)
    tmp.replace(path)
    return path
