"""How far can weight sharing be trusted? Architectures scored with weights
inherited from a supernet against the same architectures trained stand-alone.

    python -m bench.supernet_fidelity --family all --space main --archs 30 \\
        --standalone 40 --supernet-budget 6m --finetune 20 --tag main
    python -m bench.supernet_fidelity --family conformer --space bench/supernet_space.toml \\
        --archs 30 --standalone 60 --supernet-budget 25m --finetune 30

``--space main`` is the README's main command's space (streaming, algorithmic
delay <= 500 ms); a TOML file narrows the whole space instead. With ``--family
all`` the architectures are stratified over the space's encoder families (an
equal share of ``--archs`` from each) and every family gets its own supernet.
Built-in English corpus (small), one thread, budgets in CPU time. Parts
(``--parts``, default all, each resumable; files carry ``--tag``):

standalone  each architecture trained --standalone CPU-seconds from scratch:
            dev CER (bench/results/supernet_fidelity_standalone<tag>.jsonl)
supernet    each family's supernet trained --supernet-budget CPU time, in the
            workspace's supernets/ folder where a search finds it (a rerun
            continues it)
score       every architecture's dev CER and dev loss inherited (0 steps; also
            on the first --screen-utts dev utterances), and after a --finetune
            CPU-second fine-tune (bench/results/supernet_fidelity_scores<tag>.jsonl);
            rank statistics of each against the stand-alone CER, pooled and
            within each family (bench/results/supernet_fidelity<tag>.json)
control     each architecture trained from scratch for the fine-tuning budget:
            the same statistics, to tell what the inherited weights add
plot        that file -> docs/supernet_fidelity<tag>.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.asr import default_space  # noqa: E402
from hwnas.asr.delay import within_delay  # noqa: E402
from hwnas.asr.supernet.score import score  # noqa: E402
from hwnas.asr.supernet.workspace import open_family, train_family  # noqa: E402
from hwnas.asr.train import TrainConfig, train  # noqa: E402
from hwnas.training.prepare import open_corpus  # noqa: E402

torch.set_num_threads(1)
RESULTS = ROOT / "bench" / "results"
MAIN_DELAY_MS = 500   # the main command's --max-delay (with --streaming)


def budget(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def precision_at(k: int, a: list[float], b: list[float]) -> float:
    """Share of the k best by ``a`` that are among the k best by ``b``."""
    top_a, top_b = set(np.argsort(a)[:k]), set(np.argsort(b)[:k])
    return len(top_a & top_b) / k


def ranks(got: list[float], alone: list[float]) -> dict[str, float]:
    return {"kendall_tau": float(kendalltau(got, alone).statistic),
            "spearman": float(spearmanr(got, alone).statistic),
            "precision_top5": precision_at(5, got, alone),
            "precision_top10": precision_at(10, got, alone)}


def within_family(rows: list[dict], kind: str, families: dict[str, str]) -> dict[str, float]:
    """Kendall tau inside each family (where the supernets share weights)."""
    out = {}
    for fam in sorted(set(families.values())):
        mine = [r for r in rows if families[r["arch_id"]] == fam]
        if len(mine) >= 3:
            out[fam] = float(kendalltau([r[kind] for r in mine],
                                        [r["standalone"] for r in mine]).statistic)
    return out


def jsonl(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    return {json.loads(line)["arch_id"]: json.loads(line)
            for line in path.read_text().splitlines() if line.strip()}


def append(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def the_space(spec: str | None):
    space = default_space()
    if spec == "main":
        return within_delay(space.with_choices({"streaming": [True]}), MAIN_DELAY_MS)
    return space.with_toml(spec) if spec else space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="standalone,supernet,score,control,plot")
    ap.add_argument("--family", default="conformer", help="a family, or all (stratified)")
    ap.add_argument("--space", help="main (the main command's space) or a TOML narrowing "
                    "the whole space (default: the whole space)")
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--standalone", type=float, default=60.0, help="CPU-s per stand-alone run")
    ap.add_argument("--supernet-budget", default="30m", help="CPU time per family")
    ap.add_argument("--finetune", type=float, default=30.0, help="CPU-s of fine-tuning")
    ap.add_argument("--screen-utts", type=int, default=50,
                    help="dev utterances of the cheap inherited score")
    ap.add_argument("--workspace", default=str(ROOT / "runs" / "bench_supernet"))
    ap.add_argument("--tag", default="", help="suffix of the result files")
    args = ap.parse_args()
    ws = Path(args.workspace)
    space = the_space(args.space)
    fams = list(space.choices("encoder")) if args.family == "all" else [args.family]
    corpus = open_corpus(ws, langs="en")
    tok = corpus.tokenizer
    archs, family_of = [], {}
    for i, fam in enumerate(fams):   # an equal share per family, the remainder to the first
        n = args.archs // len(fams) + (1 if i < args.archs % len(fams) else 0)
        for a in space.with_choices({"encoder": [fam]}).sample_distinct(n, seed=3):
            archs.append(a)
            family_of[a.id] = fam
    tag = f"_{args.tag}" if args.tag else ""
    parts = args.parts.split(",")
    alone_file = RESULTS / f"supernet_fidelity_standalone{tag}.jsonl"
    done = jsonl(alone_file)

    def trained(a, seconds: float):
        sp = corpus.splits(a.frontend, a.n_filters)
        return train(a, sp.train, sp.dev, tok, TrainConfig(cpu_seconds=seconds, seed=0,
                                                           eval_every=10**9))

    if "standalone" in parts:
        for i, a in enumerate(archs):
            if a.id not in done:
                res = trained(a, args.standalone)
                done[a.id] = {"arch_id": a.id, "arch": a.to_dict(), "cer": res.dev["cer"],
                              "steps": res.steps, "cpu_s": res.cpu_seconds}
                append(alone_file, done[a.id])
            print(f"stand-alone {i + 1}/{len(archs)} {family_of[a.id]} {a.id} CER "
                  f"{done[a.id]['cer']:.3f} ({done[a.id]['steps']} steps)", flush=True)

    folders, infos = {}, {}
    for fam in fams:
        def on_step(step: int, cpu: float, losses: dict, fam: str = fam) -> None:
            if step % 20 == 0:
                print(f"{fam} supernet step {step} {cpu:.0f} CPU s  loss largest "
                      f"{losses['largest']:.3f} smallest {losses['smallest']:.3f}", flush=True)

        if "supernet" in parts or "score" in parts:
            t0 = time.time()
            folders[fam], infos[fam] = train_family(ws, fam, space, corpus,
                                                    budget(args.supernet_budget),
                                                    on_step=on_step, say=print)
            print(f"{fam} supernet: {infos[fam]['steps']} steps, "
                  f"{infos[fam]['cpu_seconds']:.0f} CPU s ({time.time() - t0:.0f} s wall) "
                  f"in {folders[fam]}", flush=True)

    out = RESULTS / f"supernet_fidelity{tag}.json"
    if "score" in parts:
        scored_file = RESULTS / f"supernet_fidelity_scores{tag}.jsonl"
        scored, rows = jsonl(scored_file), []
        nets = {}
        for i, a in enumerate(archs):
            if a.id not in done:
                continue
            if a.id not in scored:
                fam = family_of[a.id]
                if fam not in nets:
                    nets[fam] = open_family(folders[fam])
                sp = corpus.splits(a.frontend, a.n_filters)
                inh = score(nets[fam], a, sp, tok, with_loss=True)
                cheap = score(nets[fam], a, sp, tok, dev_utts=args.screen_utts, with_loss=True)
                fine = score(nets[fam], a, sp, tok, finetune_cpu=args.finetune, with_loss=True)
                scored[a.id] = {"arch_id": a.id, "family": fam, "standalone": done[a.id]["cer"],
                                "finetune_steps": fine["steps"]}
                for kind, r in (("inherited", inh), ("screen", cheap), ("finetuned", fine)):
                    scored[a.id] |= {kind: r["cer"], f"{kind}_loss": r["loss"],
                                     f"{kind}_cpu_s": r["cpu_s"]}
                append(scored_file, scored[a.id])
            r = scored[a.id]
            rows.append(r)
            print(f"score {i + 1}/{len(archs)} {a.id} stand-alone {r['standalone']:.3f} "
                  f"inherited {r['inherited']:.3f} ({r['inherited_cpu_s']:.1f} CPU s) "
                  f"fine-tuned {r['finetuned']:.3f}", flush=True)
        alone = [r["standalone"] for r in rows]
        summary = {"families": fams, "space": args.space, "archs": len(rows),
                   "standalone_cpu_s": args.standalone,
                   "supernet_cpu_s": budget(args.supernet_budget),
                   "supernets": {f: {k: infos[f][k] for k in ("steps", "cpu_seconds", "params")}
                                 | {"last": infos[f]["curve"][-1] if infos[f]["curve"] else None}
                                 for f in fams},
                   "finetune_cpu_s": args.finetune, "screen_utts": args.screen_utts,
                   "rows": rows}
        # each score ranks by its CER, and (``*_loss``) by its dev loss per token
        kinds = [k + loss for k in ("inherited", "screen", "finetuned") if k in rows[0]
                 for loss in ("", "_loss") if k + loss in rows[0]]
        for kind in kinds:
            got = [r[kind] for r in rows]
            cost = [r[kind.removesuffix("_loss") + "_cpu_s"] for r in rows]
            summary[kind] = ranks(got, alone) | {
                "cpu_s_per_arch": float(np.mean(cost)), "cpu_s_median": float(np.median(cost)),
                "cpu_s_max": float(np.max(cost)), "mean": float(np.mean(got))}
            if len(fams) > 1:
                summary[kind]["tau_within_family"] = within_family(rows, kind, family_of)
        out.write_text(json.dumps(summary, indent=2) + "\n")
        for kind in kinds:
            s = summary[kind]
            print(f"{kind:>14}: Kendall tau {s['kendall_tau']:.2f}  Spearman "
                  f"{s['spearman']:.2f}  top-5 {s['precision_top5']:.1f}  top-10 "
                  f"{s['precision_top10']:.1f}  {s['cpu_s_per_arch']:.2f} CPU s per arch"
                  + (f"  within family {s['tau_within_family']}" if len(fams) > 1 else ""))
        print(f"wrote {out}")
    if "control" in parts:   # the same fine-tuning budget from scratch instead of inherited
        ctl_file = RESULTS / f"supernet_fidelity_control{tag}.jsonl"
        ctl = jsonl(ctl_file)
        for a in archs:
            if a.id in done and a.id not in ctl:
                res = trained(a, args.finetune)
                ctl[a.id] = {"arch_id": a.id, "cer": res.dev["cer"], "steps": res.steps}
                append(ctl_file, ctl[a.id])
        summary = json.loads(out.read_text())
        rows = [r | {"scratch": ctl[r["arch_id"]]["cer"]} for r in summary["rows"]
                if r["arch_id"] in ctl]
        got = [r["scratch"] for r in rows]
        summary["scratch"] = ranks(got, [r["standalone"] for r in rows]) | {
            "mean_cer": float(np.mean(got)),
            "finetuned_mean_cer": float(np.mean([r["finetuned"] for r in rows])),
            "finetuned_better": int(sum(r["finetuned"] < r["scratch"] for r in rows))}
        if len(fams) > 1:
            summary["scratch"]["tau_within_family"] = within_family(rows, "scratch", family_of)
        out.write_text(json.dumps(summary, indent=2) + "\n")
        c = summary["scratch"]
        print(f"   scratch: Kendall tau {c['kendall_tau']:.2f}  Spearman {c['spearman']:.2f}  "
              f"top-5 {c['precision_top5']:.1f}  top-10 {c['precision_top10']:.1f}; mean CER "
              f"{c['mean_cer']:.3f} vs fine-tuned {c['finetuned_mean_cer']:.3f} (fine-tuned "
              f"lower for {c['finetuned_better']}/{len(rows)})")
    if "plot" in parts:
        plot(out, ROOT / "docs" / f"supernet_fidelity{tag}.png")


def plot(src: Path, dest: Path) -> None:
    """Inherited and fine-tuned CER against stand-alone CER, one point per architecture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = json.loads(src.read_text())
    alone = [r["standalone"] for r in s["rows"]]
    fams = s.get("families") or [s.get("family")]
    fam_of = [r.get("family", fams[0]) for r in s["rows"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    for ax, kind, title in ((axes[0], "inherited", "inherited (0 steps)"),
                            (axes[1], "finetuned", f"fine-tuned {s['finetune_cpu_s']:g} CPU-s")):
        for fam in fams:
            pts = [(r[kind], y) for r, y, f in zip(s["rows"], alone, fam_of) if f == fam]
            ax.scatter(*zip(*pts), s=22, label=fam)
        k = s[kind]
        ax.set_title(f"{title}: Kendall tau {k['kendall_tau']:.2f}, top-5 "
                     f"{k['precision_top5']:.1f}", fontsize=10)
        ax.set_xlabel(f"dev CER with supernet weights, {title}")
        ax.grid(alpha=0.3)
    if len(fams) > 1:
        axes[1].legend(fontsize=8)
    axes[0].set_ylabel(f"dev CER trained stand-alone {s['standalone_cpu_s']:g} CPU-s")
    fig.suptitle(f"{s['archs']} architectures ({', '.join(fams)}); each family's supernet "
                 f"trained {s['supernet_cpu_s'] / 60:g} CPU-min", fontsize=11)
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
