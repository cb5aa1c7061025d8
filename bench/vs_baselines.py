"""Does the search's answer beat the best hand-designed baseline?

    python -m bench.vs_baselines --workspace WS --study main [--study main-s1 ...]
    python -m bench.vs_baselines --workspace WS --study main --whole   (+ ~20 CPU-min a study)

WS/--study: the workspace and studies of the README's main command, one per
seed (`hwnas search --target cpu --streaming --max-delay 500 --objectives
cer,delay --trials 16 --study main --seed S`). Each study started with the
presets that fit its flags (hwnas.search.baselines) and ended with a final
phase in which its finalists -- the feasible Pareto set and the best baseline
-- trained to one final budget (hwnas.workflows.final).

At equal final training (what the field reports): the delivered answer and
the best baseline, each trained to that final budget: test-clean CER from
their final runs (scored here again), emission delay as the search's
verification measured it (p50 with its 95% interval). Goal: the answer's
test-clean CER >= 10% lower than the baseline's at equal or lower delay, or
the answer is the baseline and says so. The search's own cost (the CPU time
its trials trained, the final phase's) is printed beside it.

--whole: the whole-budget comparison. The best baseline alone is given what
the whole search trained (trials + final phase), continuing its final run's
snapshot in <WS>/bench/vs_baselines/<study>/, and its test-clean CER is set
beside the delivered answer's.

Results: bench/results/vs_baselines.json (one entry per study).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library

OUT = ROOT / "bench" / "results" / "vs_baselines.json"


def test_clean(run: Path, corpus) -> float:
    from hwnas.asr.train import evaluate, load_run

    model, arch, tok, norm = load_run(run)
    fs, _ = corpus.splits(arch.frontend, arch.n_filters).tests["en/test-clean"]
    return float(evaluate(model, arch, fs, tok, norm)["cer"])


def one(ws: Path, name: str, whole: bool) -> dict:
    import optuna

    from hwnas.search.storage import open_storage, study_paths
    from hwnas.search.study import spent
    from hwnas.training.prepare import corpus_from_description
    from hwnas.workflows.final import final_dir

    db, study_dir = study_paths(ws, name)
    study = optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{db}"))
    attrs = study.user_attrs
    fin = attrs.get("final")
    if not fin:
        raise SystemExit(f"study {name} has no final phase: run it with the current hwnas")
    corpus = corpus_from_description(attrs["corpus"], ws)
    trials = {t.user_attrs.get("arch_id"): t for t in study.trials}
    budget = float(fin["budget"])
    rows = []
    for arch_id in fin["finalists"]:
        t = trials[arch_id]
        f = attrs.get(f"final:{arch_id}") or {}
        v = attrs.get(f"verified:{arch_id}") or {}
        rows.append({"arch_id": arch_id, "baseline": t.user_attrs.get("baseline"),
                     "arch": t.user_attrs["arch"], "dev_cer": f.get("cer"),
                     "rung_cer": f.get("rung_cer"),
                     "rung_budget": t.user_attrs["rungs"][-1]["budget_s"],
                     "delay_ms": v.get("delay_ms"), "delay_ci": v.get("delay_ci"),
                     "verdict": v.get("verdict"),
                     "test_clean": test_clean(final_dir(study_dir, arch_id), corpus)})
    base = min((r for r in rows if r["baseline"]), key=lambda r: r["dev_cer"], default=None)
    searched = spent(study)
    extra = sum(budget - r["rung_budget"] for r in rows)
    out = {"study": name, "seed": attrs.get("seed"), "final_budget": budget,
           "search_training": searched, "final_training": extra, "rows": rows,
           "delivered": attrs.get("delivered")}
    print(f"\nstudy {name}: {len(rows)} finalists, each trained {budget:g} CPU s; the trials "
          f"trained {searched:g} CPU s, the final phase {extra:g} more")
    print(f"{'arch':<14}{'baseline':<24}{'rung CER':>9}{'dev CER':>9}{'test-clean':>11}"
          f"{'delay p50 ms (95% CI)':>26}")
    for r in sorted(rows, key=lambda r: r["dev_cer"]):
        ci = r["delay_ci"]
        d = (f"{r['delay_ms']:.2f} ({ci[0]:.2f}-{ci[1]:.2f})" if ci else
             f"{r['delay_ms']:.2f}" if r["delay_ms"] else "-")
        print(f"{r['arch_id']:<14}{r['baseline'] or '-':<24}{r['rung_cer']:>9.3f}"
              f"{r['dev_cer']:>9.3f}{r['test_clean']:>11.3f}{d:>26}")
    delivered = (attrs.get("delivered") or {}).get("arch_id")
    if delivered is None:   # a study of an hwnas that did not record it: its export's card
        cards = sorted((study_dir / "export").glob("*/model_card.json"))
        if cards:
            delivered = json.loads(cards[-1].read_text())["model"]["searched_id"]
    chosen = next((r for r in rows if r["arch_id"] == delivered), None)
    if base is None or chosen is None:
        print("no baseline among the finalists, or no delivered answer recorded")
        return out
    gain = 1 - chosen["test_clean"] / base["test_clean"]
    out["equal_final"] = {"answer": chosen["arch_id"], "answer_is_baseline":
                          bool(chosen["baseline"]), "answer_test_clean": chosen["test_clean"],
                          "baseline": base["baseline"], "baseline_test_clean":
                          base["test_clean"], "reduction": gain,
                          "goal_met": bool(chosen["baseline"]) or (
                              gain >= 0.10 and chosen["delay_ms"] <= base["delay_ms"] + 1.0)}
    what = ("the answer IS the baseline (said so)" if chosen["baseline"] else
            f"test-clean CER {chosen['test_clean']:.3f} vs {base['test_clean']:.3f}: "
            f"{gain:.0%} lower")
    print(f"equal final training ({budget:g} CPU s): answer {chosen['arch_id']} vs best "
          f"baseline {base['baseline']}: {what}")
    found = min((r for r in rows if not r["baseline"]), key=lambda r: r["test_clean"],
                default=None)
    if found is not None:
        rel = found["test_clean"] / base["test_clean"] - 1
        out["best_found"] = {"arch_id": found["arch_id"], "test_clean": found["test_clean"],
                             "vs_baseline": rel, "delay_ms": found["delay_ms"]}
        print(f"best found architecture {found['arch_id']}: test-clean CER "
              f"{found['test_clean']:.3f} ({rel:+.0%} against the baseline) at "
              f"{found['delay_ms']:.1f} ms emission delay against {base['delay_ms']:.1f}")
    if whole:
        out["whole"] = whole_budget(ws, name, study_dir, base, searched + extra, corpus,
                                    chosen)
    return out


def whole_budget(ws: Path, name: str, study_dir: Path, base: dict, total: float, corpus,
                 chosen: dict) -> dict:
    """The best baseline alone, given the whole search's training."""
    import torch

    from hwnas.asr import ArchConfig
    from hwnas.asr.train import TrainConfig, load_snapshot, save_run, train
    from hwnas.workflows.final import final_dir

    torch.set_num_threads(1)
    folder = ws / "bench" / "vs_baselines" / name
    snap = folder / "checkpoint.pt"
    if not snap.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(final_dir(study_dir, base["arch_id"]) / "checkpoint.pt", snap)
    arch = ArchConfig.from_dict(base["arch"])
    sp = corpus.splits(arch.frontend, arch.n_filters)
    cfg = TrainConfig(cpu_seconds=total, seed=0, snapshot=snap, eval_every=10**9)
    res = train(arch, sp.train, sp.dev, corpus.tokenizer, cfg,
                resume=load_snapshot(snap, arch, cfg, corpus.tokenizer.vocab_size))
    save_run(folder, res, corpus.tokenizer)
    cer = test_clean(folder, corpus)
    print(f"whole budget ({total:g} CPU s): the baseline {base['baseline']} alone reaches "
          f"test-clean CER {cer:.3f}; the search's answer {chosen['test_clean']:.3f}")
    return {"budget": total, "baseline_test_clean": cer, "steps": res.steps,
            "answer_test_clean": chosen["test_clean"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", default=str(ROOT / "runs" / "workspace"))
    ap.add_argument("--study", action="append", required=True, help="repeat for several seeds")
    ap.add_argument("--whole", action="store_true",
                    help="also give the best baseline alone the whole search's training")
    args = ap.parse_args()
    ws = Path(args.workspace).resolve()
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for name in args.study:
        results[name] = one(ws, name, args.whole)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
