"""What the host runtimes share between adapters (this CPU, a CUDA GPU):
ONNX Runtime sessions and PyTorch device graphs as run/feed/reset
callables that time a graph as it runs in a stream, caches fed back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.asr.graph_io import feedback_pairs, initial_feeds


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


def ort_callables(sess: Any, inputs: list[dict[str, Any]], outputs: list[str]) -> tuple:
    feeds = initial_feeds(inputs)
    start = dict(feeds)
    pairs = feedback_pairs(inputs, outputs)
    index = {o: outputs.index(o) for o in pairs}

    def run() -> list[np.ndarray]:
        return sess.run(outputs, feeds)

    def feed(out: list[np.ndarray]) -> None:
        for o, i in pairs.items():
            feeds[i] = out[index[o]]

    def reset() -> None:
        feeds.update(start)

    return run, (feed if pairs else None), (reset if pairs else None)


def torch_graph(arch_json: str, seed: int = 0) -> Any:
    import torch

    from hwnas.tasks import arch_from_json, build_model, device_graph

    arch = arch_from_json(Path(arch_json).read_text())
    torch.manual_seed(seed)
    return device_graph(build_model(arch))


def torch_callables(graph: Any, inputs: list[dict[str, Any]], outputs: list[str],
                    device: str = "cpu") -> tuple:
    import torch

    start = {k: torch.from_numpy(v).to(device) for k, v in initial_feeds(inputs).items()}
    feeds = dict(start)
    order = [s["name"] for s in inputs]
    pairs = feedback_pairs(inputs, outputs)
    index = {o: outputs.index(o) for o in pairs}

    @torch.inference_mode()
    def run() -> tuple:
        return graph(*[feeds[n] for n in order])

    def feed(out: tuple) -> None:
        for o, i in pairs.items():
            feeds[i] = out[index[o]]

    def reset() -> None:
        feeds.update(start)

    return run, (feed if pairs else None), (reset if pairs else None)
