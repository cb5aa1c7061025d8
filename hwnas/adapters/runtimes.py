"""What the host runtimes share between adapters (this CPU, a CUDA GPU):
ONNX Runtime sessions and PyTorch device graphs as run/feed/reset
callables that time a graph as it runs in a stream, caches fed back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.adapters.records import ModelRun
from hwnas.nn.graph_io import feedback_pairs, initial_feeds


@dataclass
class Handle:
    """A prepared model: ``run()`` one call, ``feed(out)`` its caches into the
    next call, ``reset()`` a new stream."""

    kind: str
    run: Any
    feed: Any
    reset: Any
    rss_before: float
    keep: Any = None      # objects that must stay alive (session, interpreter, model)


def stream_call(handle: Handle) -> Any:
    """One call as a stream makes it (states fed to the next); returns the outputs."""
    def call() -> Any:
        out = handle.run()
        if handle.feed is not None:
            handle.feed(out)
        return out

    return call


def ort_session(path: str, threads: int, providers: list[str] | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    if threads == 1:
        # no worker pool to spin; spinning threads steal the other core's time
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, opts, providers=providers or ["CPUExecutionProvider"])


def check_state(name_in: str, name_out: str, before: Any, after: Any) -> None:
    """A state fed back must keep its shape (given as shapes or arrays): a
    stream whose state changes shape each call is not one this loop times."""
    before, after = tuple(getattr(before, "shape", before)), tuple(getattr(after, "shape", after))
    if before != after:
        raise ValueError(f"state pair {name_in}={name_out}: shapes differ after a call "
                         f"({'x'.join(map(str, before))} in, {'x'.join(map(str, after))} out)")


def io_of(artifact: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(first feeds, output -> input pairs) of an exported artifact (inputs
    made from its specs) or of a ModelRun (inputs as given)."""
    if isinstance(artifact, ModelRun):
        return dict(artifact.feeds), dict(artifact.pairs)
    return initial_feeds(artifact.inputs), feedback_pairs(artifact.inputs, artifact.outputs)


def ort_callables(sess: Any, inputs: list[dict[str, Any]], outputs: list[str],
                  io: tuple[dict[str, Any], dict[str, str]] | None = None) -> tuple:
    feeds, pairs = io or (initial_feeds(inputs), feedback_pairs(inputs, outputs))
    start = dict(feeds)
    index = {o: outputs.index(o) for o in pairs}
    checked = False

    def run() -> list[np.ndarray]:
        return sess.run(outputs, feeds)

    def feed(out: list[np.ndarray]) -> None:
        nonlocal checked
        for o, i in pairs.items():
            if not checked:
                check_state(i, o, feeds[i], out[index[o]])
            feeds[i] = out[index[o]]
        checked = True

    def reset() -> None:
        feeds.update(start)

    return run, (feed if pairs else None), (reset if pairs else None)


def torch_graph(arch_json: str, seed: int = 0) -> Any:
    import torch

    from hwnas.tasks import arch_from_json, build_model, device_graph

    arch = arch_from_json(Path(arch_json).read_text())
    torch.manual_seed(seed)
    return device_graph(build_model(arch))


def torch_module(artifact: Any) -> Any:
    """The module to call for an exported architecture (built from its
    arch.json) or for a ModelRun's TorchScript or torch.export archive."""
    if not isinstance(artifact, ModelRun):
        return torch_graph(artifact.path)
    import torch

    if artifact.format == "torchscript":
        return torch.jit.load(artifact.path, map_location="cpu").eval()
    return torch.export.load(artifact.path).module()


def torch_callables(graph: Any, inputs: list[dict[str, Any]], outputs: list[str],
                    device: str = "cpu",
                    io: tuple[dict[str, Any], dict[str, str]] | None = None) -> tuple:
    import torch

    first, pairs = io or (initial_feeds(inputs), feedback_pairs(inputs, outputs))
    start = {k: torch.from_numpy(np.asarray(v)).to(device) for k, v in first.items()}
    feeds = dict(start)
    order = [s["name"] for s in inputs]
    index = {o: outputs.index(o) for o in pairs}
    checked = False

    @torch.inference_mode()
    def run() -> tuple:
        out = graph(*[feeds[n] for n in order])
        return out if isinstance(out, tuple | list) else (out,)

    def feed(out: tuple) -> None:
        nonlocal checked
        for o, i in pairs.items():
            if not checked:
                check_state(i, o, feeds[i], out[index[o]])
            feeds[i] = out[index[o]]
        checked = True

    def reset() -> None:
        feeds.update(start)

    return run, (feed if pairs else None), (reset if pairs else None)
