"""XGBoost latency predictor, saved as XGBoost's own JSON plus a JSON model card.

Two stages. A non-negative additive cost model -- latency = sum over operator
kinds of FLOPs x (time per FLOP of that kind) + operators x overhead + ... --
is fitted first (:class:`CostModel`, its few coefficients live in the card);
XGBoost then learns the remaining error as a boosted correction on top of it
(the cost model's log is the trees' base margin). Trees alone are piecewise
constant, and with a thousand architectures spread over 500x in latency their
steps are the largest error; the cost model gives them a smooth baseline
(measured in bench/predictor_accuracy.py, part "design").

Objectives (``objective``):
  log       squared error on log(latency): relative errors weigh the same for a
            0.1 ms and a 30 ms model (the default)
  relative  squared error on latency weighted by 1/latency^2, i.e. squared
            relative error on the linear scale (trees only, no cost-model base)

An adapted predictor (few-shot, :mod:`hwnas.predict.adapt`) is the source
device's booster plus a small correction fitted on the new device's
measurements; both travel in the same two files.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas import tasks
from hwnas.predict.features import (
    KINDS,
    SCHEMA_VERSION,
    analytic_column,
    feature_matrix,
    feature_names,
    task_of_archs,
)
from hwnas.space.space import Arch

MODEL_FILE = "model.json"
CARD_FILE = "card.json"
OBJECTIVES = ("log", "relative")

#: chosen by the held-out grid in bench/predictor_accuracy.py (part "tune")
DEFAULT_PARAMS: dict[str, Any] = {"max_depth": 3, "eta": 0.1, "subsample": 0.8,
                                  "colsample_bytree": 0.8, "min_child_weight": 1,
                                  "lambda": 1.0}
DEFAULT_ROUNDS = 300


def _xgb() -> Any:
    try:
        import xgboost
    except ImportError:
        raise RuntimeError("the latency predictor needs xgboost: pip install xgboost-cpu") \
            from None
    return xgboost


class SchemaMismatch(ValueError):
    pass


#: columns of the additive cost model (all from the analytic features)
COST_COLUMNS = tuple(f"flops_{k}" for k in KINDS) + (
    "ops", "act_elems", "cache_elems", "params", "lstm_steps", "score_elems", "one")


class CostModel:
    """latency ~= sum_j coef_j * column_j / scale_j, coef >= 0, fitted by
    non-negative least squares on relative error (rows weighted by 1/latency)."""

    def __init__(self, scale: np.ndarray, coef: np.ndarray) -> None:
        self.scale, self.coef = np.asarray(scale, float), np.asarray(coef, float)

    @staticmethod
    def design(X: np.ndarray) -> np.ndarray:
        return np.stack([np.ones(len(X)) if c == "one" else analytic_column(X, c)
                         for c in COST_COLUMNS], axis=1)

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray) -> CostModel:
        from scipy.optimize import nnls

        A = cls.design(X)
        scale = A.max(axis=0)
        scale[scale == 0] = 1.0
        w = 1.0 / y
        coef, _ = nnls((A / scale) * w[:, None], y * w)
        return cls(scale, coef)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.maximum((self.design(X) / self.scale) @ self.coef, 1e-4)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(COST_COLUMNS), "scale": self.scale.tolist(),
                "coef": self.coef.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CostModel:
        if tuple(d["columns"]) != COST_COLUMNS:
            raise SchemaMismatch("the predictor's cost model uses other columns")
        return cls(np.array(d["scale"]), np.array(d["coef"]))


class LatencyPredictor:
    def __init__(self, booster: Any, card: dict[str, Any]) -> None:
        self.booster = booster
        self.card = card
        self.cost = CostModel.from_dict(card["cost_model"]) if card.get("cost_model") else None
        self.host: np.ndarray | None = None   # this host's features (multi-host predictors)

    @property
    def multi_host(self) -> bool:
        """Learnt from profiles of several CPUs, with their descriptors as features."""
        return bool(self.card.get("host_features"))

    def at_host(self, vector: np.ndarray) -> LatencyPredictor:
        """This predictor, predicting for the host with these HOST_FEATURES."""
        out = LatencyPredictor(self.booster, self.card)
        out.host = np.asarray(vector, dtype=float)
        return out

    def _with_hosts(self, X: np.ndarray, hosts: np.ndarray | None) -> np.ndarray:
        """The trees' input: the host's features first (the analytic columns are
        read from the end, so they stay where the cost model looks)."""
        if not self.multi_host:
            return X
        if hosts is None:
            if self.host is None:
                raise ValueError("this predictor learnt several CPUs; it needs the host's "
                                 "descriptor (LatencyPredictor.at_host)")
            hosts = np.tile(self.host, (len(X), 1))
        return np.hstack([hosts, X])

    # --- training -------------------------------------------------------------
    @classmethod
    def fit(cls, archs: Sequence[Arch], y: np.ndarray, *, objective: str = "log",
            params: dict[str, Any] | None = None, rounds: int = DEFAULT_ROUNDS,
            seed: int = 0, cost_model: bool = True, card: dict[str, Any] | None = None,
            hosts: np.ndarray | None = None) -> LatencyPredictor:
        """``hosts`` (one row of ``HOST_FEATURES`` per architecture): learn
        several CPUs at once (``hwnas.predict.hosts``)."""
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; one of {', '.join(OBJECTIVES)}")
        if len(archs) < 10:
            raise ValueError(f"{len(archs)} measured architectures are too few to train a "
                             "predictor (need >= 10)")
        xgb = _xgb()
        task = task_of_archs(archs)
        names = feature_names(task)
        X = feature_matrix(archs)
        y = np.asarray(y, dtype=float)
        # the cost model is a base in log space; the relative objective is trees only
        cost = CostModel.fit(X, y) if cost_model and objective == "log" else None
        margin = np.log(cost.predict(X)) if cost is not None else None
        host_names: list[str] = []
        if hosts is not None:
            from hwnas.predict.hosts import HOST_FEATURES

            host_names = list(HOST_FEATURES)
            X = np.hstack([np.asarray(hosts, dtype=float), X])
            names = host_names + names
        if objective == "log":
            dtrain = xgb.DMatrix(X, label=np.log(y), feature_names=names)
            if margin is not None:
                dtrain.set_base_margin(margin)
        else:
            dtrain = xgb.DMatrix(X, label=y, weight=1.0 / y ** 2,
                                 feature_names=names)
        p = {"objective": "reg:squarederror", "tree_method": "hist", "nthread": 1,
             "seed": seed, **DEFAULT_PARAMS, **(params or {})}
        booster = xgb.train(p, dtrain, num_boost_round=rounds)
        meta = {"schema_version": SCHEMA_VERSION, "features": len(names), "task": task,
                "objective": objective, "params": p, "rounds": rounds,
                "train_size": len(archs), "host_features": host_names,
                "cost_model": cost.to_dict() if cost is not None else None,
                "xgboost": xgb.__version__,
                "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        return cls(booster, {**(card or {}), **meta})

    # --- prediction -------------------------------------------------------------
    def predict_features(self, X: np.ndarray, hosts: np.ndarray | None = None) -> np.ndarray:
        """Milliseconds for a feature matrix from :func:`feature_matrix`
        (``hosts``: per row, for a multi-host predictor; else its ``at_host``)."""
        margin = None if self.cost is None else np.log(self.cost.predict(X))
        # float32 is what the trees compare in; converting here is faster than inside
        raw = np.asarray(self.booster.inplace_predict(
            np.asarray(self._with_hosts(X, hosts), dtype=np.float32), base_margin=margin),
            dtype=float)
        base = np.exp(raw) if self.card["objective"] == "log" else np.maximum(raw, 1e-6)
        adapt = self.card.get("adaptation")
        if adapt:
            from hwnas.predict.adapt import apply_correction

            base = apply_correction(adapt, X, base)
        return base

    def predict(self, archs: Sequence[Arch], hosts: np.ndarray | None = None
                ) -> np.ndarray:
        """Predicted latency of one device-graph call per architecture, in the
        label's unit: ms, or for a relative predictor the ratio to the
        reference workload (turn it into ms with :meth:`predict_ms`)."""
        task = task_of_archs(archs)
        learned = self.card.get("task", tasks.DEFAULT)
        if archs and task != learned:
            raise ValueError(f"this predictor learned {learned} graphs, not {task} ones")
        return self.predict_features(feature_matrix(archs), hosts)

    @property
    def relative(self) -> bool:
        """True when predictions are ratios to the reference workload."""
        return self.card.get("label") == "rel_p50"

    def predict_ms(self, archs: Sequence[Arch], ref_ms: float | None) -> np.ndarray:
        """Milliseconds on a host whose reference workload takes ``ref_ms``."""
        pred = self.predict(archs)
        if not self.relative:
            return pred
        if not ref_ms or ref_ms <= 0:
            raise ValueError("a relative predictor needs this host's reference time (ms)")
        return pred * ref_ms

    # --- files --------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        return save_model_files(folder, self.booster, self.card)

    @classmethod
    def load(cls, folder: Path) -> LatencyPredictor:
        folder = Path(folder)
        card = read_card(folder)
        got = card.get("schema_version")
        if got != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"predictor {folder} uses feature schema {got}, this hwnas computes schema "
                f"{SCHEMA_VERSION}; retrain it with `hwnas predictor train --device "
                f"{card.get('device', 'DEVICE')}`")
        n = (len(feature_names(card.get("task", tasks.DEFAULT)))
             + len(card.get("host_features") or []))
        if card.get("features") != n:
            raise SchemaMismatch(f"predictor {folder} expects {card.get('features')} features, "
                                 f"schema {SCHEMA_VERSION} has {n}")
        hosts = card.get("host_features") or []
        if hosts:
            from hwnas.predict.hosts import HOST_FEATURES

            if tuple(hosts) != HOST_FEATURES:
                raise SchemaMismatch(f"predictor {folder} learnt other host features than this "
                                     f"hwnas computes; retrain it")
        return cls(load_booster(folder), card)


def save_model_files(folder: Path, booster: Any, card: dict[str, Any],
                     shape: Any = None) -> Path:
    """A predictor's two files, each written atomically (temp file + rename):
    the booster in XGBoost's own JSON and the card."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp_model = folder / ".model.tmp.json"  # XGBoost picks the format by suffix
    booster.save_model(str(tmp_model))
    os.replace(tmp_model, folder / MODEL_FILE)
    from hwnas.state import write_json

    write_json(folder / CARD_FILE, card, shape or CARD_SHAPE)
    return folder


