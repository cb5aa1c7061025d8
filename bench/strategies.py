"""The search strategies compared on the same work.

    python -m bench.strategies --parts landscape        (~40 min; --seeds 0-9)
    python -m bench.strategies --parts real             (~75 min; --seeds 0-2)
    python -m bench.strategies --parts plot             (the figures from saved results)

landscape  every strategy of `hwnas search --strategy` except Optuna's GP, on
           the search as `hwnas search` runs it (run_search: streaming space,
           predicted p50 <= 2 ms, objectives CER and latency) with the shipped
           cpu latency predictor and, instead of training, the CER stand-in of
           bench/search_efficiency.py (an architecture-only CER predictor
           fitted on 24 real 45-CPU-second runs; a stand-in, not real CER),
           200 trials, seeds 0-9. Reported: trials each needs to reach random
           search's mean 200-trial hypervolume (mean and spread over seeds;
           "not reached" counts as 201), and the hypervolume after 50 and 200.
real       the real main search (`hwnas search --target cpu --streaming
           --max-delay 500 --objectives cer,delay`, real training) for each
           strategy and seed at equal wall time (--minutes, default 2.5, with
           --cer-budget 15s and --population 4: a scaled-down main command;
           the budget is checked between generations), verified on this
           CPU. Reported: architectures evaluated and trained, hypervolume of
           the verified front (measured emission delay, dev CER; reference
           500 ms, CER 1.0), the best verified CER under the limit, and the
           predicted front's hypervolume over time. darts needs supernets:
           it uses the ones in the workspace (--supernet-budget 60s: those
           bench/supernet_search.py trains, 60 CPU-s per family), whose
           training is not in its wall time.
plot       bench/results/strategies_landscape.json and strategies_real.json
           -> docs/strategies_hv.png (hypervolume against trials, mean over
           seeds with its spread) and docs/strategies_real.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library

RESULTS = ROOT / "bench" / "results"
LANDSCAPE = RESULTS / "strategies_landscape.json"
REAL = RESULTS / "strategies_real.json"
STRATEGIES = ("random", "nsga2", "tpe", "evolution", "rl", "rl-hard", "bo", "transfer")
REAL_STRATEGIES = ("random", "nsga2", "evolution", "rl", "bo", "transfer")
MAX_DELAY = 500.0


def _seeds(text: str) -> tuple[int, ...]:
    a, _, b = text.partition("-")
    return tuple(range(int(a), int(b) + 1)) if b else tuple(int(x) for x in text.split(","))


def part_landscape(seeds: tuple[int, ...], names: tuple[str, ...]) -> dict:
    from bench.search_efficiency import TRIALS, run_one, stand_in, trials_to
    from hwnas.predict.latency import load_predictor

    cer_model, tau, n = stand_in()
    print(f"  CER stand-in: {n} real runs, leave-one-out Kendall tau {tau:.3f}", flush=True)
    lat_model = load_predictor("cpu", None)
    old = json.loads(LANDSCAPE.read_text()) if LANDSCAPE.is_file() else {}
    curves: dict[str, dict[str, list]] = old.get("curves", {})
    seconds: dict[str, float] = old.get("seconds", {})
    for name in names:
        for s in seeds:
            if str(s) in curves.get(name, {}):
                continue
            t0 = time.process_time()
            curves.setdefault(name, {})[str(s)] = run_one(name, s, None, cer_model, lat_model)
            seconds[name] = seconds.get(name, 0.0) + time.process_time() - t0
            LANDSCAPE.write_text(json.dumps({"curves": curves, "seconds": seconds}) + "\n")
        print(f"  {name:<10} {len(curves[name])} seeds; hypervolume at {TRIALS}: "
              f"{np.mean([c[-1] for c in curves[name].values()]):.4f}", flush=True)
    target = float(np.mean([curves["random"][str(s)][-1] for s in seeds]))
    table = {}
    for name in names:
        need = [trials_to(curves[name][str(s)], target) or TRIALS + 1 for s in seeds]
        table[name] = {"trials_to_target": need, "mean": float(np.mean(need)),
                       "median": float(np.median(need)),
                       "reached": sum(k <= TRIALS for k in need),
                       "hv_at_50": float(np.mean([curves[name][str(s)][49] for s in seeds])),
                       "hv_at_200": float(np.mean([curves[name][str(s)][-1] for s in seeds])),
                       "cpu_s_per_run": seconds.get(name, 0.0) / max(1, len(curves[name]))}
        print(f"  {name:<10} trials to random's 200-trial hypervolume {target:.4f}: mean "
              f"{table[name]['mean']:.0f}, median {table[name]['median']:.0f}, reached in "
              f"{table[name]['reached']}/{len(seeds)}; hypervolume at 50: "
              f"{table[name]['hv_at_50']:.4f}", flush=True)
    out = {"curves": curves, "seconds": seconds, "target_hv": target, "seeds": list(seeds),
           "stand_in_loo_kendall_tau": tau, "table": table}
    LANDSCAPE.write_text(json.dumps(out) + "\n")
    return table


def part_real(seeds: tuple[int, ...], names: tuple[str, ...], minutes: float,
              workspace: Path) -> dict:
    import optuna

    from hwnas.search.storage import open_storage, study_paths
    from hwnas.visualization.report import Axis, hv_history, hypervolume_2d, load_trials

    delay_axis = Axis("delay_ms", MAX_DELAY, "emission delay", "ms")
    old = json.loads(REAL.read_text()) if REAL.is_file() else {}
    runs: dict = old.get("runs", {})
    env = {**os.environ, "HWNAS_WORKSPACE": str(workspace), "OMP_NUM_THREADS": "1"}
    hwnas = str(Path(sys.executable).with_name("hwnas"))
    for s in seeds:
        for name in names:
            key = f"{name}:{s}"
            if key in runs:
                continue
            study = f"bench-{name}-{s}"
            cmd = [hwnas, "search", "--target", "cpu", "--streaming", "--max-delay",
                   str(MAX_DELAY), "--objectives", "cer,delay", "--trials", "1000",
                   "--budget", f"{minutes * 60:.0f}s", "--cer-budget", "15s", "--population",
                   "4", "--strategy", name, "--supernet-budget", "60s",
                   "--seed", str(s), "--study", study, "--no-export", "--json"]
            t0 = time.time()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{key}: {proc.stderr.strip().splitlines()[-1:]}")
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
            st = optuna.load_study(study_name=study, storage=open_storage(
                f"sqlite:///{study_paths(workspace, study)[0].resolve()}"))
            rows = load_trials(st)
            start = min(t.datetime_start for t in st.trials if t.datetime_start)
            times = [(t.datetime_complete - start).total_seconds()
                     for t in st.trials if t.state.name == "COMPLETE" and "arch" in t.user_attrs]
            verified = [r for r in summary["pareto"] if r.get("verdict") in ("met", "borderline")]
            pts = np.array([(r["delay_ms"], r["cer"]) for r in verified]).reshape(-1, 2)
            runs[key] = {"strategy": name, "seed": s, "wall_s": round(time.time() - t0, 1),
                         "evaluated": len(rows), "trained": sum(r["trained"] for r in rows),
                         "verified": len(verified),
                         "hv_verified": hypervolume_2d(pts, (MAX_DELAY, 1.0)),
                         "best_cer": min((r["cer"] for r in verified), default=None),
                         "hv_predicted": hv_history(rows, (MAX_DELAY, 1.0), delay_axis),
                         "seconds": times}
            print(f"  {key:<12} {runs[key]['evaluated']} evaluated, {runs[key]['trained']} "
                  f"trained, {len(verified)} verified; verified hypervolume "
                  f"{runs[key]['hv_verified']:.2f}, best CER {runs[key]['best_cer']}, "
                  f"{runs[key]['wall_s']:.0f} s", flush=True)
            REAL.write_text(json.dumps({"runs": runs, "minutes": minutes}) + "\n")
    table = {}
    for name in names:
        rs = [runs[f"{name}:{s}"] for s in seeds if f"{name}:{s}" in runs]
        best = [r["best_cer"] for r in rs if r["best_cer"] is not None]
        table[name] = {"evaluated": float(np.mean([r["evaluated"] for r in rs])),
                       "trained": float(np.mean([r["trained"] for r in rs])),
                       "hv_verified": [round(r["hv_verified"], 2) for r in rs],
                       "hv_verified_mean": float(np.mean([r["hv_verified"] for r in rs])),
                       "best_cer": best, "best_cer_mean": float(np.mean(best)) if best else None}
        print(f"  {name:<10} evaluated {table[name]['evaluated']:.1f}, trained "
              f"{table[name]['trained']:.1f}; verified hypervolume {table[name]['hv_verified']} "
              f"(mean {table[name]['hv_verified_mean']:.2f}); best CER {best}", flush=True)
    REAL.write_text(json.dumps({"runs": runs, "minutes": minutes, "table": table}) + "\n")
    return table


def part_plot() -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    if LANDSCAPE.is_file():
        land = json.loads(LANDSCAPE.read_text())
        fig, ax = plt.subplots(figsize=(8, 5))
        for name, cs in land["curves"].items():
            hv = np.array(list(cs.values()))
            x = np.arange(1, hv.shape[1] + 1)
            line, = ax.plot(x, hv.mean(0), label=f"{name} ({len(hv)} seeds)")
            ax.fill_between(x, np.percentile(hv, 25, 0), np.percentile(hv, 75, 0),
                            color=line.get_color(), alpha=0.12)
        if "target_hv" in land:
            ax.axhline(land["target_hv"], c="k", ls=":", lw=1,
                       label="random search after 200 (target)")
        ax.set_xlabel("trials")
        ax.set_ylabel("hypervolume (ms x CER)")
        ax.set_title("Strategies on the CER stand-in landscape (streaming, p50 <= 2 ms): "
                     "mean, band = quartiles", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(ROOT / "docs" / "strategies_hv.png", dpi=110)
        out["landscape"] = str(ROOT / "docs" / "strategies_hv.png")
    if REAL.is_file():
        real = json.loads(REAL.read_text())
        fig, ax = plt.subplots(figsize=(8, 5))
        colors: dict[str, str] = {}
        for r in real["runs"].values():
            line, = ax.step([t / 60 for t in r["seconds"]], r["hv_predicted"], where="post",
                            c=colors.get(r["strategy"]), alpha=0.8,
                            label=None if r["strategy"] in colors else r["strategy"])
            colors[r["strategy"]] = line.get_color()
        ax.set_xlabel("wall minutes")
        ax.set_ylabel("hypervolume (ms x CER), delay predicted")
        ax.set_title(f"The real main search, scaled down ({real['minutes']:g} min each, "
                     "15 CPU-s training): front over time, one line per seed", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(ROOT / "docs" / "strategies_real.png", dpi=110)
        out["real"] = str(ROOT / "docs" / "strategies_real.png")
    for k, v in out.items():
        print(f"  {k}: {v}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="landscape,plot")
    ap.add_argument("--seeds", help="A-B or a list (landscape: 0-9, real: 0-2)")
    ap.add_argument("--strategies", help="comma-separated (default: all but gp for the "
                    "landscape; random, nsga2, evolution, rl, bo, transfer for real)")
    ap.add_argument("--minutes", type=float, default=2.5, help="wall time per real search")
    ap.add_argument("--workspace", default=str(ROOT / "runs" / "bench_strategies"))
    args = ap.parse_args()
    names = tuple(args.strategies.split(",")) if args.strategies else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    for part in args.parts.split(","):
        print(part, flush=True)
        if part == "landscape":
            part_landscape(_seeds(args.seeds or "0-9"), names or STRATEGIES)
        elif part == "real":
            part_real(_seeds(args.seeds or "0-2"), names or REAL_STRATEGIES, args.minutes,
                      Path(args.workspace))
        elif part == "plot":
            part_plot()
        else:
            raise SystemExit(f"unknown part {part!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
