"""The target's latency predictor, calibrated to this host where it runs here.

A host-CPU predictor (``cpu``, ``cpu-torch`` ...) predicts the ratio of a
call's time to the reference workload's (``rel_p50``); in ms on this host
that is the ratio x this host's reference time (``hwnas.predict.calibration``,
about 1.5 s at first use, cached). The ratio itself can change with the
microarchitecture, the runtime or the thread count, which no CPU model string
reveals reliably, so the first search for a target on a host also runs a
spot check: ``SPOT_N`` architectures chosen for coverage are measured here
and compared with the predictor. When their median absolute error is beyond
``SPOT_TOLERANCE`` (the label noise: two measurements of one architecture
are 3% apart at the median and within 12% for 90% of them), the predictor is
adapted with ``ADAPT_N`` measurements (few-shot, ``hwnas.predict.adapt``).
Measurements, the spot check's verdict and an adapted predictor are kept
under a host-specific name, ``<target>.host-<hash>`` (profiles/ and
predictors/ of the workspace), so the next search on this host starts from
them and the original profile and predictor stay as they were. Other
targets (phones, Edge TPU, GPUs) are their own hardware and use their
predictor as found, in ms.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.paths import write_atomic

ADAPT_N = 20        # measurements for a host whose ratios differ (~1 minute on a small CPU)
SPOT_N = 6          # measurements of the spot check
SPOT_TOLERANCE = 0.10


@dataclass
class TargetLatency:
    """A target's predictor as the search uses it: ``ms(archs)``."""

    predictor: Any
    where: str                          # folder of the predictor used
    spec: Any                           # device spec to measure with (maybe host-specific)
    reference: dict[str, Any] | None    # this host's reference time (relative predictors)
    adapted: dict[str, Any] | None = None   # adaptation report, when adapted now
    spot_check: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ref_ms(self) -> float | None:
        return self.reference["ms"] if self.reference else None

    def ms(self, archs: list[Any]) -> Any:
        return self.predictor.predict_ms(archs, self.ref_ms)


def host_tag(spec: Any, fp: dict[str, Any]) -> str:
    key = "|".join(str(fp.get(k)) for k in ("cpu", "cores", "runtime", "threads"))
    return hashlib.sha1(f"{spec.name}|{key}".encode()).hexdigest()[:8]


def spot_check(predictor: Any, spec: Any, workspace: Path, *, n: int = SPOT_N,
               measure: Callable[[Any], None] | None = None, seed: int = 0
               ) -> dict[str, Any]:
    """Measure ``n`` architectures chosen for coverage on ``spec`` (into its
    profile) and compare their ratio to the reference with the prediction."""
    import numpy as np

    from hwnas.asr import default_space
    from hwnas.predict.adapt import select_for_coverage
    from hwnas.predict.dataset import from_rows
    from hwnas.profiling.profiler import ProfileRun

    space = default_space()
    pool = space.sample_distinct(500, seed + 1000)
    chosen = select_for_coverage(pool, predictor.predict(pool), n)
    run = ProfileRun(spec, workspace, len(chosen), seed, space, archs=chosen)
    run.drive(measure)
    ids = {a.id for a in chosen}
    data = from_rows([r for r in run.store().rows() if r["arch_id"] in ids], "rel")
    if len(data) < 3:
        raise ValueError(f"the spot check measured only {len(data)} of {n} architectures ok "
                         f"on {spec.name}")
    err = np.log(data.y / predictor.predict(data.archs))
    med = float(np.exp(np.median(err)) - 1)
    # a shift of the scale and a scatter between architectures both count: the
    # median absolute error (a changed microarchitecture scatters more than it shifts)
    mad = float(np.median(np.abs(np.exp(err) - 1)))
    return {"n": len(data), "median_error": med, "median_abs_error": mad,
            "errors": [float(np.exp(e) - 1) for e in err],
            "agrees": mad <= SPOT_TOLERANCE, "tolerance": SPOT_TOLERANCE}


