"""How trustworthy and how fast is hardware-in-the-loop measurement here?

    python -m bench.measurement                 # all parts (~15 min)
    python -m bench.measurement --parts a,b     # some of them

(a) repeatability: CV of the p50 over 5 repeated measurements (fresh session
    each time, interleaved) of the same 10 sampled architectures, ONNX Runtime,
    1 thread, the shipped `cpu` device plan. Goal <= 2%. Beside it, how well
    each measurement says it knows its p50 -- the relative half-width of the
    95% interval stored with it -- and whether that is honest: how often a
    repeat's p50 falls inside the previous measurement's interval (raw, and
    for the ratio to the reference probe). Even for a perfect 95% interval of
    the same width this is below 95% (the repeat has its own error: about 83%
    for two equal, independent estimates), far below it when the interval
    ignores what varies between measurements.
(b) harness overhead: the adapter's mean per-call time against a bare
    ``session.run`` loop on the same model and inputs. Goal <= 1%.
(c) LiteRT agreement: the `cpu-litert` adapter's p50 against the median of
    `litert-benchmark` (shipped with ai-edge-litert) on the same .tflite.
    Goal within 5%.
(d) profiling throughput: `hwnas profile --device cpu` end to end (sample,
    FLOPs, export + parity check, measure, store), architectures per hour.
    Goal >= 300.
(h) host steadiness (context for (a)): a fixed 128x128 NumPy matmul loop,
    iterations per 0.5 s over 10 s -- how much the machine's own speed moves.
Prints a table and writes the figures as JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.adapters.devicefile import load_device  # noqa: E402
from hwnas.adapters.runtimes import ort_callables, ort_session  # noqa: E402
from hwnas.asr import default_space  # noqa: E402
from hwnas.export import export  # noqa: E402
from hwnas.profiling.measure import plan_for  # noqa: E402

torch.set_num_threads(1)


def archs(n: int, seed: int) -> list:
    return default_space().sample_distinct(n, seed)


def part_a(work: Path, n: int, repeats: int, seed: int) -> dict:
    spec = load_device("cpu")
    adapter = spec.make()
    chosen = archs(n, seed)
    arts = {a.id: export(a, "onnx", work, check=False) for a in chosen}
    p50s: dict[str, list[float]] = {a.id: [] for a in chosen}
    rels: dict[str, list[float]] = {a.id: [] for a in chosen}
    cis: dict[str, list[list[float]]] = {a.id: [] for a in chosen}
    rel_cis: dict[str, list[list[float]]] = {a.id: [] for a in chosen}
    for r in range(repeats):
        for a in chosen if r % 2 == 0 else reversed(chosen):   # interleaved, both orders
            h = adapter.prepare(arts[a.id])
            m = adapter.measure(h, plan_for(a, spec.plan), arch_id=a.id, graph=arts[a.id].graph,
                                model_bytes=arts[a.id].size_bytes)
            p50s[a.id].append(m.latency["p50_ms"])
            rels[a.id].append(m.latency.get("rel_p50") or float("nan"))
            cis[a.id].append([m.latency["p50_ci_lo"], m.latency["p50_ci_hi"]])
            rel_cis[a.id].append([m.latency.get("rel_p50_ci_lo", float("nan")),
                                  m.latency.get("rel_p50_ci_hi", float("nan"))])
    cv = {k: float(np.std(v, ddof=1) / np.mean(v)) for k, v in p50s.items()}
    cvn = {k: float(np.std(v, ddof=1) / np.mean(v)) for k, v in rels.items()}
    def halfwidths(est: dict, ci: dict) -> list[float]:
        return [(hi - lo) / 2 / e for k in est for e, (lo, hi) in zip(est[k], ci[k])]

    def inside(est: dict, ci: dict) -> float:
        hits = [lo <= est[k][i + 1] <= hi for k in est
                for i, (lo, hi) in enumerate(ci[k][:-1])]
        return float(np.mean(hits))

    hw, hw_rel = halfwidths(p50s, cis), halfwidths(rels, rel_cis)
    return {"archs": n, "repeats": repeats, "p50_ms": p50s, "rel_p50": rels,
            "p50_ci": cis, "rel_p50_ci": rel_cis,
            "ci_halfwidth_median": float(np.median(hw)), "ci_halfwidth_max": float(max(hw)),
            "rel_ci_halfwidth_median": float(np.median(hw_rel)),
            "rel_ci_halfwidth_max": float(max(hw_rel)),
            "repeat_inside_previous_ci": inside(p50s, cis),
            "rel_repeat_inside_previous_ci": inside(rels, rel_cis),
            "cv_per_arch": cv, "cv_mean": float(np.mean(list(cv.values()))),
            "cv_median": float(np.median(list(cv.values()))), "cv_max": float(max(cv.values())),
            "norm_cv_per_arch": cvn, "norm_cv_mean": float(np.mean(list(cvn.values()))),
            "norm_cv_median": float(np.median(list(cvn.values()))),
            "norm_cv_max": float(max(cvn.values()))}


def part_b(work: Path, seed: int, rounds: int = 15) -> dict:
    from hwnas.adapters import Plan

    spec = load_device("cpu")
    adapter = spec.make()
    out = {}
    for a in archs(3, seed + 1):
        art = export(a, "onnx", work, check=False)
        plan = plan_for(a, Plan(warmup_runs=20, min_runs=300, min_seconds=1.0, retries=0))
        sess = ort_session(art.path, 1)
        run, feed, reset = ort_callables(sess, art.inputs, art.outputs)
        per = plan.calls_per_stream
        ratios, bare_ms, ours_ms = [], [], []
        for _ in range(rounds):
            if reset:
                reset()
            for _ in range(plan.warmup_runs):
                o = run()
                if feed:
                    feed(o)
            # bare loop: same calls, same state passing, one clock read at each end
            if reset:
                reset()
            k = 300
            t0 = time.perf_counter()
            for i in range(k):
                if reset and per and i and i % per == 0:
                    reset()
                o = run()
                if feed:
                    feed(o)
            bare = (time.perf_counter() - t0) / k * 1e3
            h = adapter.prepare(art)
            m = adapter.measure(h, plan, arch_id=a.id, graph=art.graph, model_bytes=1)
            ratios.append(m.latency["mean_ms"] / bare - 1.0)
            bare_ms.append(bare)
            ours_ms.append(m.latency["mean_ms"])
        out[a.id] = {"bare_mean_ms": float(np.median(bare_ms)),
                     "harness_mean_ms": float(np.median(ours_ms)),
                     "overhead": float(np.median(ratios))}
    return {"models": out, "overhead_median": float(np.median([v["overhead"]
                                                                for v in out.values()]))}


def part_c(work: Path, seed: int, n: int = 8) -> dict:
    tool = shutil.which("litert-benchmark") or str(Path(sys.executable).parent /
                                                    "litert-benchmark")
    spec = load_device("cpu-litert")
    adapter = spec.make()
    out = {}
    for a in archs(n, seed + 2):
        try:
            art = export(a, "tflite", work, check=False)
        except Exception as e:  # noqa: BLE001 - report and go on
            out[a.id] = {"error": str(e)}
            continue
        ours, theirs = [], []
        for _ in range(5):   # alternate the two, so both see the same host speed swings
            h = adapter.prepare(art)
            m = adapter.measure(h, plan_for(a, spec.plan), arch_id=a.id, graph=art.graph,
                                model_bytes=1)
            ours.append(m.latency["p50_ms"])
            res = work / f"{a.id}.litert.json"
            runs = max(50, int(1000 / max(m.latency["p50_ms"], 0.1)))   # >= ~1 s, like ours
            proc = subprocess.run([tool, "--model", art.path, "--num_runs", str(runs),
                                   "--warmup_runs", "10", "--num_threads", "1", "--result_json",
                                   str(res)], capture_output=True, text=True,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if proc.returncode != 0:
                last = [ln for ln in proc.stderr.splitlines() if ln.strip()][-1:]
                out[a.id] = {"encoder": a.encoder, "error": "litert-benchmark: " +
                             (last[0].strip() if last else f"exit {proc.returncode}")}
                break
            theirs.append(json.loads(res.read_text())["latency"]["median_ms"])
        if a.id in out:
            continue
        o, t = float(np.median(ours)), float(np.median(theirs))
        out[a.id] = {"encoder": a.encoder, "streaming": a.streaming, "hwnas_p50_ms": o,
                     "litert_benchmark_median_ms": t, "difference": o / t - 1.0}
    diffs = [abs(v["difference"]) for v in out.values() if "difference" in v]
    return {"models": out, "abs_difference_median": float(np.median(diffs)),
            "abs_difference_max": float(max(diffs))}


def part_d(work: Path, n: int, seed: int) -> dict:
    from hwnas.profiling.profiler import ProfileRun

    spec = load_device("cpu")
    run = ProfileRun(spec, work / "ws", n, seed + 3, default_space())
    t0 = time.perf_counter()
    rows = list(run.run())
    elapsed = time.perf_counter() - t0
    status = {s: sum(r["status"] == s for r in rows) for s in ("ok", "flagged", "failed")}
    return {"archs": n, "seconds": elapsed, "archs_per_hour": n / elapsed * 3600,
            "status": status,
            "export_s_median": statistics.median(r.get("export_s") or 0 for r in rows),
            "measure_s_median": statistics.median(r.get("measure_s") or 0 for r in rows)}


def part_h(windows: int = 20, window_s: float = 0.5) -> dict:
    a = np.random.default_rng(0).random((128, 128), dtype=np.float32)
    counts = []
    for _ in range(windows):
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < window_s:
            for _ in range(100):
                a @ a
            n += 100
        counts.append(n)
    return {"window_s": window_s, "iterations": counts, "min": min(counts), "max": max(counts),
            "cv": float(np.std(counts) / np.mean(counts))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="h,a,b,c,d")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--archs", type=int, default=10, help="(a) architectures")
    ap.add_argument("--repeats", type=int, default=5, help="(a) repeated measurements")
    ap.add_argument("--throughput-archs", type=int, default=30, help="(d) architectures")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_measurement.json")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    results: dict = json.loads(args.out.read_text()) if args.out.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-") as tmp:
        work = Path(tmp)
        steps = {"h": part_h,
                 "a": lambda: part_a(work, args.archs, args.repeats, args.seed),
                 "b": lambda: part_b(work, args.seed),
                 "c": lambda: part_c(work, args.seed),
                 "d": lambda: part_d(work, args.throughput_archs, args.seed)}
        for key, step in steps.items():
            if key in parts:
                results[key] = step()
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2) + "\n")  # keep finished parts
    print(f"{'measure':<58} {'figure':>12}  goal")
    if "h" in results:
        h = results["h"]
        print(f"{'(h) host: matmul iterations per 0.5 s, CV (min..max)':<58} {h['cv']:>11.1%}  "
              f"({h['min']:,}..{h['max']:,})")
    if "a" in results:
        a = results["a"]
        label = f"(a) CV of p50 over {a['repeats']} repeats, mean of {a['archs']} archs"
        print(f"{label:<58} {a['cv_mean']:>11.2%}  <= 2%")
        print(f"{'    median / worst architecture':<58} {a['cv_median']:>5.2%} / {a['cv_max']:.2%}")
        if "norm_cv_mean" in a:
            print(f"{'    normalised by the reference probe (norm_p50_ms), mean':<58} "
                  f"{a['norm_cv_mean']:>11.2%}  <= 2%")
            print(f"{'    median / worst architecture':<58} {a['norm_cv_median']:>5.2%} / "
                  f"{a['norm_cv_max']:.2%}")
        if "ci_halfwidth_median" in a:
            print(f"{'    95% CI half-width of p50, median (worst)':<58} "
                  f"{a['ci_halfwidth_median']:>11.2%}  ({a['ci_halfwidth_max']:.2%})")
            print(f"{'    ... of the ratio to the reference, median (worst)':<58} "
                  f"{a['rel_ci_halfwidth_median']:>11.2%}  ({a['rel_ci_halfwidth_max']:.2%})")
            print(f"{'    repeat p50 inside the previous interval: raw':<58} "
                  f"{a['repeat_inside_previous_ci']:>11.0%}  ~83% if honest")
            print(f"{'    ... ratio to the reference':<58} "
                  f"{a['rel_repeat_inside_previous_ci']:>11.0%}  ~83% if honest")
    if "b" in results:
        print(f"{'(b) harness overhead vs bare ORT loop (median of 3 models)':<58} "
              f"{results['b']['overhead_median']:>+11.2%}  <= 1%")
        for k, v in results["b"]["models"].items():
            print(f"    {k}: bare {v['bare_mean_ms']:.3f} ms, harness {v['harness_mean_ms']:.3f} ms"
                  f" ({v['overhead']:+.2%})")
    if "c" in results:
        c = results["c"]
        print(f"{'(c) LiteRT p50 vs litert-benchmark median, |diff| median':<58} "
              f"{c['abs_difference_median']:>11.2%}  <= 5%")
        for k, v in c["models"].items():
            if "difference" in v:
                print(f"    {k} {v['encoder']:<12} {v['hwnas_p50_ms']:8.3f} ms vs "
                      f"{v['litert_benchmark_median_ms']:8.3f} ms ({v['difference']:+.2%})")
            else:
                print(f"    {k}: {v['error']}")
    if "d" in results:
        d = results["d"]
        print(f"{'(d) profiling throughput, archs/hour (' + str(d['archs']) + ' archs)':<58} "
              f"{d['archs_per_hour']:>12.0f}  >= 300")
    return 0


if __name__ == "__main__":
    sys.exit(main())
