"""Does an architecture that trains well on one language train well on
another? The same architectures trained on English, German and Russian.

    python bench/multilingual.py --n 12 --budget 45     (~n x 3 x budget CPU-s; resumable)

Built-in corpus (small: 2,000 train / 200 dev utterances per language, seed
0; German and Russian are built on first use), one thread, budgets in CPU
time, each language with its own character set. --n architectures sampled
from the space (seed 5, CTC, <= 4 layers), each trained --budget CPU-seconds
on each language from the same seed. Reported: the dev CER of every run,
and the Kendall tau of the architectures' CERs between each pair of
languages (1: the same ranking; a search on one language would pick for the
other). Every finished run is appended to bench/results/multilingual.jsonl;
a rerun skips those. Summary: bench/results/multilingual.json
"""

from __future__ import annotations

import argparse
import itertools
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

from hwnas.asr import ArchConfig, default_space  # noqa: E402
from hwnas.data.corpus import build, corpus_dir  # noqa: E402
from hwnas.data.tokens import CharTokenizer  # noqa: E402
from hwnas.predict.metrics import kendall_tau  # noqa: E402
from hwnas.training.prepare import builtin_features  # noqa: E402
from hwnas.training.trainer import TrainConfig, train  # noqa: E402

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
    space = default_space().with_choices({"decoder": ["ctc"], "num_layers": [1, 2, 4]})
    return space.sample_distinct(n, 5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--budget", type=float, default=45.0, help="CPU-seconds per run")
    ap.add_argument("--langs", default="en,de,ru")
    args = ap.parse_args()
    langs = args.langs.split(",")
    done = {}
    if LOG.is_file():
        for line in LOG.read_text().splitlines():
            r = json.loads(line)
            done[(r["arch_id"], r["lang"], r["budget"])] = r
    todo = [(a, lang) for a in archs(args.n) for lang in langs
            if (a.id, lang, args.budget) not in done]
    print(f"{len(done)} runs logged, {len(todo)} to go", flush=True)
    for i, (arch, lang) in enumerate(todo):
        tok = CharTokenizer.for_languages([lang])
        # one architecture id across languages: the output layer keeps the space's 64
        # tokens (every built-in language's character set fits)
        assert tok.vocab_size <= arch.vocab_size, (lang, tok.vocab_size)
        tr, dev = splits(lang, arch)
        t0 = time.time()
        res = train(arch, tr, dev, tok, TrainConfig(cpu_seconds=args.budget, seed=0))
        rec = {"arch_id": arch.id, "lang": lang, "budget": args.budget, "encoder": arch.encoder,
               "steps": res.steps, "cpu_s": res.cpu_seconds, "cer": res.dev["cer"],
               "wer": res.dev["wer"], "wall_s": round(time.time() - t0, 1)}
        with LOG.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        done[(arch.id, lang, args.budget)] = rec
        print(f"[{i + 1}/{len(todo)}] {arch.id} {arch.encoder:<11} {lang}: CER "
              f"{rec['cer']:.3f} ({res.steps} steps)", flush=True)
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