def target_predictor(target: str, workspace: Path, spec: Any | None,
                     measure: Callable[[Any], None] | None = None,
                     say: Callable[[str], None] = lambda s: None, n: int = ADAPT_N,
                     spot_n: int = SPOT_N, calibrate: Callable[..., dict] | None = None,
                     check: bool = True) -> TargetLatency:
    """The predictor the search uses for ``target``, with this host's
    reference time and, for host CPUs, the spot check done (once per host).
    ``check=False`` measures nothing but the reference (``hwnas predict``):
    the predictor adapted to this host earlier, else the one found.
    ``spec`` None: the target's device file, read only where it is needed."""
    from hwnas.adapters import adapter_class
    from hwnas.predict.calibration import describe, fingerprint, host_reference
    from hwnas.predict.latency import LatencyPredictor, find_predictor, predictor_dir
    from hwnas.workflows.adapt import adapt_predictor

    where = find_predictor(target, workspace)
    predictor = LatencyPredictor.load(where)
    on_host = spec is None or adapter_class(spec.adapter).runs_on_host
    if not predictor.relative or not on_host:
        return TargetLatency(predictor, str(where), spec, None)
    if spec is None:
        from hwnas.adapters.devicefile import load_device

        spec = load_device(target, workspace)
    calibrate = calibrate or host_reference
    ref = calibrate(spec, workspace)
    out = TargetLatency(predictor, str(where), spec, ref)
    say(f"calibrated to this host: {describe(ref)}; the {target} predictor's ratios x "
        f"{ref['ms']:.3f} ms = predicted ms here")
    fp = ref.get("fingerprint") or fingerprint(spec)
    local = dataclasses.replace(spec, name=f"{target}.host-{host_tag(spec, fp)}")
    out.spec = local
    mine = predictor_dir(workspace, local.name)
    if (mine / "card.json").is_file():   # adapted on this kind of host before
        out.predictor, out.where = LatencyPredictor.load(mine), str(mine)
        say(f"using the predictor adapted to this host earlier: {mine}")
        return out
    if not check:
        return out
    verdict_path = Path(workspace) / "profiles" / local.name / "spot-check.json"
    verdict = None
    if verdict_path.is_file():
        try:
            verdict = json.loads(verdict_path.read_text())
            verdict = verdict if isinstance(verdict, dict) and \
                verdict.get("predictor") == str(where) and "agrees" in verdict else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            verdict = None
    if verdict is None:
        say(f"spot check: measuring {spot_n} architectures on this host to check the "
            f"{target} predictor's ratios (once per host)")
        verdict = {**spot_check(predictor, local, workspace, n=spot_n, measure=measure),
                   "predictor": str(where)}
        verdict_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(verdict_path, json.dumps(verdict, indent=2, sort_keys=True) + "\n")
    out.spot_check = verdict
    mad = verdict.get("median_abs_error", abs(verdict["median_error"]))
    if verdict["agrees"]:
        say(f"spot check: predictions off by a median {mad:.1%} (bias "
            f"{verdict['median_error']:+.1%}) over {verdict['n']} architectures measured "
            f"here, within {verdict['tolerance']:.0%}: the predictor is used as is")
        return out
    say(f"spot check: predictions off by a median {mad:.1%} (bias "
        f"{verdict['median_error']:+.1%}) over {verdict['n']} architectures measured here, "
        f"beyond {verdict['tolerance']:.0%}: adapting it with {n} measurements here (few-shot)")
    adapted, report = adapt_predictor(predictor, target, local, workspace, n=n,
                                      measure=measure, label="rel")
    adapted.card["host"] = {k: fp.get(k) for k in ("cpu", "cores", "runtime", "threads")}
    adapted.card["spot_check"] = verdict
    saved = adapted.save(mine)
    say(f"adapted predictor saved to {saved} (correction: {report['method']})")
    out.predictor, out.where, out.adapted = adapted, str(saved), report
    return out
