"""Few-shot adaptation of a latency predictor to another device: choose
architectures for coverage, measure them there (into its profile, resumable),
fit a correction (``hwnas.predict.adapt``) and check it on the rest."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from hwnas import tasks
from hwnas.predict.adapt import device_card, fit_correction, select_for_coverage


class Adapted(NamedTuple):
    predictor: Any              # the adapted LatencyPredictor (not saved yet)
    report: dict[str, Any]      # measured, method, held-out accuracy adapted and not


def adapt_predictor(source: Any, source_name: str, spec: Any, workspace: Any, *, n: int = 20,
                    pool: int = 2000, seed: int = 0, method: str = "auto",
                    label: str = "auto", measure: Any = None, space: Any = None,
                    executor: Any = None, phones: list[str] | None = None) -> Adapted:
    """Measure ``n`` architectures chosen for coverage on ``spec``'s device
    (into its profile, resumable) and fit a correction of ``source``.
    ``measure(run)`` drives the profile run (e.g. with a progress bar); by
    default it is iterated silently. The
    architectures come from ``space`` (default: the whole space). The caller
    saves the predictor. ``executor`` and ``phones`` are the profile run's
    (where the measurements run, and on which phones of a pool)."""
    from hwnas.predict.dataset import from_rows
    from hwnas.predict.features import feature_matrix
    from hwnas.predict.latency import LatencyPredictor
    from hwnas.predict.metrics import accuracy
    from hwnas.profiling.profiler import ProfileRun

    if source.card.get("adaptation"):
        raise ValueError(f"the {source_name} predictor is itself adapted; adapt from a "
                         "predictor trained on a full profile")
    if not 3 <= n <= pool:
        raise ValueError(f"--n must be between 3 and --pool ({pool})")
    space = space or tasks.default_space()
    candidates = space.sample_distinct(pool, seed)
    chosen = select_for_coverage(candidates, source.predict(candidates), n)
    run = ProfileRun(spec, workspace, len(chosen), seed, space, archs=chosen,
                     executor=executor, phones=phones)
    run.drive(measure)
    store = run.store()
    rows = store.rows()
    data = from_rows(rows, label)
    ids = {a.id for a in chosen}
    fit_mask = np.array([i in ids for i in data.ids], dtype=bool)
    fit = data.subset(fit_mask)
    if len(fit) < 3:
        raise ValueError(f"only {len(fit)} of the {len(chosen)} chosen architectures measured "
                         f"ok on {spec.name}; cannot adapt")
    Xf = feature_matrix(fit.archs)
    corr = fit_correction(Xf, source.predict_features(Xf), fit.y, method)
    card = {k: v for k, v in source.card.items()
            if k not in ("heldout", "per_family", "baselines", "repeat_noise", "test_size")}
    card.update(device_card(spec.name, store, rows))
    card["label"] = data.label
    card["adaptation"] = {**corr, "from": source_name, "source_train_size":
                          source.card.get("train_size"), "source_host": source.card.get("host"),
                          "archs": sorted(ids)}
    adapted = LatencyPredictor(source.booster, card)
    rest = data.subset(~fit_mask)
    report: dict[str, Any] = {"device": spec.name, "from": source_name,
                              "measured": len(fit), "method": corr["method"]}
    if len(rest) >= 5:
        report["heldout"] = accuracy(rest.y, adapted.predict(rest.archs))
        report["unadapted"] = accuracy(rest.y, source.predict(rest.archs))
        card["heldout"] = report["heldout"]
        card["test_size"] = len(rest)
    return Adapted(adapted, report)
