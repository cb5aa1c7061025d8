"""Predictor features: the space's encoding plus the task's analytic cost
model (:mod:`hwnas.asr.cost`, :mod:`hwnas.tts.cost`: what one device-graph
call does, per operator kind). Both tasks end in the same analytic columns,
so code that reads one by name (:func:`analytic_column`) serves both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.asr import ArchConfig, default_space
from hwnas.asr.cost import analytic
from hwnas.nn.costs import ANALYTIC, KINDS

__all__ = ["ANALYTIC", "KINDS", "SCHEMA_VERSION", "analytic", "costs", "feature_matrix",
           "feature_names"]

#: Bump when a feature is added, removed or computed differently: a predictor
#: refuses features of another schema.
SCHEMA_VERSION = 1


def feature_names(task: str = "asr") -> list[str]:
    from hwnas.tasks import default_space as space

    return space(task).feature_names() + ANALYTIC


def task_of_archs(archs: Sequence[Any]) -> str:
    """The one task of ``archs`` (a predictor learns one task's graphs)."""
    from hwnas.tasks import task_of

    found = {task_of(a) for a in archs}
    if len(found) > 1:
        raise ValueError("these architectures mix speech recognisers and TTS models; "
                         "a predictor learns one task")
    return found.pop() if found else "asr"


def analytic_column(X: np.ndarray, name: str) -> np.ndarray:
    """The analytic feature ``name`` of a feature matrix of either task."""
    return X[:, X.shape[1] - len(ANALYTIC) + ANALYTIC.index(name)]


def feature_matrix(archs: Sequence[ArchConfig]) -> np.ndarray:
    """(N, len(feature_names(task))) float64 features of ``archs``."""
    task = task_of_archs(archs)
    if not archs:
        return np.zeros((0, len(feature_names(task))))
    from hwnas import tasks

    space = tasks.default_space(task)
    cols = space.columns(archs)
    a = tasks.analytic(task, cols)
    parts = [*space.encode_many(archs, cols).T, *(a[n] for n in ANALYTIC)]
    # filled feature by feature (contiguous rows), returned as an (N, F) view
    out = np.empty((len(parts), len(archs)))
    for i, p in enumerate(parts):
        out[i] = p
    return out.T


def costs(arch: ArchConfig) -> dict[str, Any]:
    """The analytic cost model of one architecture, as plain numbers."""
    a = analytic(default_space().columns([arch]))
    return {k: float(v[0]) for k, v in a.items()}
