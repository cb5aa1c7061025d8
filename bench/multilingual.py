"""Does an architecture that trains well on one language train well on
another? The same architectures trained on English, German and Russian.

    python -m bench.multilingual --n 12 --budget 45     (~n x 3 x budget CPU-s; resumable)
    python -m bench.multilingual --search --trials 8 --budget 45

Built-in corpus (small: 2,000 train / 200 dev utterances per language, seed
0; German and Russian are built on first use), one thread, budgets in CPU
time, each language with its own character set. --n architectures sampled
from the space (seed 5, CTC, <= 4 layers), each trained --budget CPU-seconds
on each language from the same seed. Reported: the dev CER of every run,
and the Kendall tau of the architectures' CERs between each pair of
languages (1: the same ranking; a search on one language would pick for the
other). Every finished run is appended to bench/results/multilingual.jsonl;
a rerun skips those. Summary: bench/results/multilingual.json

--search: what a multilingual-fitness search picks against what an
English-only one picks. Two `hwnas search` studies, same seed, same space
(bench/multilingual_space.toml), --trials trials of --budget CPU-s each:
`--langs en --objectives cer,latency` and `--langs en,de,ru --objectives
cer_mean,latency` (trained on the three pooled). Each study's lowest-CER
Pareto architecture is then trained stand-alone on each language (as above,
--budget each) and its dev CERs compared: the mean over languages, and the
relative CER reduction of the multilingual pick. Summary:
bench/results/multilingual_search.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.asr import ArchConfig, default_space  # noqa: E402
from hwnas.asr.train import TrainConfig, train  # noqa: E402
from hwnas.data.corpus import build, corpus_dir  # noqa: E402
from hwnas.data.tokens import CharTokenizer  # noqa: E402
from hwnas.predict.metrics import kendall_tau  # noqa: E402
from hwnas.training.prepare import builtin_features  # noqa: E402

torch.set_num_threads(1)
LOG = ROOT / "bench" / "results" / "multilingual.jsonl"
OUT = ROOT / "bench" / "results" / "multilingual.json"


def splits(lang: str, arch: ArchConfig):
    root = corpus_dir(ROOT, "small", 0)
    if not (root / lang / "test-noisy.jsonl").is_file():
        print(f"building the small {lang} corpus ...", flush=True)
        t0 = time.time()
        build(ROOT, [lang], "small", 0, workers=2)
        print(f"  built in {time.time() - t0:.0f} s", flush=True)
    sets = builtin_features(ROOT, [lang], "small", 0, arch.frontend, arch.n_filters)
    return sets[(lang, "train")], sets[(lang, "dev")]


def archs(n: int) -> list[ArchConfig]:
    space = default_space().with_toml(ROOT / "bench" / "multilingual_space.toml")
    return space.sample_distinct(n, 5)


def logged() -> dict:
    done = {}
    if LOG.is_file():
        for line in LOG.read_text().splitlines():
            r = json.loads(line)
            done[(r["arch_id"], r["lang"], r["budget"])] = r
    return done


def train_each(todo: list, budget: float, done: dict) -> None:
    """Train each (architecture, language) of ``todo`` not logged yet."""
    todo = [(a, lang) for a, lang in todo if (a.id, lang, budget) not in done]
    for i, (arch, lang) in enumerate(todo):
        tok = CharTokenizer.for_languages([lang])
        # one architecture id across languages: the output layer keeps the space's 64
        # tokens (every built-in language's character set fits)
        assert tok.vocab_size <= arch.vocab_size, (lang, tok.vocab_size)
        tr, dev = splits(lang, arch)
        t0 = time.time()
        res = train(arch, tr, dev, tok, TrainConfig(cpu_seconds=budget, seed=0))
        rec = {"arch_id": arch.id, "lang": lang, "budget": budget, "encoder": arch.encoder,
               "steps": res.steps, "cpu_s": res.cpu_seconds, "cer": res.dev["cer"],
               "wer": res.dev["wer"], "wall_s": round(time.time() - t0, 1)}
        with LOG.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        done[(arch.id, lang, budget)] = rec
        print(f"[{i + 1}/{len(todo)}] {arch.id} {arch.encoder:<11} {lang}: CER "
              f"{rec['cer']:.3f} ({res.steps} steps)", flush=True)


def search_workspace() -> Path:
    """The studies' workspace, under runs/ (their host calibration and studies
    stay out of the tracked profiles/), sharing the corpus and feature cache."""
    ws = ROOT / "runs" / "bench_multilingual"
    ws.mkdir(parents=True, exist_ok=True)
    for shared in ("data", "cache"):
        (ROOT / shared).mkdir(exist_ok=True)
        if not (ws / shared).exists():
            (ws / shared).symlink_to(ROOT / shared)
    return ws


def search_pick(name: str, langs: str, objective: str, trials: int, budget: float,
                seed: int) -> ArchConfig:
    """The lowest-CER Pareto architecture of one `hwnas search` study."""
    import subprocess

    cmd = [sys.executable, "-m", "hwnas", "search", "--target", "cpu", "--objectives",
           f"{objective},latency", "--langs", langs, "--trials", str(trials),
           "--cer-budget", f"{budget:g}s", "--space", str(ROOT / "bench" /
                                                        "multilingual_space.toml"),
           "--study", f"multilingual-{name}-s{seed}", "--seed", str(seed), "--no-verify",
           "--no-export", "--json", "--workspace", str(search_workspace())]
    print(f"search {name}: {' '.join(cmd[2:])}", flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    pareto = json.loads(out.strip().splitlines()[-1])["pareto"]
    best = min(pareto, key=lambda r: r["cer"])
    print(f"  picked {best['arch_id']} (study CER {best['cer']:.3f})", flush=True)
    return ArchConfig.from_dict(best["arch"])


def compare_searches(args: argparse.Namespace, langs: list[str]) -> int:
    done = logged()
    picks = {"english_only": search_pick("en", "en", "cer", args.trials, args.budget, 0),
             "multilingual": search_pick("multi", ",".join(langs), "cer_mean", args.trials,
                                         args.budget, 0)}
    train_each([(a, lang) for a in picks.values() for lang in langs], args.budget, done)
    rows = {}
    for name, a in picks.items():
        cer = {lang: done[(a.id, lang, args.budget)]["cer"] for lang in langs}
        rows[name] = {"arch_id": a.id, "arch": a.to_dict(), "cer": cer,
                      "mean_cer": round(float(np.mean(list(cer.values()))), 4)}
    en, ml = rows["english_only"]["mean_cer"], rows["multilingual"]["mean_cer"]
    summary = {"trials": args.trials, "budget_cpu_s": args.budget, "langs": langs,
               "picks": rows, "relative_cer_reduction": round((en - ml) / en, 4),
               "command": "python -m bench.multilingual " + " ".join(sys.argv[1:])}
    (OUT.parent / "multilingual_search.json").write_text(json.dumps(summary, indent=1) + "\n")
    for name, r in rows.items():
        print(f"{name:<14} {r['arch_id']}  " + "  ".join(
            f"{k} {v:.3f}" for k, v in r["cer"].items()) + f"  mean {r['mean_cer']:.3f}")
    print("relative CER reduction of the multilingual pick: "
          f"{summary['relative_cer_reduction']:+.1%}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--budget", type=float, default=45.0, help="CPU-seconds per run")
    ap.add_argument("--langs", default="en,de,ru")
    ap.add_argument("--search", action="store_true",
                    help="compare a multilingual-fitness search with an English-only one")
    ap.add_argument("--trials", type=int, default=8, help="--search: trials per study")
    args = ap.parse_args()
    langs = args.langs.split(",")
    if args.search:
        return compare_searches(args, langs)
    done = logged()
    todo = [(a, lang) for a in archs(args.n) for lang in langs]
    print(f"{len(done)} runs logged", flush=True)
    train_each(todo, args.budget, done)
    ids = [a.id for a in archs(args.n)]
    cer = {lang: np.array([done[(i, lang, args.budget)]["cer"] for i in ids]) for lang in langs}
    pairs = {f"{a}-{b}": round(float(kendall_tau(cer[a], cer[b])), 3)
             for a, b in itertools.combinations(langs, 2)}
    summary = {"n": len(ids), "budget_cpu_s": args.budget, "langs": langs,
               "kendall_tau": pairs,
               "mean_cer": {lang: round(float(cer[lang].mean()), 3) for lang in langs},
               "cer": {lang: [float(c) for c in cer[lang]] for lang in langs},
               "archs": ids}
    OUT.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: summary[k] for k in ("kendall_tau", "mean_cer")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
