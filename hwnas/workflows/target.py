"""The target's latency predictor, calibrated to this host where it runs here.

A host-CPU predictor (``cpu``, ``cpu-torch`` ...) predicts the ratio of a
call's time to the reference workload's (``rel_p50``); in ms on this host
that is the ratio x this host's reference time (``hwnas.predict.calibration``,
about 1.5 s at first use, cached). The ratio itself can change with the
microarchitecture, the runtime or the thread count, which no CPU model string
reveals reliably, so the first search for a target on a host runs a spot
check (``spot_check``): architectures are measured here until the corrected
predictor's leave-one-out error is within the host's own repeat-to-repeat
noise, or the measurement budget (``SPOT_BUDGET_S``) is spent. What it
measured always corrects the predictor (``hwnas.predict.adapt``: a scale
with its interval, or more terms where leave-one-out says they help); a
small error decides only that no more measurements are needed.
Measurements, the spot check's report and the corrected predictor are kept
under a host-specific name, ``<target>.host-<hash>`` (profiles/ and
predictors/ of the workspace), so the next search on this host starts from
them and the original profile and predictor stay as they were. Other
targets are their own hardware and use their predictor as found: in ms
(Edge TPU, GPUs), or for phones profiled with the shipped reference model
(``hwnas.adapters.android``) as ratios x the phone's reference time, timed
on the phone at first use and cached like a host's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas import tasks
from hwnas.paths import write_atomic

SPOT_FIRST = 6           # first batch, chosen for coverage of the predicted latency
SPOT_STEP = 3            # then this many at a time, where the correction is least certain
SPOT_REPEATED = 6        # of the first batch, measured twice: the host's own noise
                         # (with 3 the median spread came out 2% and 4.8% on one host)
SPOT_BUDGET_S = 120.0    # measurement time at most (--spot-budget); the first batch always
SPOT_MAX = 60            # architectures at most
NOISE_FLOOR = 0.02       # a noise estimate from a few repeats can come out near 0
SPOT_VERSION = 3         # 2: labels not yet rescaled to the reference timed alone;
                         # before 2, spot checks only judged, never corrected


@dataclass
class TargetLatency:
    """A target's predictor as the search uses it: ``ms(archs)``."""

    predictor: Any
    where: str                          # folder of the predictor used
    spec: Any                           # device spec to measure with (maybe host-specific)
    reference: dict[str, Any] | None    # this host's reference time (relative predictors)
    spot_check: dict[str, Any] | None = None   # the report of the correction in force
    corrected: bool | None = None   # by this host's spot check; None: not a host target
    notes: list[str] = field(default_factory=list)

    @property
    def ref_ms(self) -> float | None:
        return self.reference["ms"] if self.reference else None

    def ms(self, archs: list[Any]) -> Any:
        return self.predictor.predict_ms(archs, self.ref_ms)

    @property
    def reference_beside(self) -> dict[str, Any] | None:
        """This host's reference as it runs beside measured calls (alone x the
        spot check's ``context_factor``): a measured ratio x it is the ms a
        plain loop shows, as the corrected predictor's ms are."""
        k = (self.spot_check or {}).get("context_factor", 1.0)
        if self.reference is None or k == 1.0:
            return self.reference
        return {**self.reference, **{key: self.reference[key] * k
                                     for key in ("ms", "ci_lo", "ci_hi")}}


def host_tag(spec: Any, fp: dict[str, Any]) -> str:
    key = "|".join(str(fp.get(k)) for k in ("cpu", "cores", "runtime", "threads"))
    return hashlib.sha1(f"{spec.name}|{key}".encode()).hexdigest()[:8]


