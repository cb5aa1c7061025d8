"""Predictor features: the space's encoding plus the task's analytic cost
model (:mod:`hwnas.asr.cost`: what one device-graph call does, per
operator kind)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.asr import ArchConfig, default_space
from hwnas.asr.cost import ANALYTIC, analytic
from hwnas.asr.cost._tally import KINDS

__all__ = ["ANALYTIC", "KINDS", "SCHEMA_VERSION", "analytic", "costs", "feature_matrix",
           "feature_names"]

#: Bump when a feature is added, removed or computed differently: a predictor
#: refuses features of another schema.
SCHEMA_VERSION = 1


def feature_names() -> list[str]:
    return default_space().feature_names() + ANALYTIC


def feature_matrix(archs: Sequence[ArchConfig]) -> np.ndarray:
    """(N, len(feature_names())) float64 features of ``archs``."""
    if not archs:
        return np.zeros((0, len(feature_names())))
    cols = default_space().columns(archs)
    a = analytic(cols)
    parts = [*default_space().encode_many(archs, cols).T, *(a[n] for n in ANALYTIC)]
    # filled feature by feature (contiguous rows), returned as an (N, F) view
    out = np.empty((len(parts), len(archs)))
    for i, p in enumerate(parts):
        out[i] = p
    return out.T


def costs(arch: ArchConfig) -> dict[str, Any]:
    """The analytic cost model of one architecture, as plain numbers."""
    a = analytic(default_space().columns([arch]))
    return {k: float(v[0]) for k, v in a.items()}