def _card_shape() -> Any:
    from hwnas.state import NUMBER, Shape

    return Shape("predictor card", required={"schema_version": int, "features": int,
                                             "objective": str},
                 optional={"task": str, "label": (str, None), "train_size": int,
                           "cost_model": (dict, None), "adaptation": (dict, None),
                           "host_features": list, "hosts": list, "heldout": (dict, None),
                           "spot_check": (dict, None), "reference": (dict, None),
                           "params": dict, "rounds": int, "device": (str, None),
                           "per_family": (dict, None), "baselines": (dict, None),
                           "test_size": (int, None), "unit": str, "kind": str,
                           "threads": (int, None), "nominal_ms": (NUMBER, None)})


CARD_SHAPE = _card_shape()


def read_card(folder: Path, shape: Any = None) -> dict[str, Any]:
    """The card of the predictor in ``folder``, checked against ``shape``
    (default: a latency predictor's)."""
    card_path, model_path = folder / CARD_FILE, folder / MODEL_FILE
    if not card_path.is_file() or not model_path.is_file():
        raise ValueError(f"no predictor in {folder} (expected {MODEL_FILE} and {CARD_FILE})")
    from hwnas.state import read_json

    return read_json(card_path, shape or CARD_SHAPE)


def load_booster(folder: Path) -> Any:
    booster = _xgb().Booster()
    booster.load_model(str(Path(folder) / MODEL_FILE))
    booster.set_param({"nthread": 1})
    return booster


def predictor_dir(workspace: Path | None, device: str) -> Path:
    return Path(workspace or ".") / "predictors" / device


def find_predictor(device: str, workspace: Path | None) -> Path:
    """The workspace's predictor for ``device``, else the shipped one."""
    from hwnas.paths import find_data

    root = find_data("predictors", device, workspace, CARD_FILE)
    if root is not None:
        return root
    raise ValueError(f"no latency predictor for device {device!r}; create one with "
                     f"`hwnas profile --device {device} --n 1000` then "
                     f"`hwnas predictor train --device {device}`, or a few-shot one from "
                     f"20 measurements: `hwnas predictor adapt --from cpu --device {device}`")


def load_predictor(device: str, workspace: Path | None) -> LatencyPredictor:
    return LatencyPredictor.load(find_predictor(device, workspace))
