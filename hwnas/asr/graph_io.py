"""The device graphs' inputs and outputs by name: inputs for timing or
calibrating a graph from its input specs alone.

Features are random, states start at zero (a stream's start), token inputs
are one-hot. ``new_X`` outputs feed input ``X`` on the next call, so a chunk
model is timed as it runs in a stream: with its caches filled.
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
