"""Does the shipped CPU predictor travel to this host?

    python -m bench.host_calibration                  # 30 architectures, ~3 min
    python -m bench.host_calibration --n 30 --seed 20261201

First does what `hwnas search --target cpu` does on a new host (time the
reference, then the spot check: measure until the corrected predictor is
within the host's noise or 2 minutes of measuring are spent), in a
throwaway workspace. Then samples ``--n``
architectures with a seed none of that used, measures them here with the
profiler (`hwnas profile --device cpu`), and compares with:

  search        what the search predicts here: the predictor corrected by
                the spot check, its ratio x this host's reference time
  shipped       the shipped `cpu` predictor's ratio x this host's reference
                time, without the spot check
  uncalibrated  the shipped ratio x the reference time of the host that made
                the profile (what a predictor in absolute ms would say here)

against the measured p50 (raw ms), against the measured ratio x this host's
reference time (host speed swings divided out, as the label), and against
what a user's own timing shows: a bare ONNX Runtime loop (one session, one
thread, fixed inputs, 20 warm-up calls, then the median of at least 1 s and
100 calls; no reference probe between calls), run right after. Goal:
>= 90% within +-10% of the bare loop on a host of the profile's kind, and
Kendall tau >= 0.95, for what the search predicts.
Writes the figures as JSON (--out).

    python -m bench.host_calibration --part adapt --n 100 --workspace DIR

measures ``--n`` architectures here into DIR's `cpu` profile (resumable) and
asks how many measurements on this host it takes to fix what the ratio does
not carry: random splits (5) into n_fit measured architectures and the rest,
scored for the few-shot correction (`hwnas.predict.adapt`) and for a small
residual booster on top of the shipped predictor (depth 2, 60 rounds).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.adapters.devicefile import load_device  # noqa: E402
from hwnas.asr import default_space  # noqa: E402
from hwnas.predict.calibration import host_reference  # noqa: E402
from hwnas.predict.latency import load_predictor  # noqa: E402
from hwnas.predict.metrics import accuracy  # noqa: E402
from hwnas.profiling.profiler import ProfileRun  # noqa: E402


def bare_ort_ms(arch, work: Path) -> float:
    """The p50 of one device-graph call as a user's own loop times it."""
    import time

    from hwnas.adapters.runtimes import ort_session
    from hwnas.export import export
    from hwnas.nn.graph_io import initial_feeds

    art = export(arch, "onnx", work / arch.id, check=False)
    sess = ort_session(art.path, 1)
    feeds = initial_feeds(art.inputs)
    for _ in range(20):
        sess.run(art.outputs, feeds)
    times: list[float] = []
    t_end = time.perf_counter() + 1.0
    while len(times) < 100 or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        sess.run(art.outputs, feeds)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def part_adapt(n: int, seed: int, workspace: Path) -> dict:
    import xgboost

    from hwnas.predict.adapt import apply_correction, fit_correction
    from hwnas.predict.dataset import from_rows
    from hwnas.predict.features import feature_matrix, feature_names

    spec = load_device("cpu")
    run = ProfileRun(spec, workspace, n, seed, default_space())
    for _ in run.run():
        pass
    d = from_rows(run.store().rows(), "rel")
    src = load_predictor("cpu", None)
    X = feature_matrix(d.archs)
    base, y = src.predict_features(X), d.y
    out: dict = {"n": len(y), "as_is": accuracy(y, base)}
    rng = np.random.default_rng(0)
    xgb = xgboost
    for n_fit in (20, 40, 80):
        if n_fit >= len(y) - 10:
            continue
        res: dict[str, list[float]] = {"correction": [], "residual_trees": []}
        for rep in range(5):
            idx = rng.permutation(len(y))
            fit, test = idx[:n_fit], idx[n_fit:]
            c = fit_correction(X[fit], base[fit], y[fit])
            res["correction"].append(accuracy(
                y[test], apply_correction(c, X[test], base[test]))["within_10pct"])
            dm = xgb.DMatrix(X[fit], label=np.log(y[fit]), feature_names=feature_names())
            dm.set_base_margin(np.log(base[fit]))
            bo = xgb.train({"max_depth": 2, "eta": 0.1, "lambda": 5.0, "subsample": 0.8,
                            "nthread": 1, "seed": rep, "objective": "reg:squarederror"},
                           dm, num_boost_round=60)
            dt = xgb.DMatrix(X[test], feature_names=feature_names())
            dt.set_base_margin(np.log(base[test]))
            res["residual_trees"].append(accuracy(y[test], np.exp(bo.predict(dt)))
                                         ["within_10pct"])
        out[f"fit_{n_fit}"] = {k: float(np.mean(v)) for k, v in res.items()}
    print(f"{len(y)} architectures measured here; shipped predictor as is: "
          f"{out['as_is']['within_10pct']:.0%} within 10%, Kendall "
          f"{out['as_is']['kendall_tau']:.3f}")
    for k, v in out.items():
        if k.startswith("fit_"):
            print(f"  {k[4:]:>3} measured: correction {v['correction']:.0%}, residual trees "
                  f"{v['residual_trees']:.0%} within 10% on the rest (mean of 5 splits)")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--seed", type=int, default=20261201,
                    help="sampling seed (the shipped profile used 0..9)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_host_calibration.json")
    ap.add_argument("--part", choices=("travel", "adapt"), default="travel")
    ap.add_argument("--workspace", type=Path, help="(adapt) where the measurements stay")
    args = ap.parse_args()
    if args.part == "adapt":
        if args.workspace is None:
            ap.error("--part adapt needs --workspace DIR (its measurements are kept there)")
        out = part_adapt(args.n, args.seed, args.workspace)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name("bench_host_adapt.json").write_text(json.dumps(out, indent=2) + "\n")
        return 0
    model = load_predictor("cpu", None)
    spec = load_device("cpu")
    nominal = model.card["reference"]["nominal_ms"]
    from hwnas.workflows.target import target_predictor

    with tempfile.TemporaryDirectory(prefix="hwnas-bench-") as tmp:
        ws = Path(tmp)
        tl = target_predictor("cpu", ws, spec, say=print)
        ref = tl.reference
        run = ProfileRun(spec, ws, args.n, args.seed, default_space())
        rows = [r for r in run.run() if r["status"] != "failed" and r.get("rel_p50")]
        ref_after = host_reference(spec, ws, refresh=True)
        from hwnas.asr import ArchConfig

        bare = np.array([bare_ort_ms(ArchConfig.from_dict(r["arch"]), ws / "bare")
                         for r in rows])
    archs = [ArchConfig.from_dict(r["arch"]) for r in rows]
    ratio = model.predict(archs)
    raw = np.array([r["p50_ms"] for r in rows])
    rel = np.array([r["rel_p50"] for r in rows])
    search = tl.ms(archs)
    out = {"n": len(rows), "seed": args.seed, "reference_ms_here": ref["ms"],
           "spot_check": tl.spot_check, "corrected": tl.corrected,
           "search_vs_raw": accuracy(raw, search),
           # the spot check's labels are ratios x (reference beside the calls / alone)
           "search_vs_normalised": accuracy(
               rel * ref["ms"] * (tl.spot_check or {}).get("context_factor", 1.0), search),
           "search_vs_bare_ort": accuracy(bare, search),
           "raw_vs_bare_ort": accuracy(bare, raw),
           "calibrated_vs_bare_ort": accuracy(bare, ratio * ref["ms"]),
           "reference_ci_here": [ref["ci_lo"], ref["ci_hi"]],
           "reference_ms_here_after": ref_after["ms"], "reference_ms_profile_host": nominal,
           "flagged": sum(r["status"] == "flagged" for r in rows),
           "calibrated_vs_raw": accuracy(raw, ratio * ref["ms"]),
           "calibrated_vs_normalised": accuracy(rel * ref["ms"], ratio * ref["ms"]),
           "uncalibrated_vs_raw": accuracy(raw, ratio * nominal),
           "median_ratio_measured_over_uncalibrated": float(np.median(raw / (ratio * nominal))),
           "host_cpu": rows[0]["provenance"].get("cpu") if rows else None,
           "profile_host_cpu": (model.card.get("host") or {}).get("cpu")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{len(rows)} architectures (seed {args.seed}); reference here {ref['ms']:.3f} ms "
          f"(95% CI {ref['ci_lo']:.3f}-{ref['ci_hi']:.3f}; {ref_after['ms']:.3f} ms after), "
          f"on the profile's host {nominal:.3f} ms")
    print(f"{'prediction vs measurement':<48} {'within 10%':>10} {'median err':>10} "
          f"{'Kendall':>8}")
    from hwnas.workflows.target import describe_correction

    print(f"spot check: {describe_correction(tl.spot_check)}" if tl.corrected
          else "spot check: none (uncorrected)")
    for key, label in (("search_vs_bare_ort", "search (spot-checked) vs a bare ORT loop"),
                       ("raw_vs_bare_ort", "hwnas's measured p50 (raw) vs a bare ORT loop"),
                       ("calibrated_vs_bare_ort", "shipped x ref here vs a bare ORT loop"),
                       ("search_vs_raw", "search (spot-checked) vs measured p50 (raw ms)"),
                       ("search_vs_normalised", "search vs measured ratio x ref here x ctx"),
                       ("calibrated_vs_raw", "shipped x ref here vs raw"),
                       ("calibrated_vs_normalised", "shipped x ref here vs ratio x ref here"),
                       ("uncalibrated_vs_raw", "uncalibrated (profile host's ms) vs raw")):
        m = out[key]
        print(f"{label:<48} {m['within_10pct']:>10.0%} {m['median_ape']:>10.1%} "
              f"{m['kendall_tau']:>8.3f}")
    if tl.corrected:
        print(f"ctx: the reference beside the calls / alone = "
              f"{tl.spot_check.get('context_factor', 1.0):.3f} (the spot check's rows)")
    print("goal: search vs a bare ORT loop >= 90% within 10% on a host of the profile's "
          "kind, Kendall tau >= 0.95")
    return 0


if __name__ == "__main__":
    sys.exit(main())
