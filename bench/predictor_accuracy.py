"""How accurate, how general and how fast is the latency predictor?

    python -m bench.predictor_accuracy                     # all parts
    python -m bench.predictor_accuracy --parts accuracy    # some of them

Data: the `cpu` profile (ONNX Runtime, 1 thread; shipped under profiles/cpu,
labels = median over its repeats of the normalised p50). The held-out share
is the fixed 20% of architectures chosen by a hash of their id.

design    trees only vs additive cost model only vs cost model + trees, log vs
          relative objective, normalised vs raw labels: held-out accuracy
tune      5-fold cross-validation on the training share over depth x learning
          rate (rounds = 30 / rate); the cheapest setting within 2% of the
          best CV RMSPE is chosen, and its held-out accuracy printed (the
          defaults in hwnas/predict/latency.py come from here)
accuracy  the default predictor: held-out share within +-5 % / +-10 %, RMSPE,
          Kendall tau, per family, FLOPs-only and params-only baselines,
          leave-one-encoder-family-out, and the repeat noise of the labels
          (goals: >= 90 % within 5 %, >= 99 % within 10 %, tau >= 0.95)
adapt     few-shot adaptation cpu -> each --targets device with --n (20)
          measurements chosen for coverage; scored on that device's other
          measured architectures (a random profile of --heldout architectures,
          measured first if missing, seed 1). Random choice of the 20 beside
          it. Goal: rank correlation >= 0.93
speed     predictions per second for 100,000 sampled architectures: feature
          computation, the model on features, end to end. Goal >= 100,000/s

Prints tables and writes every figure as JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.asr import default_space  # noqa: E402
from hwnas.predict.dataset import from_rows  # noqa: E402
from hwnas.predict.evaluate import holdout_report, leave_family_out, split  # noqa: E402
from hwnas.predict.features import feature_matrix  # noqa: E402
from hwnas.predict.latency import CostModel, LatencyPredictor  # noqa: E402
from hwnas.predict.metrics import accuracy, fmt_pct  # noqa: E402
from hwnas.profiling.store import open_profile  # noqa: E402

KEYS = ("n", "within_5pct", "within_10pct", "rmspe", "median_ape", "max_ape", "kendall_tau",
        "spearman_rho")


def line(name: str, m: dict) -> str:
    return (f"  {name:<34} n={m['n']:<4} ±5% {fmt_pct(m['within_5pct']):>6}  "
            f"±10% {fmt_pct(m['within_10pct']):>6}  RMSPE {fmt_pct(m['rmspe']):>6}  "
            f"median {fmt_pct(m['median_ape']):>5}  worst {fmt_pct(m['max_ape']):>6}  "
            f"tau {m['kendall_tau']:.3f}  rho {m['spearman_rho']:.3f}")


def short(m: dict) -> dict:
    return {k: m[k] for k in KEYS}


def cpu_data(label: str = "auto"):
    return from_rows(open_profile("cpu", ROOT).rows(), label)


def part_design() -> dict:
    out = {}
    print("design (held-out share of the cpu profile)")
    for label in ("norm", "raw"):
        data = cpu_data(label)
        train, test = split(data)
        variants = {
            "cost model + trees, log": dict(objective="log"),
            "trees only, log": dict(objective="log", cost_model=False),
            "trees only, relative": dict(objective="relative", cost_model=False),
        }
        for name, kw in variants.items():
            m = LatencyPredictor.fit(train.archs, train.y, **kw)
            r = accuracy(test.y, m.predict(test.archs))
            out[f"{label}: {name}"] = short(r)
            print(line(f"{label}: {name}", r))
        X = feature_matrix(train.archs)
        cm = CostModel.fit(X, train.y)
        r = accuracy(test.y, cm.predict(feature_matrix(test.archs)))
        out[f"{label}: cost model only"] = short(r)
        print(line(f"{label}: cost model only", r))
    return out


def part_tune(folds: int = 5) -> dict:
    data = cpu_data()
    train, test = split(data)
    rng = np.random.default_rng(0)
    fold = rng.integers(0, folds, len(train))
    grid = [(d, e) for d in (3, 4, 6, 8) for e in (0.02, 0.05, 0.1)]
    results = []
    print(f"tune ({folds}-fold CV on the {len(train)}-architecture training share)")
    for depth, eta in grid:
        rounds = int(30 / eta)
        preds = np.zeros(len(train))
        for k in range(folds):
            tr, va = train.subset(fold != k), train.subset(fold == k)
            m = LatencyPredictor.fit(tr.archs, tr.y, params={"max_depth": depth, "eta": eta},
                                     rounds=rounds)
            preds[fold == k] = m.predict(va.archs)
        r = accuracy(train.y, preds)
        results.append({"max_depth": depth, "eta": eta, "rounds": rounds, **short(r)})
        print(f"  depth {depth} eta {eta:<5} rounds {rounds:<5} CV RMSPE "
              f"{fmt_pct(r['rmspe'])}  ±5% {fmt_pct(r['within_5pct'])}  "
              f"±10% {fmt_pct(r['within_10pct'])}")
    # the cheapest model (rounds x depth = prediction cost) within 2% of the best
    # CV RMSPE: differences smaller than that are noise here, speed is not
    top = min(r["rmspe"] for r in results)
    best = min((r for r in results if r["rmspe"] <= top * 1.02),
               key=lambda r: (r["rounds"] * r["max_depth"], r["rmspe"]))
    m = LatencyPredictor.fit(train.archs, train.y,
                             params={"max_depth": best["max_depth"], "eta": best["eta"]},
                             rounds=best["rounds"])
    h = accuracy(test.y, m.predict(test.archs))
    print(f"  chosen (cheapest within 2% of the best CV RMSPE, {top:.2%}): depth "
          f"{best['max_depth']} eta {best['eta']} rounds {best['rounds']}")
    print(line("its held-out accuracy", h))
    return {"grid": results, "best": best, "best_heldout": short(h)}


def part_accuracy() -> dict:
    data = cpu_data()

    def fit(d):
        return LatencyPredictor.fit(d.archs, d.y)

    model, rep = holdout_report(data, fit)
    print(f"accuracy ({len(data)} architectures, label {data.label}; "
          f"{rep['train_size']} trained on, {rep['test_size']} held out)")
    print(line("predictor", rep["heldout"]))
    print(line("FLOPs-only baseline", rep["baselines"]["flops_only"]))
    print(line("params-only baseline", rep["baselines"]["params_only"]))
    print(" per family (held out):")
    for f, m in rep["per_family"].items():
        print(line(f, m))
    lofo = leave_family_out(data, fit)
    print(" leave-one-encoder-family-out:")
    for f, m in lofo.items():
        print(line(f, m))
    noise = rep["repeat_noise"]
    out = {"heldout": short(rep["heldout"]),
           "baselines": {k: short(v) for k, v in rep["baselines"].items()},
           "per_family": {k: short(v) for k, v in rep["per_family"].items()},
           "leave_family_out": {k: short(v) for k, v in lofo.items()}, "repeat_noise": noise}
    if noise:
        print(f" repeat noise: two measurements of the same architecture are a median "
              f"{noise['median']:.1%} apart; {noise['within_5pct']:.0%} within 5%, "
              f"{noise['within_10pct']:.0%} within 10% ({noise['archs']} architectures)")
        # the same predictor scored against each single measurement instead of the median
        rows = open_profile("cpu", ROOT).rows()
        test_ids = set(split(data)[1].ids)
        by = {}
        for r in rows:
            if r["status"] == "ok" and r["arch_id"] in test_ids and r.get("norm_p50_ms"):
                by.setdefault(r["arch_id"], []).append(r["norm_p50_ms"])
        ids = sorted(by)
        archs = {a.id: a for a in data.archs}
        pred = dict(zip(ids, model.predict([archs[i] for i in ids])))
        single = [(v, pred[i]) for i in ids for v in by[i]]
        r = accuracy([s[0] for s in single], [s[1] for s in single])
        print(line("vs single measurements", r))
        out["vs_single_measurements"] = short(r)
    return out


def _profile(device: str, n: int, seed: int, archs=None) -> None:
    from hwnas.adapters.devicefile import load_device
    from hwnas.profiling.profiler import ProfileRun

    spec = load_device(device, ROOT)
    run = ProfileRun(spec, ROOT, n, seed, default_space(), archs=archs)
    t0, done = time.time(), 0
    for _ in run.run():
        done += 1
        if done % 10 == 0:
            print(f"    {device}: {done} measured ({time.time() - t0:.0f} s)", flush=True)


def part_adapt(targets: list[str], n: int, heldout: int) -> dict:
    from hwnas.predict.adapt import fit_correction, select_for_coverage

    data = cpu_data()
    source = LatencyPredictor.fit(data.archs, data.y)
    out = {}
    for dev in targets:
        print(f"adapt cpu -> {dev}: held-out profile of {heldout} (seed 1), "
              f"{n} chosen for coverage")
        _profile(dev, heldout, 1)
        pool = default_space().sample_distinct(2000, 0)
        chosen = select_for_coverage(pool, source.predict(pool), n)
        _profile(dev, n, 0, archs=chosen)
        d2 = from_rows(open_profile(dev, ROOT).rows())
        ids = {a.id for a in chosen}
        pick = np.array([i in ids for i in d2.ids])
        held = np.array([i in {a.id for a in default_space().sample_distinct(heldout, 1)}
                         for i in d2.ids]) & ~pick
        fit, test = d2.subset(pick), d2.subset(held)
        Xf, Xt = feature_matrix(fit.archs), feature_matrix(test.archs)
        res = {"label": d2.label, "fit": len(fit), "test": len(test)}
        base_t = source.predict_features(Xt)
        r0 = accuracy(test.y, base_t)
        print(line("cpu predictor as is", r0))
        res["unadapted"] = short(r0)
        for method in ("auto", "scale", "affine", "ridge"):
            c = fit_correction(Xf, source.predict_features(Xf), fit.y, method)
            from hwnas.predict.adapt import apply_correction

            r = accuracy(test.y, apply_correction(c, Xt, base_t))
            name = f"adapted, {method}" + (f" -> {c['method']}" if method == "auto" else "")
            print(line(name, r))
            res[f"adapted_{method}"] = {**short(r), "method": c["method"]}
        # the same number of random architectures (from the held-out profile,
        # scored on the rest), 10 draws
        rng = np.random.default_rng(0)
        rand = []
        for _ in range(10):
            idx = rng.permutation(len(test))
            a, b = test.subset(np.isin(np.arange(len(test)), idx[:n])), \
                test.subset(np.isin(np.arange(len(test)), idx[n:]))
            Xa, Xb = feature_matrix(a.archs), feature_matrix(b.archs)
            c = fit_correction(Xa, source.predict_features(Xa), a.y)
            rand.append(accuracy(b.y, apply_correction(c, Xb, source.predict_features(Xb))))
        mean = {k: float(np.mean([r[k] for r in rand])) for k in KEYS}
        print(line(f"random {n} (mean of 10 draws)", mean))
        res["random_choice_mean"] = mean
        out[dev] = res
    return out


def part_speed(n: int = 100_000) -> dict:
    data = cpu_data()
    model = LatencyPredictor.fit(data.archs, data.y)
    archs = default_space().sample_distinct(n, 123)
    t0 = time.perf_counter()
    X = feature_matrix(archs)
    t1 = time.perf_counter()
    model.predict_features(X)
    t2 = time.perf_counter()
    model.predict(archs)
    t3 = time.perf_counter()
    out = {"n": n, "features_per_s": n / (t1 - t0), "model_per_s": n / (t2 - t1),
           "end_to_end_per_s": n / (t3 - t2)}
    print(f"speed ({n} architectures, 1 thread): features {out['features_per_s']:,.0f}/s, "
          f"model on features {out['model_per_s']:,.0f}/s, end to end "
          f"{out['end_to_end_per_s']:,.0f}/s")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="design,tune,accuracy,adapt,speed")
    ap.add_argument("--targets", default="cpu-torch,cpu-2threads",
                    help="devices for the adaptation part")
    ap.add_argument("--n", type=int, default=20, help="adaptation measurements")
    ap.add_argument("--heldout", type=int, default=100,
                    help="measured architectures per target to score the adaptation on")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_predictor.json")
    args = ap.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    known = {"design", "tune", "accuracy", "adapt", "speed"}
    if set(parts) - known:
        ap.error(f"unknown part(s) {sorted(set(parts) - known)}; known: {sorted(known)}")
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for p in parts:
        t0 = time.time()
        if p == "design":
            results[p] = part_design()
        elif p == "tune":
            results[p] = part_tune()
        elif p == "accuracy":
            results[p] = part_accuracy()
        elif p == "adapt":
            results[p] = part_adapt([t for t in args.targets.split(",") if t], args.n,
                                    args.heldout)
        elif p == "speed":
            results[p] = part_speed()
        print(f"  ({p}: {time.time() - t0:.0f} s)\n", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=float))
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
