"""Small ONNX graphs written here with onnx.helper, as other toolkits write
them (not by hwnas's exporter): what ``hwnas bench`` is tested and
benchmarked on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def gru_model(path: Path, hidden: int = 32, feat: int = 16) -> Path:
    """A GRU with Silero-style names: state -> stateN, a scalar int64 ``sr``,
    a dynamic time dimension."""
    rng = np.random.default_rng(0)
    w = nh.from_array(rng.standard_normal((1, 3 * hidden, feat)).astype(np.float32), "W")
    r = nh.from_array(rng.standard_normal((1, 3 * hidden, hidden)).astype(np.float32) * .1, "R")
    axes = nh.from_array(np.array([1], np.int64), "axes")
    nodes = [h.make_node("GRU", ["input", "W", "R", "", "", "state"], ["Y", "stateN"],
                         hidden_size=hidden),
             h.make_node("Squeeze", ["Y", "axes"], ["output"])]
    return _save(h.make_graph(
        nodes, "gru", [h.make_tensor_value_info("input", T.FLOAT, ["time", 1, feat]),
                       h.make_tensor_value_info("state", T.FLOAT, [1, 1, hidden]),
                       h.make_tensor_value_info("sr", T.INT64, [])],
        [h.make_tensor_value_info("output", T.FLOAT, ["time", 1, hidden]),
         h.make_tensor_value_info("stateN", T.FLOAT, [1, 1, hidden])], [w, r, axes]), path)


def lstm_model(path: Path, hidden: int = 8, feat: int = 4) -> Path:
    """An LSTM whose states are named as PyTorch exports them: h0 -> hn, c0 -> cn,
    with dynamic batch and time."""
    rng = np.random.default_rng(1)
    w = nh.from_array(rng.standard_normal((1, 4 * hidden, feat)).astype(np.float32), "W")
    r = nh.from_array(rng.standard_normal((1, 4 * hidden, hidden)).astype(np.float32), "R")
    node = h.make_node("LSTM", ["x", "W", "R", "", "", "h0", "c0"], ["y", "hn", "cn"],
                       hidden_size=hidden)
    return _save(h.make_graph(
        [node], "lstm", [h.make_tensor_value_info("x", T.FLOAT, ["time", "batch", feat]),
                         h.make_tensor_value_info("h0", T.FLOAT, [1, "batch", hidden]),
                         h.make_tensor_value_info("c0", T.FLOAT, [1, "batch", hidden])],
        [h.make_tensor_value_info("y", T.FLOAT, ["time", 1, "batch", hidden]),
         h.make_tensor_value_info("hn", T.FLOAT, [1, "batch", hidden]),
         h.make_tensor_value_info("cn", T.FLOAT, [1, "batch", hidden])], [w, r]), path)


def accumulator(path: Path) -> Path:
    """out = x + acc; acc_out = out: its outputs count the calls when x = 1."""
    nodes = [h.make_node("Add", ["x", "acc"], ["out"]),
             h.make_node("Identity", ["out"], ["acc_out"])]
    return _save(h.make_graph(
        nodes, "acc", [h.make_tensor_value_info("x", T.FLOAT, [1, 4]),
                       h.make_tensor_value_info("acc", T.FLOAT, [1, 4])],
        [h.make_tensor_value_info("out", T.FLOAT, [1, 4]),
         h.make_tensor_value_info("acc_out", T.FLOAT, [1, 4])]), path)


def matmuls(path: Path, k: int, n: int = 192) -> Path:
    """``k`` chained n x n matrix products: k = 2 does twice the work of k = 1."""
    rng = np.random.default_rng(2)
    inits, nodes, prev = [], [], "x"
    for i in range(k):
        inits.append(nh.from_array(rng.standard_normal((n, n)).astype(np.float32) / n, f"w{i}"))
        nodes.append(h.make_node("MatMul", [prev, f"w{i}"], [f"y{i}"]))
        prev = f"y{i}"
    nodes.append(h.make_node("Identity", [prev], ["y"]))
    return _save(h.make_graph(nodes, f"mm{k}", [h.make_tensor_value_info("x", T.FLOAT, [n, n])],
                              [h.make_tensor_value_info("y", T.FLOAT, [n, n])], inits), path)


def main() -> None:
    """Write the example models of docs/bench.md into a folder."""
    import argparse

    p = argparse.ArgumentParser(description="write example ONNX models for `hwnas bench`")
    p.add_argument("out", nargs="?", default="bench-models", help="folder (default bench-models)")
    out = Path(p.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in (("gru_stream.onnx", gru_model), ("lstm_stream.onnx", lstm_model),
                       ("mm1.onnx", lambda p: matmuls(p, 1)),
                       ("mm2.onnx", lambda p: matmuls(p, 2))):
        print(make(out / name))


if __name__ == "__main__":
    main()
