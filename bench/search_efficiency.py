"""How quickly does each sampler find a good (CER, latency) front?

    python -m bench.search_efficiency --parts collect     (~24 x 45 CPU-s; resumable)
    python -m bench.search_efficiency --parts compare     (~1 min)
    python -m bench.search_efficiency --parts compare --seeds 10-19

collect  trains --n architectures sampled from the streaming space (seed 11)
         for 45 CPU-seconds each on the built-in English corpus (small, seed 0)
         and appends (architecture, dev CER) to
         bench/results/search_efficiency_runs.jsonl (committed; a rerun skips
         what is there). These real runs fit the CER stand-in.
compare  the search (hwnas.search.study.run_search, as `hwnas search` runs it)
         with the shipped cpu latency predictor and, instead of training, an
         architecture-only CER predictor fitted on the collected runs (its
         leave-one-out Kendall tau is printed: it is a stand-in, not a claim
         about real CER). Constraint: streaming, predicted p50 <= 2 ms.
         Random search, TPE and NSGA-II (the default population for 200
         trials, 8; and 16 and 50), seeds 0-4 (--seeds), 200 trials each.
         Hypervolume of the feasible (latency, CER) front, reference (2 ms,
         CER 1.0). Reported: for each sampler, the trials it needs to reach
         the hypervolume random search reaches after 200 trials (mean over
         the seeds; "not reached" counts as 201). Goal for NSGA-II: <= 70.
         The default population was chosen on seeds 10-19, not on 0-4.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.asr import ArchConfig, default_space  # noqa: E402

RUNS = ROOT / "bench" / "results" / "search_efficiency_runs.jsonl"
MAX_LATENCY = 2.0
TRIALS = 200


def streaming_space():
    return default_space().with_choices({"streaming": [True]})


def part_collect(n: int, seconds: float) -> dict:
    import torch

    from hwnas.asr.train import TrainConfig, train
    from hwnas.data.tokens import CharTokenizer
    from hwnas.training.prepare import builtin_features

    torch.set_num_threads(1)
    RUNS.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(x)["arch_id"] for x in RUNS.read_text().splitlines()} \
        if RUNS.is_file() else set()
    tok = CharTokenizer.for_languages(["en"])
    archs = streaming_space().sample_distinct(n, 11)
    for i, arch in enumerate(archs):
        if arch.id in done:
            continue
        sets = builtin_features(ROOT, ["en"], "small", 0, arch.frontend, arch.n_filters)
        t0 = time.time()
        res = train(arch, sets[("en", "train")], sets[("en", "dev")], tok,
                    TrainConfig(cpu_seconds=seconds, seed=0, eval_every=10**9))
        rec = {"arch_id": arch.id, "arch": arch.to_dict(), "final_cer": res.dev["cer"],
               "steps": res.steps, "cpu_seconds": res.cpu_seconds,
               "wall_s": round(time.time() - t0, 1)}
        with RUNS.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(f"  [{i + 1}/{n}] {arch.id} {arch.encoder}/{arch.decoder} x{arch.num_layers} "
              f"d{arch.d_model}: {res.steps} steps, dev CER {rec['final_cer']:.3f}", flush=True)
    return {"runs": len(RUNS.read_text().splitlines())}


def stand_in():
    """(CER predictor fitted on every collected run, its leave-one-out Kendall tau)."""
    from hwnas.predict.cer import CERPredictor
    from hwnas.predict.metrics import kendall_tau

    recs = [json.loads(x) for x in RUNS.read_text().splitlines()]
    loo = []
    for i in range(len(recs)):
        p = CERPredictor.fit(recs[:i] + recs[i + 1:], curve=False, max_depth=2)
        loo.append(float(p.predict([ArchConfig.from_dict(recs[i]["arch"])])[0]))
    tau = kendall_tau([r["final_cer"] for r in recs], loo)
    return CERPredictor.fit(recs, curve=False, max_depth=2), tau, len(recs)


def run_one(sampler: str, seed: int, population: int | None, cer_model, lat_model) -> list:
    from hwnas.search.study import SearchConfig, run_search
    from hwnas.visualization.report import hv_history, load_trials

    cache: dict[str, float] = {}

    def runner(arch, budget, state):
        if arch.id not in cache:
            cache[arch.id] = float(cer_model.predict([arch])[0])
        return cache[arch.id], None

    cfg = SearchConfig(target="cpu", max_latency_ms=MAX_LATENCY, trials=TRIALS, rungs=(1.0,),
                       sampler=sampler, seed=seed, population_size=population,
                       study=f"{sampler}-{seed}", storage=None, space=streaming_space())
    study = run_search(cfg, lambda a: float(lat_model.predict([a])[0]), runner)
    return hv_history(load_trials(study), (MAX_LATENCY, 1.0))


def trials_to(hv: list, target: float) -> int | None:
    for i, h in enumerate(hv):
        if h >= target - 1e-12:
            return i + 1
    return None


def part_compare(seeds: tuple[int, ...]) -> dict:
    from hwnas.predict.latency import load_predictor

    cer_model, tau, n = stand_in()
    print(f"  CER stand-in: XGBoost on the architecture, {n} real 45-CPU-s runs, "
          f"leave-one-out Kendall tau {tau:.3f}")
    lat_model = load_predictor("cpu", None)
    configs = [("random", "random", None), ("tpe", "tpe", None),
               ("nsga2 (default, pop 8)", "nsga2", None), ("nsga2 (pop 16)", "nsga2", 16),
               ("nsga2 (pop 50)", "nsga2", 50)]
    curves: dict[str, list] = {}
    for label, sampler, pop in configs:
        t0 = time.time()
        curves[label] = [run_one(sampler, s, pop, cer_model, lat_model) for s in seeds]
        print(f"  {label:<24} {len(seeds)} x {TRIALS} trials in {time.time() - t0:.0f} s; "
              f"hypervolume at 200: {np.mean([c[-1] for c in curves[label]]):.4f}", flush=True)
    target = float(np.mean([c[-1] for c in curves["random"]]))
    out = {"stand_in_loo_kendall_tau": tau, "stand_in_runs": n, "target_hv": target,
           "seeds": list(seeds), "samplers": {}}
    print(f"  target: random search's mean hypervolume after {TRIALS} trials = {target:.4f}")
    for label, cs in curves.items():
        need = [trials_to(c, target) for c in cs]
        reached = [k for k in need if k is not None]
        mean = float(np.mean([k if k is not None else TRIALS + 1 for k in need]))
        out["samplers"][label] = {"trials_to_target": need, "mean": mean,
                                  "hv_at_70": float(np.mean([c[69] for c in cs])),
                                  "hv_at_200": float(np.mean([c[-1] for c in cs]))}
        print(f"  {label:<24} trials to reach it: "
              f"{', '.join(str(k) if k else '>200' for k in need)}  (mean {mean:.0f}"
              f"{'' if len(reached) == len(need) else ', >200 counted as 201'}); "
              f"hypervolume at 70: {out['samplers'][label]['hv_at_70']:.4f}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="collect,compare")
    ap.add_argument("--n", type=int, default=24, help="architectures to train (collect)")
    ap.add_argument("--seconds", type=float, default=45.0, help="CPU seconds per run")
    ap.add_argument("--seeds", default="0-4", help="search seeds, A-B or a list (compare)")
    args = ap.parse_args()
    results = {}
    for part in args.parts.split(","):
        print(part, flush=True)
        if part == "collect":
            results[part] = part_collect(args.n, args.seconds)
        elif part == "compare":
            a, _, b = args.seeds.partition("-")
            seeds = tuple(range(int(a), int(b) + 1)) if b else \
                tuple(int(x) for x in args.seeds.split(","))
            results[part] = part_compare(seeds)
        else:
            raise SystemExit(f"unknown part {part!r}")
    out = ROOT / "runs" / "bench_search_efficiency.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
