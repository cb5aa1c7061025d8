"""The main search side by side, scoring CER with supernets or by training.

    python -m bench.supernet_search --minutes 15 --seeds 0

Both runs are the README's main command (`hwnas search --target cpu
--streaming --max-delay 500 --objectives cer,delay`, default rungs 40s,2m)
with the same wall time (--budget), seed and constraint; the only
differences are --cer-source and the generation size (--population: 4 for
train, as the main command has; 27 for supernet, so that 27 inherited scores
leave 3 fine-tuned and 1 stand-alone finalist per generation; --eta and
--journal change the supernet run's halving and storage, and --label names
such a variant). The supernet
run starts with no supernet in the workspace, so their training
(--supernet-budget per family, 5 families) is inside its wall time; an
earlier run's supernets are set aside, not deleted. With --supernets DIR it
starts instead with the supernets in DIR (trained beforehand, as a shipped
supernet would be: their CPU time is recorded, not inside the wall time), and
its key says so ("supernet-pretrained:SEED").

Reported per run: architectures scored (by source), verified front
hypervolume in (emission delay <= 500 ms, CER <= 1) and the best verified
stand-alone dev CER. bench/results/supernet_search.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.visualization.report import hypervolume_2d  # noqa: E402

OUT = ROOT / "bench" / "results" / "supernet_search.json"
MAX_DELAY = 500


def pretrained_cpu(ws: Path) -> float:
    """CPU seconds the supernets a pretrained run started with had been trained."""
    return sum(json.loads(f.read_text())["cpu_seconds"]
               for f in (ws / "supernets").glob("*/info.json"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--supernet-budget", default="60s")
    ap.add_argument("--finetune", default="20s")
    ap.add_argument("--sources", default="supernet,train")
    ap.add_argument("--population", type=int, default=27,
                    help="generation size of the supernet run")
    ap.add_argument("--screen-utts", default="100", help="dev utterances per inherited score")
    ap.add_argument("--supernets", metavar="DIR",
                    help="a supernets/ folder trained beforehand, to start the supernet run "
                         "with")
    ap.add_argument("--eta", type=int, default=3,
                    help="the supernet run's --eta: it fine-tunes 1/eta^2 of a generation")
    ap.add_argument("--journal", action="store_true",
                    help="the supernet run's study in a journal file (--storage journal:)")
    ap.add_argument("--label", default="", help="names a variant in the results' keys")
    ap.add_argument("--workspace", default=str(ROOT / "runs" / "bench_strategies"))
    args = ap.parse_args()
    ws = Path(args.workspace)
    env = {**os.environ, "HWNAS_WORKSPACE": str(ws), "OMP_NUM_THREADS": "1"}
    hwnas = str(Path(sys.executable).with_name("hwnas"))
    old = json.loads(OUT.read_text()) if OUT.is_file() else {}
    runs = old.get("runs", {})
    for seed in [int(s) for s in args.seeds.split(",")]:
        for source in args.sources.split(","):
            pre = source == "supernet" and args.supernets
            key = (f"{source}{'-pretrained' if pre else ''}"
                   f"{'-' + args.label if args.label else ''}:{seed}")
            if key in runs:
                continue
            study = f"bench-cer-{key.replace(':', '-')}"
            extra = ["--population", "4"]
            if source == "supernet":
                if (ws / "supernets").exists():   # kept, out of the way
                    (ws / "supernets").rename(ws / f"supernets.before-{study}-{time.time():.0f}")
                if pre:   # copies: the search may continue them, the originals stay as they are
                    shutil.copytree(args.supernets, ws / "supernets")
                extra = ["--population", str(args.population), "--cer-source", "supernet",
                         "--supernet-budget", args.supernet_budget, "--finetune", args.finetune,
                         "--screen-utts", args.screen_utts, "--eta", str(args.eta)]
                if args.journal:
                    extra += ["--storage", f"journal:{ws / 'runs' / 'search' / study}.log"]
            cmd = [hwnas, "search", "--target", "cpu", "--streaming", "--max-delay",
                   str(MAX_DELAY), "--objectives", "cer,delay", "--trials", "100000",
                   "--budget", f"{args.minutes * 60:.0f}s", *extra, "--seed", str(seed),
                   "--study", study, "--no-export", "--json"]
            t0 = time.time()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(f"{key}: {proc.stderr.strip().splitlines()[-3:]}")
            s = json.loads(proc.stdout.strip().splitlines()[-1])
            verified = [r for r in s["pareto"] if r.get("verdict") in ("met", "borderline")]
            pts = np.array([(r["delay_ms"], r["cer"]) for r in verified]).reshape(-1, 2)
            runs[key] = {"source": source, "seed": seed, "wall_s": round(time.time() - t0, 1),
                         "supernets_cpu_s_beforehand": pretrained_cpu(ws) if pre else 0,
                         "args": extra,
                         "trials": s["trials"], "feasible": s["feasible_as_predicted"],
                         "scored": s["scored"], "verified": len(verified),
                         "hv_verified": hypervolume_2d(pts, (MAX_DELAY, 1.0)),
                         "best_cer": min((r["cer"] for r in verified), default=None),
                         "front": [{k: r.get(k) for k in ("arch_id", "cer", "delay_ms",
                                                          "verdict")} for r in s["pareto"]]}
            r = runs[key]
            print(f"{key:<12} {r['wall_s']:.0f} s: {r['trials']} trials, scored {r['scored']}; "
                  f"{r['verified']} verified, hypervolume {r['hv_verified']:.2f}, best CER "
                  f"{r['best_cer']}", flush=True)
            OUT.write_text(json.dumps({"minutes": args.minutes, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
