"""Predictor features: the space's encoding plus the task's analytic cost
model (:mod:`hwnas.asr.cost`, :mod:`hwnas.tts.cost`: what one device-graph
call does, per operator kind). Both tasks end in the same analytic columns,
so code that reads one by name (:func:`analytic_column`) serves both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas import tasks
from hwnas.nn.costs import ANALYTIC, KINDS
from hwnas.space.space import Arch

__all__ = ["ANALYTIC", "KINDS", "SCHEMA_VERSION", "costs", "feature_matrix", "feature_names"]

#: Bump when a feature is added, removed or computed differently: a predictor
#: refuses features of another schema.
SCHEMA_VERSION = 1


def feature_names(task: str = tasks.DEFAULT) -> list[str]:
    return tasks.default_space(task).feature_names() + ANALYTIC


def task_of_archs(archs: Sequence[Any]) -> str:
    """The one task of ``archs`` (a predictor learns one task's graphs)."""
    found = {tasks.task_of(a) for a in archs}
    if len(found) > 1:
        raise ValueError("these architectures mix speech recognisers and TTS models; "
                         "a predictor learns one task")
    return found.pop() if found else tasks.DEFAULT


def analytic_column(X: np.ndarray, name: str) -> np.ndarray:
    """The analytic feature ``name`` of a feature matrix of either task."""
    return X[:, X.shape[1] - len(ANALYTIC) + ANALYTIC.index(name)]


def feature_matrix(archs: Sequence[Arch]) -> np.ndarray:
    """(N, len(feature_names(task))) float64 features of ``archs``."""
    task = task_of_archs(archs)
    if not archs:
        return np.zeros((0, len(feature_names(task))))
    space = tasks.default_space(task)
    cols = space.columns(archs)
    a = tasks.analytic(task, cols)
    parts = [*space.encode_many(archs, cols).T, *(a[n] for n in ANALYTIC)]
    # filled feature by feature (contiguous rows), returned as an (N, F) view
    out = np.empty((len(parts), len(archs)))
    for i, p in enumerate(parts):
        out[i] = p
    return out.T


def costs(arch: Arch) -> dict[str, Any]:
    """The analytic cost model of one architecture, as plain numbers."""
    task = tasks.task_of(arch)
    a = tasks.analytic(task, tasks.default_space(task).columns([arch]))
    return {k: float(v[0]) for k, v in a.items()}
