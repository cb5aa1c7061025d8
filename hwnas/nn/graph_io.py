"""The device graphs' inputs and outputs by name: inputs for timing or
calibrating a graph from its input specs alone.

Features are random, states start at zero (a stream's start), token inputs
are one-hot. ``new_X`` outputs feed input ``X`` on the next call, so a chunk
model is timed as it runs in a stream: with its caches filled.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class DeviceGraph(Protocol):
    """What export and the runtimes ask of a task's device graph (a
    ``torch.nn.Module``, one call per chunk or utterance): its named inputs
    (``hwnas.nn.spec.TensorSpec``) and outputs, which output feeds which input
    on the next call, the feeds a device times it with, and realistic inputs
    for quantisation and parity checks."""

    inputs: list[Any]
    outputs: list[str]
    feedback: dict[int, int]   # output index -> input index (streaming state)

    def example_inputs(self, seed: int = 0) -> list[Any]: ...

    def sample_inputs(self, n: int, seed: int) -> list[list[np.ndarray]]: ...

    def __call__(self, *inputs: Any) -> Any: ...


def initial_feeds(inputs: list[dict[str, Any]], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in inputs:
        name, shape = spec["name"], tuple(spec["shape"])
        if name == "features":
            feeds[name] = rng.standard_normal(shape).astype(np.float32)
        elif name in ("prev_token", "tokens"):
            x = np.zeros(shape, np.float32)
            idx = rng.integers(0, shape[-1], size=shape[:-1])
            np.put_along_axis(x, idx[..., None], 1.0, axis=-1)
            feeds[name] = x
        else:
            feeds[name] = np.zeros(shape, np.float32)
    return feeds


def feedback_pairs(inputs: list[dict[str, Any]], outputs: list[str]) -> dict[str, str]:
    """output name -> input name it feeds on the next call."""
    names = {s["name"] for s in inputs}
    return {o: o[4:] for o in outputs if o.startswith("new_") and o[4:] in names}
