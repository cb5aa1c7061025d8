"""Timing a .tflite model with the LiteRT interpreter (CPU, or a delegate
such as libedgetpu). Only ``invoke`` is timed, as TFLite's benchmark tool
does; states are copied between calls outside the timed region."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.adapters.records import Plan
from hwnas.adapters.runtimes import check_state
from hwnas.adapters.timing import timed_loop
from hwnas.nn.graph_io import feedback_pairs, initial_feeds


def interpreter_class(runtime: str) -> Any:
    if runtime == "tflite-runtime":
        from tflite_runtime.interpreter import Interpreter, load_delegate  # type: ignore
    else:
        from ai_edge_litert.interpreter import Interpreter, load_delegate
    return Interpreter, load_delegate


def runtime_version(runtime: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    pkg = "tflite-runtime" if runtime == "tflite-runtime" else "ai-edge-litert"
    try:
        return f"{pkg} {version(pkg)}"
    except PackageNotFoundError:
        return f"{pkg} (version unknown)"


@dataclass
class LiteRTHandle:
    interpreter: Any
    inputs: dict[str, tuple[int, np.ndarray]]   # name -> (tensor index, value)
    feedback: list[tuple[int, int]]             # (output index, input index)
    n_ops: int


def _quantise(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if detail["dtype"] == np.int8:
        scale, zero = detail["quantization"]
        return np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    return x.astype(detail["dtype"])


def load(path: str | Path, artifact_inputs: list[dict[str, Any]], outputs: list[str],
         threads: int, runtime: str = "litert", delegates: list[Any] | None = None) -> LiteRTHandle:
    Interpreter, _ = interpreter_class(runtime)
    it = Interpreter(model_path=str(path), num_threads=threads,
                     experimental_delegates=delegates or None)
    it.allocate_tensors()
    runner = it.get_signature_runner()
    in_details = runner.get_input_details()
    out_details = runner.get_output_details()
    feeds = initial_feeds(artifact_inputs)
    inputs = {}
    for name, value in feeds.items():
        d = in_details[name]
        inputs[name] = (d["index"], _quantise(value, d))
    # converted outputs are named output_K in the graph's output order
    out_index = {outputs[int(k.rsplit("_", 1)[1])] if k.startswith("output_") else k: d["index"]
                 for k, d in out_details.items()}
    pairs = [(out_index[o], in_details[i]["index"])
             for o, i in feedback_pairs(artifact_inputs, outputs).items()]
    try:
        n_ops = len(it._get_ops_details())  # noqa: SLF001 - op count for the record
    except Exception:  # noqa: BLE001 - private API, informative only
        n_ops = -1
    return LiteRTHandle(it, inputs, pairs, n_ops)


def tflite_io(it: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, outputs) of a LiteRT interpreter by name: the signature's
    names where the file has one signature (what converters write: "features",
    "output_0"), else the tensor names."""
    by_index = {d["index"]: d for d in it.get_input_details() + it.get_output_details()}
    if len(it.get_signature_list()) == 1:
        runner = it.get_signature_runner()
        return ({k: by_index[v["index"]] for k, v in runner.get_input_details().items()},
                {k: by_index[v["index"]] for k, v in runner.get_output_details().items()})
    return ({d["name"]: d for d in it.get_input_details()},
            {d["name"]: d for d in it.get_output_details()})


def load_run(run: Any, threads: int, runtime: str = "litert",
             delegates: list[Any] | None = None) -> LiteRTHandle:
    """A .tflite made anywhere (a ModelRun): inputs by tensor name, open
    dimensions resized to the given values, states paired by tensor name."""
    Interpreter, _ = interpreter_class(runtime)
    it = Interpreter(model_path=str(run.path), num_threads=threads,
                     experimental_delegates=delegates or None)
    details, _ = tflite_io(it)
    for name, value in run.feeds.items():
        if tuple(details[name]["shape"]) != tuple(np.shape(value)):
            it.resize_tensor_input(details[name]["index"], list(np.shape(value)), strict=False)
    it.allocate_tensors()
    details, outs = tflite_io(it)
    inputs = {name: (details[name]["index"], np.asarray(value, details[name]["dtype"]))
              for name, value in run.feeds.items()}
    pairs = []
    for o, i in run.pairs.items():
        check_state(i, o, details[i]["shape"], outs[o]["shape"])
        pairs.append((outs[o]["index"], details[i]["index"]))
    try:
        n_ops = len(it._get_ops_details())  # noqa: SLF001 - op count for the record
    except Exception:  # noqa: BLE001 - private API, informative only
        n_ops = -1
    return LiteRTHandle(it, inputs, pairs, n_ops)


def call(h: LiteRTHandle) -> list[np.ndarray]:
    """One call as a stream makes it (states copied after it); the outputs."""
    it = h.interpreter
    it.invoke()
    for o, i in h.feedback:
        it.set_tensor(i, it.get_tensor(o))
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def time_handle(h: LiteRTHandle, plan: Plan, probe: Any = None,
                probe_times: list[float] | None = None) -> list[float]:
    it = h.interpreter

    def reset() -> None:
        for idx, value in h.inputs.values():
            it.set_tensor(idx, value)

    def feed(_: Any) -> None:
        # int8 states are copied raw: values do not change the work done
        for o, i in h.feedback:
            it.set_tensor(i, it.get_tensor(o))

    reset()
    return timed_loop(it.invoke, plan, feed if h.feedback else None,
                      reset if h.feedback else None, probe=probe, probe_times=probe_times)