def _profile_batch(spec: Any, workspace: Path, measure: Callable[[Any], None] | None,
                   seed: int) -> Callable[[list[Any], int], list[dict[str, Any]]]:
    """Measure architectures on ``spec`` into its profile (resumable: what is
    stored is not measured again); returns the profile's rows."""
    from hwnas.profiling.profiler import ProfileRun

    def batch(archs: list[Any], repeats: int) -> list[dict[str, Any]]:
        if archs:
            run = ProfileRun(spec, workspace, len(archs), seed, tasks.default_space(), archs=archs,
                             repeats=repeats)
            run.drive(measure)
        return ProfileRun(spec, workspace, 0, seed, tasks.default_space(), archs=[]).store().rows()

    return batch


def spot_check(predictor: Any, spec: Any, workspace: Path, *,
               budget_s: float = SPOT_BUDGET_S, measure: Callable[[Any], None] | None = None,
               seed: int = 0, first: int = SPOT_FIRST,
               batch: Callable[[list[Any], int], list[dict[str, Any]]] | None = None,
               clock: Callable[[], float] = time.monotonic,
               ref_ms: float | None = None) -> dict[str, Any]:
    """Measure on ``spec`` (into its profile) until the correction of
    ``predictor`` fitted on everything measured there predicts each
    measurement, left out, within the host's repeat-to-repeat noise (median),
    or until ``budget_s`` seconds of measuring are spent. ``batch(archs,
    repeats)`` measures and returns every row of the host's profile (a
    stand-in device replaces it in tests). Returns the report, with the
    correction under ``correction``.

    ``ref_ms`` (the reference timed alone, as the search converts ratios to
    ms with it): rows are ratios to the reference timed *beside* the calls,
    which runs at another speed than alone (the model under test shares its
    caches). The labels are rescaled by the median of the two over what was
    measured, so that the corrected ratio x ``ref_ms`` is the ms a user's own
    loop shows (measured: 10% low on one host without it)."""
    import numpy as np

    from hwnas.predict.adapt import fit_correction, least_certain, select_for_coverage
    from hwnas.predict.dataset import from_rows, repeat_noise
    from hwnas.predict.features import feature_matrix

    batch = batch or _profile_batch(spec, workspace, measure, seed)
    pool = tasks.default_space().sample_distinct(500, seed + 1000)
    X_pool = feature_matrix(pool)
    base_pool = predictor.predict_features(X_pool)
    spent, timed = 0.0, 0
    rows = batch([], 1)   # measured here before (an older spot check, an adaptation)
    if not rows:
        chosen = select_for_coverage(pool, base_pool, first)
        t0 = clock()
        batch(chosen[:SPOT_REPEATED], 2)
        rows = batch(chosen[SPOT_REPEATED:], 1)
        spent, timed = clock() - t0, first + min(first, SPOT_REPEATED)
    while True:
        data = from_rows(rows, "rel")
        if len(data) < 3:
            raise ValueError(f"the spot check measured only {len(data)} architectures ok on "
                             f"{spec.name}; see `hwnas profile --device {spec.name}`")
        beside = [float(r["ref_p50_ms"]) for r in rows
                  if r.get("ref_p50_ms") and r.get("status") != "failed"]
        context = float(np.median(beside)) / ref_ms if beside and ref_ms else 1.0
        data.y = data.y * context
        X = feature_matrix(data.archs)
        base = predictor.predict_features(X)
        corr = fit_correction(X, base, data.y)
        rn = repeat_noise(data)
        noise = max(NOISE_FLOOR, rn["median"] if rn else NOISE_FLOOR)
        per = spent / timed if timed else 5.0   # s per measurement; a guess before any
        room = int((budget_s - spent) / per) if per > 0 else SPOT_STEP
        if corr["loo_median_abs"] <= noise:
            stop = "within the noise"
        elif len(data) >= SPOT_MAX:
            stop = f"{SPOT_MAX} architectures"
        elif room < 1:
            stop = "budget spent"
        else:
            known = set(data.ids)
            picks = least_certain(X_pool, base_pool, X, base, min(SPOT_STEP, room),
                                  exclude=[i for i, a in enumerate(pool) if a.id in known])
            t0 = clock()
            rows = batch([pool[i] for i in picks], 1)
            spent, timed = spent + clock() - t0, timed + len(picks)
            continue
        break
    err = np.log(base / data.y)   # the prediction's error: negative where it is low
    return {"version": SPOT_VERSION, "n": len(data), "spent_s": round(spent, 1),
            "budget_s": budget_s, "stopped": stop, "noise": noise,
            "repeat_noise": rn, "correction": corr,
            "reference_alone_ms": ref_ms, "context_factor": context,
            "uncorrected_median_error": float(np.exp(np.median(err)) - 1),
            "uncorrected_median_abs_error": float(np.median(np.abs(np.exp(err) - 1))),
            "loo_median_abs_error": corr["loo_median_abs"]}


