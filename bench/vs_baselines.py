"""Does the search beat the hand-designed presets on this CPU?

    python bench/vs_baselines.py --workspace WS --study main      (~8 min)

WS/--study: the workspace and study of the README's main command
    hwnas search --target cpu --streaming --max-latency 2 --trials 16 --cer-budget 40s,2m \
        --study main

Compares the architectures that search returned (its feasible Pareto set,
trained as the search trained them) with the hand-designed presets that can
stream (per-chunk latency exists only for them), trained here for the
search's longest rung (same corpus, seed and CPU-time budget). Every
architecture's per-chunk p50 is measured in this one run on this CPU
(probe-normalised, like the search's own verification) and its CER taken on
en/test-clean. The best preset is the lowest-CER one meeting the same
latency constraint. Reported:
  selected   the search's pick (lowest CER meeting the constraint)
  iso-CER    the fastest returned architecture whose CER is <= the best preset's
Goal: >= 20% lower per-chunk latency than the best preset at equal or lower CER.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", required=True, help="workspace of the search")
    ap.add_argument("--study", default="main")
    args = ap.parse_args()

    import optuna
    import torch

    from hwnas.adapters.devicefile import load_device
    from hwnas.asr import ArchConfig, default_space, preset
    from hwnas.asr.presets import preset_names
    from hwnas.data.tokens import CharTokenizer
    from hwnas.predict.dataset import from_rows
    from hwnas.profiling.profiler import ProfileRun
    from hwnas.search.storage import study_paths, trial_dir
    from hwnas.search.study import pareto
    from hwnas.training.prepare import builtin_features
    from hwnas.training.trainer import TrainConfig, evaluate, load_run, train

    torch.set_num_threads(1)
    ws = Path(args.workspace).resolve()
    db, study_dir = study_paths(ws, args.study)
    storage = f"sqlite:///{db}"
    study = optuna.load_study(study_name=args.study, storage=storage)
    max_lat = study.user_attrs["constraints"]["max_latency_ms"]
    front = pareto(study)
    budget = max(r["budget_s"] for row in front for r in row["rungs"])
    print(f"study {args.study}: {len(front)} feasible Pareto architectures, constraint "
          f"{max_lat} ms, longest rung {budget:g} CPU s")

    tok = CharTokenizer.for_languages(["en"])
    rows = []
    for r in front:
        model, arch, _, norm = load_run(trial_dir(study_dir, r["run_trial"], r["arch_id"]))
        test = builtin_features(ws, ["en"], "small", 0, arch.frontend, arch.n_filters)
        cer = evaluate(model, arch, test[("en", "test-clean")], tok, norm)["cer"]
        rows.append({"name": f"search #{r['trial']}", "arch": ArchConfig.from_dict(r["arch"]),
                     "cer": cer, "budget_s": r["rungs"][-1]["budget_s"], "kind": "search"})
    for name in preset_names():
        arch = preset(name)
        if not arch.streaming:
            print(f"  {name}: full-context (no per-chunk latency); not comparable")
            continue
        sets = builtin_features(ws, ["en"], "small", 0, arch.frontend, arch.n_filters)
        res = train(arch, sets[("en", "train")], sets[("en", "dev")], tok,
                    TrainConfig(cpu_seconds=budget, seed=0, eval_every=10**9))
        cer = evaluate(res.model, res.model.arch, sets[("en", "test-clean")], tok,
                       res.norm)["cer"]
        print(f"  {name}: {res.steps} steps in {budget:g} CPU s, test-clean CER {cer:.3f}",
              flush=True)
        rows.append({"name": name, "arch": arch, "cer": cer, "budget_s": budget,
                     "kind": "preset"})

    bench_ws = ROOT / "runs" / "bench_vs_baselines"
    spec = load_device("cpu", ws)
    run = ProfileRun(spec, bench_ws, len(rows), 0, default_space(),
                     archs=[r["arch"] for r in rows])
    for _ in run.run():
        pass
    data = from_rows(run.store().rows(), "norm")
    lat = dict(zip(data.ids, data.y))
    for r in rows:
        r["p50_ms"] = lat.get(r["arch"].id)
    print(f"\n{'':<22}{'test-clean CER':>15}{'p50 ms/chunk':>14}{'train CPU s':>12}")
    for r in rows:
        p50 = f"{r['p50_ms']:.3f}" if r["p50_ms"] is not None else "flagged"
        print(f"{r['name']:<22}{r['cer']:>15.3f}{p50:>14}{r['budget_s']:>12g}")
    presets = [r for r in rows if r["kind"] == "preset" and r["p50_ms"] is not None
               and r["p50_ms"] <= max_lat]
    found = [r for r in rows if r["kind"] == "search" and r["p50_ms"] is not None]
    out = {"study": args.study, "max_latency_ms": max_lat, "budget_s": budget,
           "rows": [{**r, "arch": r["arch"].to_dict()} for r in rows]}
    if not presets:
        print(f"no streaming preset meets {max_lat} ms as measured: nothing to compare")
    else:
        best = min(presets, key=lambda r: r["cer"])
        selected = min(found, key=lambda r: r["cer"])
        iso = [r for r in found if r["cer"] <= best["cer"]]
        pick = min(iso, key=lambda r: r["p50_ms"]) if iso else None
        out["best_preset"] = best["name"]
        print(f"\nbest preset under {max_lat} ms: {best['name']} (CER {best['cer']:.3f}, "
              f"{best['p50_ms']:.3f} ms)")
        for label, r in (("selected", selected), ("iso-CER", pick)):
            if r is None:
                print(f"{label}: no returned architecture reaches the preset's CER")
                continue
            gain = 1 - r["p50_ms"] / best["p50_ms"]
            ok = r["cer"] <= best["cer"] and gain >= 0.2
            out[label] = {"name": r["name"], "cer": r["cer"], "p50_ms": r["p50_ms"],
                          "latency_reduction": gain, "goal_met": ok}
            print(f"{label}: {r['name']} CER {r['cer']:.3f} vs {best['cer']:.3f}, "
                  f"{r['p50_ms']:.3f} ms vs {best['p50_ms']:.3f} ms: {gain:.0%} lower latency"
                  f" -> goal (>= 20% lower at <= CER) {'MET' if ok else 'MISSED'}")
    (ROOT / "runs").mkdir(exist_ok=True)
    (ROOT / "runs" / "bench_vs_baselines.json").write_text(json.dumps(out, indent=2,
                                                                      default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
