"""How far can weight sharing be trusted? Architectures scored with weights
inherited from a supernet against the same architectures trained stand-alone.

    python bench/supernet_fidelity.py --family conformer --space bench/supernet_space.toml \\
        --archs 30 --standalone 60 --supernet-budget 30m --finetune 30

Built-in English corpus (small), one thread, budgets in CPU time. Parts
(``--parts``, default all, each resumable):

standalone  --archs architectures sampled from the family's space (seed 3),
            each trained --standalone CPU-seconds from scratch: dev CER.
            One JSON line per run in bench/results/supernet_fidelity_standalone.jsonl
supernet    the family's supernet trained --supernet-budget CPU time
            (snapshots in the workspace; a rerun continues it)
score       every architecture's dev CER inherited (0 steps) and after a
            --finetune CPU-second fine-tune (a line per architecture in
            bench/results/supernet_fidelity_scores.jsonl); Kendall tau and
            Spearman against the stand-alone CER, precision of the top 5 and
            top 10, and the CPU-seconds one inherited score costs.
            bench/results/supernet_fidelity.json
control     each architecture trained from scratch for the fine-tuning budget
            (--finetune CPU-s): the same rank statistics, to tell what the
            inherited weights add to a short training (into the same json)
plot        that file -> docs/supernet_fidelity.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402

from hwnas.asr import default_space  # noqa: E402
from hwnas.supernet.elastic import ElasticSupernet  # noqa: E402
from hwnas.supernet.sandwich import (  # noqa: E402
    SupernetConfig,
    load_snapshot,
    save_supernet,
    train_supernet,
)
from hwnas.supernet.score import score  # noqa: E402
from hwnas.training.prepare import open_corpus  # noqa: E402
from hwnas.training.trainer import TrainConfig, train  # noqa: E402

torch.set_num_threads(1)
RESULTS = ROOT / "bench" / "results"


def budget(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def precision_at(k: int, a: list[float], b: list[float]) -> float:
    """Share of the k best by ``a`` that are among the k best by ``b``."""
    top_a, top_b = set(np.argsort(a)[:k]), set(np.argsort(b)[:k])
    return len(top_a & top_b) / k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="standalone,supernet,score,control,plot")
    ap.add_argument("--family", default="conformer")
    ap.add_argument("--space", help="TOML narrowing the space (default: the whole space)")
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--standalone", type=float, default=60.0, help="CPU-s per stand-alone run")
    ap.add_argument("--supernet-budget", default="30m")
    ap.add_argument("--finetune", type=float, default=30.0, help="CPU-s of fine-tuning")
    ap.add_argument("--workspace", default=str(ROOT / "runs" / "bench_supernet"))
    ap.add_argument("--tag", default="", help="suffix of the result files")
    args = ap.parse_args()
    ws = Path(args.workspace)
    space = default_space().with_choices({"encoder": [args.family]})
    if args.space:
        space = space.with_toml(args.space).with_choices({"encoder": [args.family]})
    corpus = open_corpus(ws, langs="en")
    tok = corpus.tokenizer
    archs = space.sample_distinct(args.archs, seed=3)
    tag = f"_{args.tag}" if args.tag else ""
    alone_file = RESULTS / f"supernet_fidelity_standalone{tag}.jsonl"
    parts = args.parts.split(",")

    done = {}
    if alone_file.is_file():
        done = {json.loads(line)["arch_id"]: json.loads(line)
                for line in alone_file.read_text().splitlines() if line.strip()}
    if "standalone" in parts:
        for i, a in enumerate(archs):
            if a.id in done:
                continue
            sp = corpus.splits(a.frontend, a.n_filters)
            res = train(a, sp.train, sp.dev, tok, TrainConfig(cpu_seconds=args.standalone,
                                                              seed=0, eval_every=10**9))
            row = {"arch_id": a.id, "arch": a.to_dict(), "cer": res.dev["cer"],
                   "steps": res.steps, "cpu_s": res.cpu_seconds}
            done[a.id] = row
            with alone_file.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"stand-alone {i + 1}/{len(archs)} {a.id} CER {row['cer']:.3f} "
                  f"({res.steps} steps)", flush=True)

    snap = ws / "supernets" / f"{args.family}{tag}" / "checkpoint.pt"
    final = snap.with_name("supernet.pt")
    net = ElasticSupernet(space, args.family, tok.vocab_size, seed=0)
    cfg = SupernetConfig(cpu_seconds=budget(args.supernet_budget), snapshot=snap, eval_every=200)
    if "supernet" in parts:
        resume = load_snapshot(snap, net, cfg) if snap.is_file() else None
        t0 = time.time()

        def on_step(step: int, cpu: float, losses: dict) -> None:
            if step % 20 == 0:
                print(f"supernet step {step} {cpu:.0f} CPU s  loss largest "
                      f"{losses['largest']:.3f} smallest {losses['smallest']:.3f}", flush=True)

        res = train_supernet(net, lambda f, n: corpus.splits(f, n), tok, cfg, on_step=on_step,
                             resume=resume)
        save_supernet(final, net, {"steps": res.steps, "cpu_seconds": res.cpu_seconds,
                                   "curve": res.curve})
        print(f"supernet: {res.steps} steps, {res.cpu_seconds:.0f} CPU s "
              f"({time.time() - t0:.0f} s wall)", flush=True)
    if "score" in parts:
        state = torch.load(final if final.is_file() else snap, map_location="cpu",
                           weights_only=True)
        net.load_state_dict(state["weights"])
        net.eval()
        scored_file = RESULTS / f"supernet_fidelity_scores{tag}.jsonl"   # one line per arch
        scored = {}
        if scored_file.is_file():
            scored = {json.loads(line)["arch_id"]: json.loads(line)
                      for line in scored_file.read_text().splitlines() if line.strip()}
        rows = []
        for i, a in enumerate(archs):
            if a.id not in done:
                continue
            if a.id in scored:
                rows.append(scored[a.id])
                continue
            sp = corpus.splits(a.frontend, a.n_filters)
            inh = score(net, a, sp, tok)
            fine = score(net, a, sp, tok, finetune_cpu=args.finetune)
            rows.append({"arch_id": a.id, "standalone": done[a.id]["cer"],
                         "inherited": inh["cer"], "inherited_cpu_s": inh["cpu_s"],
                         "finetuned": fine["cer"], "finetuned_cpu_s": fine["cpu_s"],
                         "finetune_steps": fine["steps"]})
            with scored_file.open("a") as f:
                f.write(json.dumps(rows[-1]) + "\n")
            print(f"score {i + 1}/{len(archs)} {a.id} stand-alone {done[a.id]['cer']:.3f} "
                  f"inherited {inh['cer']:.3f} ({inh['cpu_s']:.1f} CPU s) fine-tuned "
                  f"{fine['cer']:.3f}", flush=True)
        alone = [r["standalone"] for r in rows]
        summary = {"family": args.family, "space": args.space, "archs": len(rows),
                   "standalone_cpu_s": args.standalone,
                   "supernet_cpu_s": budget(args.supernet_budget),
                   "finetune_cpu_s": args.finetune, "rows": rows}
        for kind in ("inherited", "finetuned"):
            got = [r[kind] for r in rows]
            summary[kind] = {
                "kendall_tau": float(kendalltau(got, alone).statistic),
                "spearman": float(spearmanr(got, alone).statistic),
                "precision_top5": precision_at(5, got, alone),
                "precision_top10": precision_at(10, got, alone),
                "cpu_s_per_arch": float(np.mean([r[f"{kind}_cpu_s"] for r in rows]))}
        out = RESULTS / f"supernet_fidelity{tag}.json"
        out.write_text(json.dumps(summary, indent=2) + "\n")
        for kind in ("inherited", "finetuned"):
            s = summary[kind]
            print(f"{kind:>10}: Kendall tau {s['kendall_tau']:.2f}  Spearman "
                  f"{s['spearman']:.2f}  top-5 {s['precision_top5']:.1f}  top-10 "
                  f"{s['precision_top10']:.1f}  {s['cpu_s_per_arch']:.1f} CPU s per arch")
        print(f"wrote {out}")
    if "control" in parts:   # the same fine-tuning budget from scratch instead of inherited
        ctl_file = RESULTS / f"supernet_fidelity_control{tag}.jsonl"
        ctl = {}
        if ctl_file.is_file():
            ctl = {json.loads(line)["arch_id"]: json.loads(line)
                   for line in ctl_file.read_text().splitlines() if line.strip()}
        for a in archs:
            if a.id in done and a.id not in ctl:
                sp = corpus.splits(a.frontend, a.n_filters)
                res = train(a, sp.train, sp.dev, tok, TrainConfig(
                    cpu_seconds=args.finetune, seed=0, eval_every=10**9))
                ctl[a.id] = {"arch_id": a.id, "cer": res.dev["cer"], "steps": res.steps}
                with ctl_file.open("a") as f:
                    f.write(json.dumps(ctl[a.id]) + "\n")
        out = RESULTS / f"supernet_fidelity{tag}.json"
        summary = json.loads(out.read_text())
        rows = [r for r in summary["rows"] if r["arch_id"] in ctl]
        got = [ctl[r["arch_id"]]["cer"] for r in rows]
        alone = [r["standalone"] for r in rows]
        summary["scratch"] = {
            "kendall_tau": float(kendalltau(got, alone).statistic),
            "spearman": float(spearmanr(got, alone).statistic),
            "precision_top5": precision_at(5, got, alone),
            "precision_top10": precision_at(10, got, alone),
            "mean_cer": float(np.mean(got)),
            "finetuned_mean_cer": float(np.mean([r["finetuned"] for r in rows])),
            "finetuned_better": int(sum(r["finetuned"] < ctl[r["arch_id"]]["cer"]
                                        for r in rows))}
        out.write_text(json.dumps(summary, indent=2) + "\n")
        c = summary["scratch"]
        print(f"   scratch: Kendall tau {c['kendall_tau']:.2f}  Spearman {c['spearman']:.2f}  "
              f"top-5 {c['precision_top5']:.1f}  top-10 {c['precision_top10']:.1f}; mean CER "
              f"{c['mean_cer']:.3f} vs fine-tuned {c['finetuned_mean_cer']:.3f} (fine-tuned "
              f"lower for {c['finetuned_better']}/{len(rows)})")
    if "plot" in parts:
        plot(RESULTS / f"supernet_fidelity{tag}.json",
             ROOT / "docs" / f"supernet_fidelity{tag}.png")


def plot(src: Path, dest: Path) -> None:
    """Inherited and fine-tuned CER against stand-alone CER, one point per architecture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = json.loads(src.read_text())
    alone = [r["standalone"] for r in s["rows"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    for ax, kind, title in ((axes[0], "inherited", "inherited (0 steps)"),
                            (axes[1], "finetuned", f"fine-tuned {s['finetune_cpu_s']:g} CPU-s")):
        ax.scatter([r[kind] for r in s["rows"]], alone, s=22)
        k = s[kind]
        ax.set_title(f"{title}: Kendall tau {k['kendall_tau']:.2f}, top-5 "
                     f"{k['precision_top5']:.1f}", fontsize=10)
        ax.set_xlabel(f"dev CER with supernet weights, {title}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"dev CER trained stand-alone {s['standalone_cpu_s']:g} CPU-s")
    fig.suptitle(f"{s['archs']} {s['family']} architectures; supernet trained "
                 f"{s['supernet_cpu_s'] / 60:g} CPU-min", fontsize=11)
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