def describe_correction(report: dict[str, Any]) -> str:
    """One line: the correction in force, from how many measurements, how well it fits."""
    c = report["correction"]
    if c["method"] == "scale":
        lo, hi = c.get("scale_ci", (math.nan, math.nan))
        what = f"x{math.exp(c['coef'][0]):.3f} (95% CI {lo:.3f}-{hi:.3f})"
    else:
        what = f"{c['method']} in log time"
    return (f"{what} from {report['n']} architectures measured here; left out one at a time "
            f"they are predicted within {c['loo_median_abs']:.1%} (median; host noise "
            f"{report['noise']:.1%}; uncorrected {report['uncorrected_median_abs_error']:.1%}, "
            f"bias {report['uncorrected_median_error']:+.1%})")


def _at_this_host(predictor: Any, fp: dict[str, Any], ref_ms: float,
                  say: Callable[[str], None]) -> Callable[[Any], Any]:
    """For a predictor that learnt several CPUs: predict at this host's
    descriptor (``hwnas.predict.hosts``); other predictors pass unchanged."""
    if not predictor.multi_host:
        return lambda p: p
    from hwnas.adapters.host import cpu_descriptor
    from hwnas.predict.hosts import host_vector

    d = cpu_descriptor()
    here = host_vector(d, fp.get("runtime"), ref_ms)
    learnt = [h["host"] for h in predictor.card.get("hosts") or []]
    say(f"this predictor learnt {len(learnt) or 'several'} CPUs; predicting at this host's "
        f"descriptor: {d['model_name']} ({d['family_model']}), {'/'.join(d['isa']) or 'no'} "
        f"AVX/AMX, L2 {d['cache_kib'].get('l2', 0):g} KiB")
    return lambda p: p.at_host(here)


def target_predictor(target: str, workspace: Path, spec: Any | None,
                     measure: Callable[[Any], None] | None = None,
                     say: Callable[[str], None] = lambda s: None,
                     budget_s: float = SPOT_BUDGET_S, calibrate: Callable[..., dict] | None = None,
                     check: bool = True, batch: Callable[..., list] | None = None
                     ) -> TargetLatency:
    """The predictor the search uses for ``target``, with this host's
    reference time and, for host CPUs, corrected by the spot check's
    measurements (made once per host). ``check=False`` measures nothing but
    the reference: the correction made here earlier, else the predictor as
    found (``corrected`` False). ``spec`` None: the target's device file,
    read only where it is needed; ``batch`` as ``spot_check``'s."""
    from hwnas.adapters import adapter_class
    from hwnas.predict.calibration import describe, fingerprint, host_reference
    from hwnas.predict.latency import LatencyPredictor, find_predictor

    where = find_predictor(target, workspace)
    predictor = LatencyPredictor.load(where)
    if not predictor.relative:
        return TargetLatency(predictor, str(where), spec, None, corrected=None)
    if spec is None:
        from hwnas.adapters.devicefile import load_device

        spec = load_device(target, workspace)
    calibrate = calibrate or host_reference
    ref = calibrate(spec, workspace)
    if not adapter_class(spec.adapter).runs_on_host:
        # a phone: its own hardware, timed against the shipped reference model
        say(f"calibrated to {target}: its reference {ref['ms']:.3f} ms (95% CI "
            f"{ref['ci_lo']:.3f}-{ref['ci_hi']:.3f}); the predictor's ratios x {ref['ms']:.3f} "
            f"ms = predicted ms on it")
        return TargetLatency(predictor, str(where), spec, ref, corrected=None)
    fp = ref.get("fingerprint") or fingerprint(spec)
    bind = _at_this_host(predictor, fp, ref["ms"], say)
    predictor = bind(predictor)
    out = TargetLatency(predictor, str(where), spec, ref, corrected=False)
    say(f"calibrated to this host: {describe(ref)}; the {target} predictor's ratios x "
        f"{ref['ms']:.3f} ms = predicted ms here")
    local = dataclasses.replace(spec, name=f"{target}.host-{host_tag(spec, fp)}")
    out.spec = local
    from hwnas.paths import held

    # commands sharing a workspace spot-check a host once: the second waits, then uses it
    with held(Path(workspace) / "predictors" / f".{local.name}.lock",
              f"the correction for this host ({local.name})"):
        return _corrected(predictor, where, target, local, workspace, out, bind, ref, fp,
                          measure, say, budget_s, check, batch)


