"""`hwnas data build|show`: the built-in synthetic corpus."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ._common import workspace
from .options import COUNT, SEED

DATA_EPILOG = """examples:
  hwnas data build                          English, small (2,000 train / 200 dev /
                                            200 + 200 test utterances), seed 0
  hwnas data build --langs en,es,de --size medium --seed 1
  hwnas data show                           what is built

Splits per language: train, dev, test-clean, test-noisy. The same seed gives
byte-identical audio; an interrupted build resumes where it stopped. Corpora
live under <workspace>/data/builtin-<size>-s<seed>/.
"""


def cmd_build(args: argparse.Namespace) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from hwnas.data.corpus import MANIFEST, SIZES, build
    from hwnas.state import read_json

    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    if not langs:
        raise ValueError("--langs is empty")
    if args.size not in SIZES:
        raise ValueError(f"unknown size {args.size!r}; one of {', '.join(SIZES)}")
    if args.workers < 1:
        raise ValueError("--workers must be >= 1")
    t0 = time.time()
    state: dict[str, Any] = {}
    with Progress(TextColumn("[bold]synthesising"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  transient=args.json) as progress:
        def on_progress(done: int, total: int) -> None:
            if "task" not in state:
                state["task"] = progress.add_task("build", total=total, completed=done)
            progress.update(state["task"], completed=done)

        root = build(workspace(args), langs, args.size, args.seed, args.workers, on_progress)
    manifest = read_json(root / "manifest.json", MANIFEST)
    out = {"corpus": str(root), "seconds": round(time.time() - t0, 1), **manifest}
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    print(f"built {root} in {out['seconds']} s")
    for split, n in sorted(manifest["splits"].items()):
        print(f"  {split:<18} {n:>6} utterances")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from hwnas.data.corpus import MANIFEST
    from hwnas.state import read_json

    root = workspace(args) / "data"
    found = sorted(p.parent for p in root.glob("builtin-*/manifest.json"))
    if not found:
        raise ValueError(f"no built-in corpus under {root}; build one with `hwnas data build`")
    out = [{"corpus": str(p), **read_json(p / "manifest.json", MANIFEST)} for p in found]
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    for m in out:
        print(f"{m['corpus']}: size {m['size']}, seed {m['seed']}, languages "
              f"{', '.join(m['langs'])}, {sum(m['splits'].values())} utterances")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("data", help="build the built-in multilingual speech corpus",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Deterministic synthetic speech (eSpeak NG): sentences "
                                   "from a word list per language, random accent, voice, "
                                   "rate and pitch, coloured noise at random SNR.",
                       epilog=DATA_EPILOG)
    ps = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    s = ps.add_parser("build", help="synthesise a corpus (resumable)")
    s.add_argument("--langs", default="en",
                   help="comma-separated: en, es, de, ru, el, hi (default en)")
    s.add_argument("--size", default="small", help="tiny | small | medium (default small)")
    s.add_argument("--seed", type=SEED, default=0, help="corpus seed (default 0)")
    s.add_argument("--workers", type=COUNT, default=2, help="parallel workers (default 2)")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_build)
    s = ps.add_parser("show", help="list built corpora")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_show)
