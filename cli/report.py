"""`hwnas report`: figures and an HTML page for a search study."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._common import console, workspace
from .options import COUNT

REPORT_EPILOG = """examples:
  hwnas report hwnas                          the default study of `hwnas search`
  hwnas report s1 --out reports/s1 --top 6
  hwnas report s1 --storage postgresql+psycopg://user@db/hwnas
  hwnas report evo --compare bo rl random     strategies side by side (hypervolume)

Writes pareto.png, hypervolume.png, best_cer.png, diversity.png, compute.png,
importance.png, top.png (and strategies.png with --compare), report.json and
report.html (self-contained: the figures are embedded) into --out (default
<workspace>/runs/search/<study>/report).
"""


def _storage_for(args: argparse.Namespace, db: Path, study: str | None = None) -> str:
    if args.storage:
        return args.storage
    if not db.is_file():
        raise ValueError(f"no study database {db}; run `hwnas search ... --study "
                         f"{study or args.study}` first, or give --storage")
    return f"sqlite:///{db.resolve()}"


def _load(name: str, storage: str) -> Any:
    import optuna

    from hwnas.search.storage import open_storage

    rdb = open_storage(storage)
    try:
        return optuna.load_study(study_name=name, storage=rdb)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(rdb)]
        raise ValueError(f"no study {name!r} in {storage}; it holds: "
                         f"{', '.join(names) or 'none'}") from None


def cmd_report(args: argparse.Namespace) -> int:
    import optuna

    from hwnas.search.storage import study_paths
    from hwnas.visualization.report import build_report

    db, study_dir = study_paths(workspace(args), args.study)
    storage = _storage_for(args, db)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _load(args.study, storage)
    compare = []
    for name in args.compare or []:
        other = _load(name, _storage_for(args, study_paths(workspace(args), name)[0], name))
        for key in ("target", "objectives"):
            if other.user_attrs.get(key) != study.user_attrs.get(key):
                raise ValueError(f"--compare {name}: its {key} {other.user_attrs.get(key)} is "
                                 f"not {args.study}'s {study.user_attrs.get(key)}; compare "
                                 "studies of one target and objectives")
        compare.append(other)
    out = Path(args.out) if args.out else study_dir / "report"
    s = build_report(study, out, args.top, compare)
    if args.json:
        print(json.dumps(s, sort_keys=True, default=str))
        return 0

    con = console()
    con.print(f"study {args.study} ({s['target']}): {s['trials']} trials, {s['trained']} "
              f"trained ({s['stopped_early']} stopped early), "
              + (f"{s['screened']} scored with supernet weights only, " if s.get("screened")
                 else "")
              + f"{s['infeasible']} infeasible; "
              f"training spent {s['training_spent']:g} {s['training_unit']}; hypervolume "
              f"{s['hypervolume']:.4g} ({s['hypervolume_axis']} predicted)")
    for label, hv in s["compared"].items():
        con.print(f"  compared with {label}: hypervolume {hv:.4g}")
    for name, path in s["figures"].items():
        con.print(f"  {name:<12} {path}")
    con.print(f"report: {s['html']}")
    return 0


def add_parsers(sub: Any) -> None:
    r = sub.add_parser("report", help="figures and an HTML page for a search study",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Pareto front, hypervolume history, best CER, diversity, "
                                   "early stopping and compute, parameter importances and the "
                                   "top architectures of a study, as PNG and HTML.",
                       epilog=REPORT_EPILOG)
    r.add_argument("study", metavar="STUDY", help="study name (hwnas search --study)")
    r.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: the "
                   "workspace's SQLite file for STUDY)")
    r.add_argument("--out", metavar="DIR", help="output folder")
    r.add_argument("--compare", nargs="+", metavar="STUDY",
                   help="other studies (other strategies, same target and objectives) drawn "
                        "beside this one: hypervolume against trials")
    r.add_argument("--top", type=COUNT, default=4, help="architectures side by side (default 4)")
    r.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    r.add_argument("--json", action="store_true", help="machine-readable summary")
    r.set_defaults(func=cmd_report)