def _corrected(predictor: Any, where: Path, target: str, local: Any, workspace: Path,
               out: TargetLatency, bind: Callable[[Any], Any], ref: dict[str, Any],
               fp: dict[str, Any], measure: Callable[[Any], None] | None,
               say: Callable[[str], None], budget_s: float, check: bool,
               batch: Callable[..., list] | None) -> TargetLatency:
    from hwnas.predict.latency import LatencyPredictor, predictor_dir

    mine = predictor_dir(workspace, local.name)
    kept = None
    if (mine / "card.json").is_file():
        try:
            kept = LatencyPredictor.load(mine)
        except ValueError as e:   # made again below; the folder is set aside, not overwritten
            say(f"{e}; the correction for this host is made again")
    if kept is not None:
        report = kept.card.get("spot_check") or {}
        if report.get("version") == SPOT_VERSION and report.get("predictor") == str(where):
            out.predictor, out.where, out.spot_check, out.corrected = bind(kept), str(mine), \
                report, True
            say(f"corrected for this host earlier ({mine}): {describe_correction(report)}")
            return out
    if not check:
        return out
    say(f"spot check: measuring architectures on this host until the corrected {target} "
        f"predictor is within the host's noise, at most {budget_s:g} s (once per host)")
    report = {**spot_check(predictor, local, workspace, budget_s=budget_s, measure=measure,
                           batch=batch, ref_ms=ref["ms"]), "predictor": str(where)}
    verdict_path = Path(workspace) / "profiles" / local.name / "spot-check.json"
    verdict_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(verdict_path, json.dumps(report, indent=2, sort_keys=True) + "\n")
    # the source's held-out figures describe its own host, not this one
    card = {**{k: v for k, v in predictor.card.items()
               if k not in ("heldout", "per_family", "baselines", "repeat_noise", "test_size")},
            "host": {k: fp.get(k) for k in ("cpu", "cores", "runtime", "threads")},
            "adaptation": {**report["correction"], "from": target}, "spot_check": report}
    corrected = bind(LatencyPredictor(predictor.booster, card))
    if mine.exists():   # a correction of an older kind: set aside, not overwritten
        mine.rename(mine.with_name(f"{mine.name}.replaced-{time.strftime('%Y%m%dT%H%M%S')}"))
    saved = corrected.save(mine)
    say(f"spot check ({report['stopped']}, {report['spent_s']:g} s of measuring): correction "
        f"{describe_correction(report)}; saved to {saved}")
    out.predictor, out.where, out.spot_check, out.corrected = corrected, str(saved), report, True
    return out
