"""Training a latency predictor on a device's profile: the profile's
usable rows, a fitter from the user's settings, and the model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple


class ProfileData(NamedTuple):
    store: Any                        # the ProfileStore
    rows: list[dict[str, Any]]        # every stored row
    data: Any                         # predict.dataset.Dataset: usable rows as labels


def profile_data(device: str, workspace: Path, label: str, also: tuple[str, ...] = ()
                 ) -> ProfileData:
    """The ``device`` profile's usable rows, labelled by ``label``; with
    ``also``, those profiles' rows too, every label with its host's
    descriptor (profiles of the same target made on other CPUs)."""
    from hwnas.predict.dataset import from_profiles, from_rows
    from hwnas.profiling.store import open_profile

    store = open_profile(device, workspace)
    rows = store.rows()
    if also:
        if label not in ("auto", "rel"):
            raise ValueError("profiles of several CPUs are learnt as ratios to the reference "
                             "workload (--label rel)")
        others = [open_profile(name, workspace) for name in also]
        data = from_profiles([(rows, store.manifest)]
                             + [(o.rows(), o.manifest) for o in others], "rel")
        rows = rows + [r for o in others for r in o.rows()]
    else:
        data = from_rows(rows, label)
    if len(data) == 0:
        raise ValueError(f"the {device} profile in {store.folder} has no usable (ok) rows")
    return ProfileData(store, rows, data)


def fitter(*, objective: str, seed: int, cost_model: bool = True, rounds: int | None = None,
           max_depth: int | None = None, eta: float | None = None) -> Any:
    """``fit(dataset) -> LatencyPredictor`` with these settings (None: the default)."""
    from hwnas.predict.latency import LatencyPredictor

    params = {k: v for k, v in (("max_depth", max_depth), ("eta", eta)) if v is not None}
    kw: dict[str, Any] = {"objective": objective, "params": params, "seed": seed,
                          "cost_model": cost_model}
    if rounds is not None:
        if rounds < 1:
            raise ValueError(f"--rounds must be >= 1, got {rounds}")
        kw["rounds"] = rounds

    def fit(d: Any) -> Any:
        return LatencyPredictor.fit(d.archs, d.y, hosts=d.hosts, **kw)

    return fit


def unit_of(label: str) -> str:
    return ("ratio to the reference workload's time, per device-graph call (p50); x this "
            "host's reference time = ms" if label == "rel_p50"
            else "ms per device-graph call (p50)")


class Trained(NamedTuple):
    predictor: Any                    # the LatencyPredictor with its card (not saved yet)
    report: dict[str, Any]            # held-out accuracy, baselines, per family, noise


def train_predictor(device: str, workspace: Path, label: str, fit: Any,
                    also: tuple[str, ...] = ()) -> Trained:
    """Fit on a fixed 80% of the profile's architectures, report on the rest,
    and fill the model card."""
    from hwnas.predict.adapt import device_card
    from hwnas.predict.evaluate import holdout_report

    store, rows, data = profile_data(device, workspace, label, also)
    model, rep = holdout_report(data, fit)
    model.card.update(device_card(device, store, rows))
    model.card.update({"label": data.label, "heldout": rep["heldout"],
                       "per_family": rep["per_family"], "baselines": rep["baselines"],
                       "repeat_noise": rep["repeat_noise"], "test_size": rep["test_size"],
                       "kind": "latency", "unit": unit_of(data.label)})
    if also:
        model.card["hosts"] = data.info["hosts"]
    if data.label == "rel_p50":
        # for reading the card: on the host that made the profile, the reference took this
        model.card["reference"] = store.manifest.get("reference")
    return Trained(model, rep)


def _error(card: dict[str, Any] | None) -> float | None:
    """A predictor's held-out error (RMSPE) from its card: None where it has no
    held-out figure, NaN where the figure is not a finite number."""
    m = (card or {}).get("heldout")
    if not isinstance(m, dict):
        return None
    v = m.get("rmspe")
    return float(v) if isinstance(v, int | float) and v == v and abs(v) != float("inf") \
        else float("nan")


def _beside(folder: Path, what: str) -> Path:
    """``<folder>.<what>-<UTC time>``, a name not taken yet."""
    import time

    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out, n = folder.with_name(f"{folder.name}.{what}-{stamp}"), 1
    while out.exists():
        n += 1
        out = folder.with_name(f"{folder.name}.{what}-{stamp}-{n}")
    return out


def install(model: Any, folder: Path, replace: bool = False) -> tuple[Path, str]:
    """Save ``model`` as the predictor in ``folder`` unless the one there is
    better on its own held-out measure, or either has none (``replace``
    overrides): then it is saved beside, as ``<folder>.candidate-<time>``. A
    replaced predictor is set aside as ``<folder>.replaced-<time>``, never
    deleted. Returns (where it went, one line saying which it did)."""

    new = _error(model.card)
    if new is not None and new != new:
        raise ValueError("the new predictor's held-out error is not a finite number; nothing "
                         "was saved (check the training options)")
    from hwnas.paths import held

    folder = Path(folder)
    # two commands installing at once: one after the other, each compared with the last
    with held(folder.parent / f".{folder.name}.lock", f"the predictor {folder.name}"):
        return _install(model, folder, new, replace)


def _install(model: Any, folder: Path, new: float | None, replace: bool) -> tuple[Path, str]:
    from hwnas.predict.latency import read_card

    if not ((folder / "card.json").exists() or (folder / "model.json").exists()):
        return model.save(folder), f"saved {folder}"
    try:
        old = _error(read_card(folder))
    except ValueError:
        old = float("nan")    # unreadable: the new one takes its place, the old is kept
    better = old is not None and old != old or (
        new is not None and old is not None and new <= old * 1.001)
    if not (better or replace):
        beside = _beside(folder, "candidate")
        model.save(beside)
        why = (f"the new one is worse ({new:.1%} against {old:.1%} held-out RMSPE)"
               if new is not None and old is not None else
               "there is no held-out figure to compare them by")
        return beside, (f"kept the predictor in {folder}: {why}; the new one was saved in "
                        f"{beside}, and --replace installs it")
    kept = _beside(folder, "replaced")
    folder.rename(kept)
    out = model.save(folder)
    return out, f"replaced the predictor in {folder}; the earlier one is kept in {kept}"
