"""What asking a large generation of trials costs in the study's storage.

    python -m bench.study_ask --population 500

A search asks a whole generation (``--population``) before any trial is told,
so every trial of it is in flight at once. The main command's space and
NSGA-II are asked ``--population`` times into a fresh study in each storage:
SQLite, the default of a local search (``runs/search/<study>.db``), and
Optuna's journal file. Printed: milliseconds per ask, per block of 100.
bench/results/study_ask.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import optuna  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.asr import default_space  # noqa: E402
from hwnas.asr.delay import within_delay  # noqa: E402

OUT = ROOT / "bench" / "results" / "study_ask.json"


def storage(kind: str, folder: str):
    if kind == "sqlite":
        return f"sqlite:///{folder}/study.db"
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(f"{folder}/study.log"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--population", type=int, default=500)
    ap.add_argument("--storages", default="sqlite,journal")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = within_delay(default_space().with_choices({"streaming": [True]}), 500)
    out = {"population": args.population, "optuna": optuna.__version__, "ms_per_ask": {}}
    for kind in args.storages.split(","):
        with tempfile.TemporaryDirectory() as d:
            study = optuna.create_study(
                storage=storage(kind, d), directions=["minimize"] * 2,
                sampler=optuna.samplers.NSGAIISampler(seed=0, population_size=args.population))
            blocks, t0 = [], time.perf_counter()
            last = t0
            for i in range(1, args.population + 1):
                space.suggest(study.ask())
                if i % 100 == 0 or i == args.population:
                    now = time.perf_counter()
                    blocks.append(round((now - last) / (i - 100 * len(blocks)) * 1000, 1))
                    print(f"{kind}: trials {100 * len(blocks) - 99}-{i} in flight, "
                          f"{blocks[-1]:.0f} ms per ask", flush=True)
                    last = now
            total = time.perf_counter() - t0
        out["ms_per_ask"][kind] = {"per_block_of_100": blocks, "total_s": round(total, 1)}
        print(f"{kind}: {args.population} asks in {total:.1f} s", flush=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
