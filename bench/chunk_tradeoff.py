"""Chunk size against accuracy: what a shorter delay costs in CER, and what
the search picks under a delay limit.

    python -m bench.chunk_tradeoff --parts train      (~16 x 2 CPU-min; resumable)
    python -m bench.chunk_tradeoff --parts figure     (seconds: table + docs/chunk_tradeoff.png)
    python -m bench.chunk_tradeoff --parts search     (~3 searches; resumable studies)

Built-in English corpus (small, seed 0), one thread, budgets in CPU time.

train    four architectures (a Conformer, a Transformer, an LSTM and a
         ContextNet, CTC), each trained with every chunk size of the space
         (240, 480, 960 ms; no look-ahead) and in full context, with the same
         budget and seed; dev,
         test-clean and test-noisy CER against the algorithmic delay
         (hwnas.asr.delay). Every finished run is appended to
         bench/results/chunk_tradeoff.jsonl (committed); a rerun skips those
figure    the table and docs/chunk_tradeoff.png from that file
search   `hwnas search --target cpu --streaming --max-delay D` for D = 300, 500
         and 1000 ms (one study each, in one workspace): the chunk the answer
         uses, its CER and its measured emission delay with the interval
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.asr import ArchConfig, delay  # noqa: E402

LOG = ROOT / "bench" / "results" / "chunk_tradeoff.jsonl"
FIGURE = ROOT / "docs" / "chunk_tradeoff.png"
CHUNKS = (240, 480, 960)
BASES = {
    "conformer": dict(frontend="logmel", n_filters=80, subsampling="conv2d4",
                      encoder="conformer", num_layers=2, d_model=144, attention="mhsa",
                      heads=4, ffn_ratio=4, conv_kernel=15, decoder="ctc"),
    "transformer": dict(frontend="logmel", n_filters=80, subsampling="conv2d4",
                        encoder="transformer", num_layers=2, d_model=144, attention="mhsa",
                        heads=4, ffn_ratio=4, decoder="ctc"),
    "lstm": dict(frontend="logmel", n_filters=80, subsampling="conv2d4", encoder="lstm",
                 num_layers=2, d_model=192, decoder="ctc"),
    "contextnet": dict(frontend="logmel", n_filters=80, subsampling="conv2d4",
                       encoder="contextnet", num_layers=4, d_model=144, conv_kernel=15,
                       decoder="ctc"),
}


def variants() -> list[tuple[str, ArchConfig]]:
    """Every base with every chunk of the space, then in full context."""
    out = []
    for name, base in BASES.items():
        att = base["encoder"] in ("conformer", "transformer")
        conv = "conv_kernel" in base
        for chunk in CHUNKS:
            out.append((name, ArchConfig.from_dict(
                {**base, "streaming": True, "chunk_ms": chunk, "lookahead": 0,
                 **({"left_chunks": 2} if att else {})})))
        out.append((name, ArchConfig.from_dict(
            {**base, "streaming": False, **({"causal_conv": False} if conv else {})})))
    return out


def part_train(minutes: float) -> None:
    import torch

    from bench.proxy_fidelity import data
    from hwnas.asr.train import TrainConfig, evaluate, train
    from hwnas.data.corpus import words
    from hwnas.data.tokens import CharTokenizer

    torch.set_num_threads(1)
    LOG.parent.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["arch_id"] for line in LOG.read_text().splitlines()} \
        if LOG.is_file() else set()
    tok = CharTokenizer.for_languages(["en"])
    todo = [(n, a) for n, a in variants() if a.id not in done]
    print(f"{len(done)} runs stored, {len(todo)} to train at {minutes:g} CPU-min each",
          flush=True)
    for name, arch in todo:
        sets = data(arch.frontend, arch.n_filters)
        t0 = time.time()
        res = train(arch, sets["train"], sets["dev"], tok,
                    TrainConfig(cpu_seconds=minutes * 60, seed=0))
        tests = {s: evaluate(res.model, res.model.arch, sets[s], tok, res.norm,
                             lexicon=list(words("en")))["cer"]
                 for s in ("test-clean", "test-noisy")}
        rec = {"family": name, "arch_id": arch.id, "arch": arch.to_dict(),
               "chunk_ms": arch.chunk_ms, "algorithmic_ms": delay.algorithmic_delay_ms(arch),
               "budget_cpu_s": minutes * 60, "seed": 0, "steps": res.steps,
               "dev_cer": res.dev["cer"], "test_clean_cer": tests["test-clean"],
               "test_noisy_cer": tests["test-noisy"], "wall_s": round(time.time() - t0)}
        with LOG.open("a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        print(f"  {name:<10} {arch.chunk_ms or 'full':>5} ms chunks: {res.steps} steps, dev "
              f"CER {rec['dev_cer']:.3f}, test-clean {rec['test_clean_cer']:.3f}",
              flush=True)


def part_figure() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(line) for line in LOG.read_text().splitlines()]
    print("| architecture | chunk | algorithmic delay | steps | dev CER | test-clean CER | "
          "test-noisy CER |\n|---|---|---|---|---|---|---|")
    fig, ax = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for fam in BASES:
        mine = sorted((r for r in runs if r["family"] == fam), key=lambda r: r["algorithmic_ms"])
        for r in mine:
            print(f"| {fam} | {r['chunk_ms'] or 'full context'} | {r['algorithmic_ms']:.0f} ms "
                  f"| {r['steps']} | {r['dev_cer']:.3f} | {r['test_clean_cer']:.3f} "
                  f"| {r['test_noisy_cer']:.3f} |")
        for a, key in zip(ax, ("dev_cer", "test_clean_cer")):
            a.plot([r["algorithmic_ms"] for r in mine], [r[key] for r in mine], "o-", label=fam)
    for a, title in zip(ax, ("dev CER", "test-clean CER")):
        a.set_xscale("log")
        a.minorticks_off()
        a.set_xticks([255, 495, 975, 4815], ["255\n(240)", "495\n(480)", "975\n(960)",
                                              "4815\n(full)"])
        a.set_xlabel("algorithmic delay, ms (chunk)")
        a.set_title(title)
        a.grid(alpha=0.3)
    ax[0].set_ylabel("CER")
    ax[0].legend()
    fig.suptitle("chunk size vs CER: same budget and seed per architecture")
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    print(f"\nfigure: {FIGURE.relative_to(ROOT)}")


def part_search(limits: list[float], trials: int, budget: str, workspace: Path) -> None:
    from hwnas.search.study import SearchConfig
    from hwnas.training.prepare import open_corpus
    from hwnas.workflows.search import SearchHooks, SearchRequest, run

    class Say(SearchHooks):
        def say(self, text: str) -> None:
            print("   ", text, flush=True)

    print("| --max-delay | chunk | look-ahead | dev CER | test-clean CER | compute p50 ms | "
          "emission delay p50 (95% CI) | verdict |\n|---|---|---|---|---|---|---|---|")
    rows = []
    for limit in limits:
        search = SearchConfig(target="cpu", rungs=tuple(float(x) for x in budget.split(",")),
                              study=f"delay{limit:g}", max_delay_ms=limit, trials=trials)
        req = SearchRequest(search, workspace=workspace, corpus=open_corpus(workspace),
                            streaming=True, export=False)
        out = run(req, Say()).summary
        best = out["selected"]
        if best is None:
            rows.append(f"| {limit:g} | none | | | | | | {out['note'] or 'nothing feasible'} |")
        else:
            a, ci = best["arch"], best.get("delay_ci") or [float("nan")] * 2
            rows.append(f"| {limit:g} | {a['chunk_ms']} ms | {a['lookahead']} | "
                        f"{best['cer']:.3f} | {best['tests']['en/test-clean']['cer']:.3f} | "
                        f"{best['latency_ms']:.2f} | {best['delay_ms']:.1f} ms ({ci[0]:.1f}-"
                        f"{ci[1]:.1f}) | {best.get('verdict', 'predicted')} |")
        print(rows[-1], flush=True)
    print("\n".join(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="train,figure,search")
    ap.add_argument("--minutes", type=float, default=2.0, help="(train) CPU minutes per run")
    ap.add_argument("--limits", default="300,500,1000", help="(search) --max-delay values, ms")
    ap.add_argument("--trials", type=int, default=12, help="(search) trials per search")
    ap.add_argument("--cer-budget", default="40,120", dest="cer_budget",
                    help="(search) CPU seconds per rung")
    ap.add_argument("--workspace", type=Path, default=ROOT / "runs" / "chunk_tradeoff")
    args = ap.parse_args()
    parts = args.parts.split(",")
    if "train" in parts:
        part_train(args.minutes)
    if "figure" in parts:
        part_figure()
    if "search" in parts:
        part_search([float(x) for x in args.limits.split(",")], args.trials, args.cer_budget,
                    args.workspace)


if __name__ == "__main__":
    main()
