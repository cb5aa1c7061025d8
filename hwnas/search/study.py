"""The search: an Optuna study over the space, minimising CER, latency and size.

Each trial suggests an architecture through the space's own ``suggest``,
predicts its latency on the target with the target's latency predictor
(labelled predicted), computes its parameters analytically, and -- only if
it meets the constraints as predicted -- trains it briefly for its CER.
Constraints are Optuna constraints (value <= 0 is feasible), so infeasible
trials inform the sampler instead of vanishing; they are not trained and
carry CER 1.0.

Storage is any Optuna storage URL (SQLite by default); the study name fixes
the study, so a killed search resumes where it stopped.

First part of the search capability: verification of the Pareto set on the
device, export of the winner, successive halving inside the study and
reports come next.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hwnas.space import ArchConfig, SearchSpace, default_space

SAMPLERS = ("nsga2", "tpe", "gp", "random")
OBJECTIVES = ("cer", "latency", "params")
UNTRAINED_CER = 1.0  # infeasible trials are not trained


@dataclass
class SearchConfig:
    target: str
    objectives: tuple[str, ...] = ("cer", "latency")
    max_latency_ms: float | None = None
    max_params: int | None = None
    trials: int = 20
    sampler: str = "nsga2"
    seed: int = 0
    study: str = "hwnas"
    storage: str | None = None
    space: SearchSpace = field(default_factory=default_space)

    def __post_init__(self) -> None:
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad or not self.objectives:
            raise ValueError(f"unknown objective(s) {bad}; choose from {', '.join(OBJECTIVES)}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; one of {', '.join(SAMPLERS)}")
        if self.trials < 1:
            raise ValueError("--trials must be >= 1")


def _sampler(cfg: SearchConfig) -> Any:
    """Constraints reach the samplers through ``trial.set_constraint`` (Optuna 5)."""
    import optuna

    if cfg.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=cfg.seed,
                                             population_size=max(4, min(50, cfg.trials // 4)))
    if cfg.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=cfg.seed)
    if cfg.sampler == "gp":
        return optuna.samplers.GPSampler(seed=cfg.seed)
    return optuna.samplers.RandomSampler(seed=cfg.seed)


def run_search(cfg: SearchConfig, predict_latency: Callable[[ArchConfig], float],
               train_cer: Callable[[ArchConfig], float],
               on_trial: Callable[[Any], None] | None = None) -> Any:
    """Run (or continue) the study until it holds ``cfg.trials`` finished trials."""
    import optuna

    from hwnas.predict.features import costs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=cfg.study, storage=cfg.storage,
                                directions=["minimize"] * len(cfg.objectives),
                                sampler=_sampler(cfg), load_if_exists=True)
    if study.user_attrs.get("target", cfg.target) != cfg.target:
        raise ValueError(f"study {cfg.study!r} searched for {study.user_attrs['target']}, "
                         f"not {cfg.target}; choose another --study")
    study.set_user_attr("target", cfg.target)
    study.set_user_attr("objectives", list(cfg.objectives))

    def objective(trial: Any) -> tuple[float, ...]:
        arch = cfg.space.suggest(trial)
        latency = float(predict_latency(arch))
        params = int(costs(arch)["params"])
        cons = [latency - cfg.max_latency_ms if cfg.max_latency_ms else 0.0,
                params - cfg.max_params if cfg.max_params else 0.0]
        trial.set_user_attr("arch", arch.to_dict())
        trial.set_user_attr("arch_id", arch.id)
        trial.set_user_attr("latency_ms", latency)
        trial.set_user_attr("latency_source", "predicted")
        trial.set_user_attr("params", params)
        trial.set_user_attr("constraints", cons)
        trial.set_constraint("latency", cons[0])
        trial.set_constraint("params", cons[1])
        feasible = all(c <= 0 for c in cons)
        cer = float(train_cer(arch)) if feasible else UNTRAINED_CER
        if not math.isfinite(cer):
            cer = UNTRAINED_CER
        trial.set_user_attr("cer", cer)
        trial.set_user_attr("trained", feasible)
        values = {"cer": cer, "latency": latency, "params": float(params)}
        return tuple(values[o] for o in cfg.objectives)

    done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
    remaining = max(0, cfg.trials - done)
    if remaining:
        callbacks = [lambda s, t: on_trial(t)] if on_trial else None
        study.optimize(objective, n_trials=remaining, callbacks=callbacks)
    return study


def pareto(study: Any) -> list[dict[str, Any]]:
    """Feasible Pareto-optimal trials, lowest CER first."""
    rows = []
    for t in study.best_trials:
        if all(c <= 0 for c in t.user_attrs.get("constraints", [0.0])):
            rows.append({"trial": t.number, **{k: t.user_attrs[k] for k in
                                               ("arch_id", "cer", "latency_ms",
                                                "latency_source", "params", "arch")}})
    return sorted(rows, key=lambda r: (r["cer"], r["latency_ms"]))


def select_for_target(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The lowest-CER architecture meeting every constraint (ties: faster)."""
    return rows[0] if rows else None
