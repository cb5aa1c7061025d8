"""Verification of the search's answer on the device itself.

Every architecture of the feasible Pareto set is measured on the target
(through the profiler, so the rows also land in the target's profile and
later improve its predictor). The decision uses the measurement's 95%
confidence interval of the p50, never the spread of single calls:

  met         the interval's upper bound is at or below the limit
  missed      its lower bound is above the limit: dropped, with both figures
  borderline  the limit lies inside the interval: measured again, longer
              (up to ``BORDERLINE_REPEATS`` times); if it stays borderline it
              is kept and reported as borderline with its interval

Each limit is judged so: compute per call (``--max-latency``), emission
delay (``--max-delay``: the architecture's algorithmic delay plus the
measured compute, interval shifted by that constant) and real-time factor
(``--max-rtf``: compute over the audio per call). An architecture is missed
if any limit is missed, borderline if any is borderline, met otherwise.

Figures are in ms on this host: for a relative (host-calibrated) predictor,
the measured ratio to the reference x this host's reference time -- the
same scale the predictions use -- with both intervals combined; otherwise
the raw p50. p90 and real-time factor are put on the same scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from hwnas import tasks

BORDERLINE_REPEATS = 2


def measured_ms(row: dict[str, Any], ref: dict[str, Any] | None
                ) -> tuple[float, float, float] | None:
    """(p50, CI low, CI high) in ms on this host of one profile row, or None."""
    if row.get("status") == "failed" or row.get("p50_ms") is None:
        return None
    if ref is not None and row.get("rel_p50") and row.get("rel_p50_ci_lo") is not None:
        rel, lo, hi = row["rel_p50"], row["rel_p50_ci_lo"], row["rel_p50_ci_hi"]
        h_rel = (hi - lo) / 2 / rel
        h_ref = (ref["ci_hi"] - ref["ci_lo"]) / 2 / ref["ms"]
        h = math.sqrt(h_rel ** 2 + h_ref ** 2)   # independent estimates: widths add in quadrature
        est = rel * ref["ms"]
        return est, est * (1 - h), est * (1 + h)
    lo, hi = row.get("p50_ci_lo"), row.get("p50_ci_hi")
    if lo is None or hi is None:   # a row measured before intervals were stored
        return row["p50_ms"], float("-inf"), float("inf")
    return row["p50_ms"], lo, hi


def combine(estimates: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """Independent measurements of one architecture: mean of the estimates,
    half-widths combined as for a mean of independent estimates."""
    if len(estimates) == 1:
        return estimates[0]
    k = len(estimates)
    est = sum(e for e, _, _ in estimates) / k
    h = math.sqrt(sum(((hi - lo) / 2) ** 2 for _, lo, hi in estimates)) / k
    return est, est - h, est + h


def judge(est: tuple[float, float, float], limit: float | None) -> str:
    _, lo, hi = est
    if limit is None:
        return "measured"
    if hi <= limit:
        return "met"
    if lo > limit:
        return "missed"
    return "borderline"


def _fmt(est: tuple[float, float, float], unit: str = " ms") -> str:
    e, lo, hi = est
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{e:.3f}{unit} (no interval)"
    return f"{e:.3f}{unit} (95% CI {lo:.3f}-{hi:.3f})"


class Limits(NamedTuple):
    """The limits verification judges, each on its own scale."""

    latency_ms: float | None = None    # compute per device-graph call
    delay_ms: float | None = None      # emission delay: algorithmic delay + compute
    rtf: float | None = None           # compute / audio per call


class Check(NamedTuple):
    what: str                          # "compute", "emission delay", "real-time factor"
    estimate: tuple[float, float, float]
    limit: float | None
    unit: str
    verdict: str


_ORDER = ("missed", "borderline", "met", "measured")


def checks(arch: Any, compute: tuple[float, float, float], limits: Limits
           ) -> list[Check]:
    """The measured compute (p50, lo, hi ms) against every limit on its scale."""
    alg, audio = algorithmic_ms(arch), tasks.audio_ms(arch)
    e, lo, hi = compute
    scaled = (("compute", compute, limits.latency_ms, " ms"),
              ("emission delay", (alg + e, alg + lo, alg + hi), limits.delay_ms, " ms"),
              ("real-time factor", (e / audio, lo / audio, hi / audio), limits.rtf, ""))
    return [Check(w, est, lim, u, judge(est, lim)) for w, est, lim, u in scaled]


def algorithmic_ms(arch: Any) -> float:
    """The delay ``arch``'s input alone takes to arrive (its task's judge)."""
    return tasks.get(tasks.task_of(arch)).judge(arch, 0.0)["algorithmic"]


def verdict_of(cs: list[Check]) -> str:
    return min((c.verdict for c in cs), key=_ORDER.index)


class Verified(NamedTuple):
    """What verification on the device decided."""

    kept: list[dict[str, Any]]       # measured within the constraint (or not measurable)
    dropped: list[dict[str, Any]]    # measured over it, each with its reason
    not_verified: str | None         # why nothing could be measured (None: measured)


class _State(NamedTuple):
    estimate: tuple[float, float, float] | None   # (p50, lo, hi) ms over the repeats
    rows: list[dict[str, Any]]


def verify(rows: list[dict[str, Any]], spec: Any, workspace: Path,
           max_latency_ms: float | None, reference: dict[str, Any] | None = None,
           measure: Callable[[Any], Any] | None = None, *, max_delay_ms: float | None = None,
           max_rtf: float | None = None, executor: Any = None) -> Verified:
    """``reference`` is this host's reference time when the predictor is
    relative (see module doc). The measurements go through ``executor``
    (default: this process), e.g. to the phone of a Ray cluster."""
    from hwnas.adapters import DeviceUnavailable
    from hwnas.profiling.measure import row_key
    from hwnas.profiling.profiler import ProfileRun

    limits = Limits(max_latency_ms, max_delay_ms, max_rtf)

    if not rows:
        return Verified([], [], None)
    archs = {r["arch_id"]: tasks.arch_from_dict(r["arch"]) for r in rows}
    task = tasks.task_of(next(iter(archs.values())))

    def run_pass(ids: list[str], repeats: int, longer: bool) -> ProfileRun:
        plan = spec.plan
        if longer:   # a borderline one: a longer, tighter measurement
            plan = plan.replace(min_seconds=max(3 * plan.min_seconds, 3.0),
                                max_seconds=max(plan.max_seconds, 3 * plan.min_seconds, 3.0),
                                max_ci=plan.max_ci / 2)
        run = ProfileRun(spec, workspace, len(ids), 0, tasks.default_space(task),
                         archs=[archs[i] for i in ids], repeats=repeats, plan=plan,
                         executor=executor, task=task)
        run.drive(measure)
        return run

    # a search that measured its trials (no predictor) is verified by another,
    # later measurement: the second repeat, judged with the first
    first = 2 if any(r.get("latency_source") == "measured" for r in rows) else 1
    try:  # the run checks the device first and raises before measuring anything
        run = run_pass(list(archs), first, False)
    except DeviceUnavailable as e:
        return Verified(rows, [], f"{e}: latencies are predicted")
    fmt = run.fmt or spec.make().format

    def state(arch_id: str, stored: dict[str, dict[str, Any]], repeats: int) -> _State:
        mine = [stored[k] for k in (row_key(arch_id, fmt, r) for r in range(1, repeats + 1))
                if k in stored]
        ests = [e for e in (measured_ms(m, reference) for m in mine) if e is not None]
        return _State(combine(ests) if ests else None, mine)

    repeats = {i: first for i in archs}
    stored = {r["key"]: r for r in run.store().rows()}
    for _ in range(BORDERLINE_REPEATS):
        border = [i for i in archs
                  if (e := state(i, stored, repeats[i])[0]) is not None
                  and verdict_of(checks(archs[i], e, limits)) == "borderline"]
        if not border:
            break
        for i in border:
            repeats[i] += 1
        for r in sorted({repeats[i] for i in border}):
            run = run_pass([i for i in border if repeats[i] == r], r, True)
        stored = {r["key"]: r for r in run.store().rows()}

    kept, dropped = [], []
    for r in rows:
        est, mine = state(r["arch_id"], stored, repeats[r["arch_id"]])
        r = {**r, "predicted_ms": r["latency_ms"], "predicted_delay_ms": r.get("delay_ms"),
             "predicted_rtf": r.get("rtf")}
        if est is None:
            why = next((m.get("error") for m in mine if m.get("error")), "no measurement")
            dropped.append({**r, "verdict": "failed", "reason": f"not measured: {why}"})
            continue
        arch = archs[r["arch_id"]]
        cs = checks(arch, est, limits)
        verdict = verdict_of(cs)
        last = mine[-1]
        scale = est[0] / last["p50_ms"] if last.get("p50_ms") else 1.0
        p90 = last["p90_ms"] * scale if last.get("p90_ms") is not None else None
        alg = algorithmic_ms(arch)
        r.update(latency_ms=est[0], latency_ci=[est[1], est[2]], latency_source="measured",
                 verdict=verdict, measurements=len(mine),
                 flags=sorted({f for m in mine for f in (m.get("flags") or [])}),
                 p90_ms=p90, rtf=cs[2].estimate[0], algorithmic_ms=alg,
                 delay_ms=cs[1].estimate[0], delay_ci=list(cs[1].estimate[1:]),
                 delay_p90_ms=alg + p90 if p90 is not None else None,
                 model_bytes=last.get("model_bytes"))
        predicted = {"compute": r["predicted_ms"], "emission delay": r.get("predicted_delay_ms"),
                     "real-time factor": r.get("predicted_rtf")}
        if verdict == "missed":
            dropped.append({**r, "reason": "missed: " + "; ".join(
                f"measured {c.what} {_fmt(c.estimate, c.unit)} > {c.limit:g}{c.unit}"
                + (f" (predicted {predicted[c.what]:.3f}{c.unit})"
                   if predicted[c.what] is not None else "")
                for c in cs if c.verdict == "missed")})
        else:
            if verdict == "borderline":
                r["note"] = "borderline: " + "; ".join(
                    f"measured {c.what} {_fmt(c.estimate, c.unit)} around the {c.limit:g}"
                    f"{c.unit} limit" for c in cs if c.verdict == "borderline") \
                    + f" after {len(mine)} measurements"
            kept.append(r)
    return Verified(kept, dropped, None)
