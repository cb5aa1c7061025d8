"""Held-out evaluation of the latency predictor and its baselines.

The split is by architecture id (:func:`holdout_mask`), so the same
architectures are held out on every run and on every device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hwnas.predict.dataset import LatencyData, holdout_mask, repeat_noise
from hwnas.predict.features import analytic_column, feature_matrix
from hwnas.predict.latency import LatencyPredictor
from hwnas.predict.metrics import accuracy


class PowerLaw:
    """Baseline: log latency = a * log(column) + b (e.g. FLOPs-only)."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.coef = np.zeros(2)

    def _x(self, archs: list) -> np.ndarray:
        return np.log(np.maximum(analytic_column(feature_matrix(archs), self.column), 1.0))

    def fit(self, archs: list, y: np.ndarray) -> PowerLaw:
        x = self._x(archs)
        self.coef = np.polyfit(x, np.log(y), 1)
        return self

    def predict(self, archs: list) -> np.ndarray:
        return np.exp(np.polyval(self.coef, self._x(archs)))


def split(data: LatencyData) -> tuple[LatencyData, LatencyData]:
    ho = holdout_mask(data.ids)
    return data.subset(~ho), data.subset(ho)


def per_family(test: LatencyData, pred: np.ndarray) -> dict[str, Any]:
    fam = test.families
    return {f: accuracy(test.y[fam == f], pred[fam == f]) for f in sorted(set(fam))}


def holdout_report(data: LatencyData, fit: Callable[[LatencyData], LatencyPredictor]
                   ) -> tuple[LatencyPredictor, dict[str, Any]]:
    """Train on the training share, score the held-out share; baselines beside."""
    train, test = split(data)
    if len(test) < 5 or len(train) < 10:
        raise ValueError(f"{len(data)} measured architectures are too few for a held-out "
                         "evaluation (need about 60); measure more with `hwnas profile`")
    model = fit(train)
    pred = model.predict(test.archs, test.hosts)
    report: dict[str, Any] = {
        "train_size": len(train), "test_size": len(test), "label": data.label,
        "heldout": accuracy(test.y, pred),
        "per_family": per_family(test, pred),
        "baselines": {
            "flops_only": accuracy(test.y, PowerLaw("flops").fit(train.archs, train.y)
                                   .predict(test.archs)),
            "params_only": accuracy(test.y, PowerLaw("params").fit(train.archs, train.y)
                                    .predict(test.archs)),
        },
        "repeat_noise": repeat_noise(data),
    }
    return model, report


def leave_family_out(data: LatencyData, fit: Callable[[LatencyData], LatencyPredictor]
                     ) -> dict[str, Any]:
    """Train without one encoder family, score on that family (all of it)."""
    out = {}
    fam = data.families
    for f in sorted(set(fam)):
        model = fit(data.subset(fam != f))
        test = data.subset(fam == f)
        out[f] = accuracy(test.y, model.predict(test.archs, test.hosts))
    return out
