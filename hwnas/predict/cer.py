"""CER predictor: final CER from architecture features plus the early part of
the learning curve (CER and loss at the first rung) -- or, with
``curve=False``, from the architecture alone (a stand-in for training where
thousands of trials must be scored, e.g. bench/search_efficiency.py).

Fitted on records of completed training runs (``fit(records)``), e.g. those
bench/proxy_fidelity.py or a search's successive halving leave behind; saved
like the latency predictor, as XGBoost JSON plus a card. A prediction is
always labelled as one by its callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas import tasks
from hwnas.predict.features import SCHEMA_VERSION, feature_matrix, feature_names
from hwnas.predict.latency import load_booster, read_card, save_model_files
from hwnas.space.space import Arch
from hwnas.state import NUMBER, Shape

CER_CARD = Shape("CER predictor card", required={"kind": str, "schema_version": int,
                                                  "features": int, "mean_cer": NUMBER},
                 optional={"inputs": str, "train_size": int, "params": dict, "rounds": int})

EARLY = ("early_cer", "early_loss", "early_steps")


def _x(archs: Sequence[Arch], early: np.ndarray) -> np.ndarray:
    return np.concatenate([feature_matrix(archs), early], axis=1)


class CERPredictor:
    def __init__(self, booster: Any, card: dict[str, Any]) -> None:
        self.booster, self.card = booster, card

    @classmethod
    def fit(cls, records: Sequence[dict[str, Any]], rounds: int = 300,
            seed: int = 0, curve: bool = True, max_depth: int = 3) -> CERPredictor:
        """records: {"arch": dict, "final_cer"} plus, with ``curve``,
        "early_cer", "early_loss", "early_steps"."""
        import xgboost as xgb

        if len(records) < 8:
            raise ValueError(f"{len(records)} training runs are too few to fit a CER "
                             "predictor (need >= 8)")
        archs = [tasks.arch_from_dict(r["arch"]) for r in records]
        y = np.array([r["final_cer"] for r in records], dtype=float)
        if curve:
            early = np.array([[r[k] for k in EARLY] for r in records], dtype=float)
            d = xgb.DMatrix(_x(archs, early), label=y, base_margin=early[:, 0])
        else:  # the trees learn the change from the mean CER
            d = xgb.DMatrix(feature_matrix(archs), label=y,
                            base_margin=np.full(len(y), float(y.mean())))
        params = {"objective": "reg:squarederror", "max_depth": max_depth, "eta": 0.05,
                  "subsample": 0.8, "nthread": 1, "seed": seed}
        booster = xgb.train(params, d, num_boost_round=rounds)
        return cls(booster, {"kind": "cer", "schema_version": SCHEMA_VERSION,
                             "inputs": "architecture+curve" if curve else "architecture",
                             "mean_cer": float(y.mean()),
                             "features": len(feature_names()) + (len(EARLY) if curve else 0),
                             "train_size": len(records), "params": params, "rounds": rounds})

    @property
    def uses_curve(self) -> bool:
        return self.card.get("inputs", "architecture+curve") == "architecture+curve"

    def predict(self, archs: Sequence[Arch], early: np.ndarray | None = None
                ) -> np.ndarray:
        """Predicted final CER (PREDICTED, not trained); ``early`` = the first
        rung's (CER, loss, steps) per architecture unless fitted without it."""
        if not self.uses_curve:
            base = np.full(len(archs), self.card["mean_cer"])
            raw = self.booster.inplace_predict(feature_matrix(archs), base_margin=base)
            return np.clip(np.asarray(raw, dtype=float), 0.0, None)
        if early is None:
            raise ValueError("this CER predictor needs the early learning curve")
        early = np.asarray(early, dtype=float).reshape(len(archs), len(EARLY))
        raw = self.booster.inplace_predict(_x(archs, early), base_margin=early[:, 0])
        return np.clip(np.asarray(raw, dtype=float), 0.0, None)

    def save(self, folder: Path) -> Path:
        return save_model_files(folder, self.booster, self.card, CER_CARD)

    @classmethod
    def load(cls, folder: Path) -> CERPredictor:
        """The CER predictor in ``folder`` (its card checked, as a latency card is)."""
        card = read_card(Path(folder), CER_CARD)
        if card.get("kind") != "cer" or card.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{folder}: not a CER predictor of feature schema {SCHEMA_VERSION}")
        return cls(load_booster(folder), card)
