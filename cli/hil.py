"""`hwnas devices` and `hwnas profile`: hardware-in-the-loop commands."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

DEVICES_EPILOG = """device files:
  Shipped: cpu, cpu-litert, server-gpu, pixel6, edge-tpu. Add your own as
  <workspace>/devices/NAME.toml (a file with a shipped name replaces it):

    description = "Pixel 7 on bench 2"
    adapter = "android"            # cpu | cuda | android | edgetpu
    [options]
    serial = "192.168.1.40:5555"
    [plan]                         # optional
    min_runs = 100

adapter options:
"""

PROFILE_EPILOG = """examples:
  hwnas profile --device cpu --n 200 --seed 0      measure 200 sampled architectures
  hwnas profile --device cpu --n 1000 --seed 0     later: adds the next 800, keeps the 200
  hwnas profile --device pixel6 --n 50 --json      a phone over ADB
  hwnas profile show --device cpu                  what is stored

Rows go to <workspace>/profiles/<device>/ (Parquet shards + manifest.json).
Interrupt at any time (Ctrl-C, kill -9): rerun the same command to continue;
no row is lost or measured twice. An architecture that fails to export or run
is stored with its reason (--retry-failed tries those again).
"""


def _workspace(args: argparse.Namespace) -> Path:
    from hwnas.paths import workspace

    return workspace(args.workspace)


def _adapter_options_help() -> str:
    try:  # `hwnas --help` must work before the dependencies are installed
        from hwnas.adapters import REGISTRY, adapter_class
    except ImportError as e:
        return f"  (listed once hwnas's dependencies are installed; missing: {e.name})"

    out = []
    for name in REGISTRY:
        cls = adapter_class(name)
        out.append(f"  {name}:")
        for opt, (default, text) in cls.OPTIONS.items():
            out.append(f"    {opt:<20} {text} (default {default!r})")
    return "\n".join(out)


def cmd_devices(args: argparse.Namespace) -> int:
    from hwnas.adapters import DeviceError
    from hwnas.adapters.devicefile import all_devices

    rows = []
    for d in all_devices(_workspace(args)):
        if isinstance(d, tuple):
            rows.append({"name": d[0], "adapter": None, "format": None, "description": "",
                         "source": None, "reachable": False, "reason": d[1]})
            continue
        try:
            adapter = d.make()
            reason = adapter.check()
            fmt = adapter.format
            adapter.close()
        except DeviceError as e:
            reason, fmt = str(e), None
        rows.append({"name": d.name, "adapter": d.adapter, "format": fmt,
                     "description": d.description, "source": d.source,
                     "reachable": reason is None, "reason": reason})
    if args.json:
        print(json.dumps(rows, indent=None, sort_keys=True))
        return 0
    from rich.markup import escape
    from rich.table import Table

    from .main import _console

    t = Table(title="devices")
    for col in ("device", "adapter", "format", "reachable", "description / reason"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["name"], r["adapter"] or "?", r["format"] or "?",
                  "[green]yes[/]" if r["reachable"] else "[red]no[/]",
                  escape(r["description"]) if r["reachable"] else
                  f"{escape(r['description'])}\n[red]{escape(r['reason'])}[/]")
    _console().print(t)
    return 0


def _plan(args: argparse.Namespace, base: Any) -> Any:
    over = {k: getattr(args, k) for k in ("warmup_runs", "min_runs", "min_seconds")
            if getattr(args, k) is not None}
    return base.replace(**over) if over else base


def measure_with_progress(run: Any, title: str, quiet: bool = False
                          ) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Run a ProfileRun under a rich progress bar (on stderr). On Ctrl-C raises
    KeyboardInterrupt(new_rows); DeviceUnavailable gets ``.stored`` = new rows."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from hwnas.adapters import DeviceUnavailable

    err = Console(stderr=True)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                        TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
                        console=err, transient=quiet)
    counts: Counter[str] = Counter()
    state: dict[str, Any] = {"task": None}

    def on_start(todo: int, stored: int) -> None:
        for note in run.notes:   # recovery of the store: shown even with --json
            err.print(f"hwnas: {note}", markup=False, highlight=False, soft_wrap=True)
        state["task"] = progress.add_task(title, total=todo, last="")
        if stored and not quiet:
            err.print(f"{stored} rows already stored in {run.folder}; "
                      f"{todo} measurements to go")

    rows: list[dict[str, Any]] = []
    try:
        with progress:
            for row in run.run(on_start=on_start):
                counts[row["status"]] += 1
                rows.append(row)
                last = (f"{row['arch_id']} {row['p50_ms']:.2f} ms" if row.get("p50_ms")
                        is not None else f"{row['arch_id']} {row['status']}")
                progress.update(state["task"], advance=1, last=last)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(len(rows)) from None
    except DeviceUnavailable as e:
        e.stored = len(rows)  # type: ignore[attr-defined]
        raise
    return rows, counts


def cmd_profile(args: argparse.Namespace) -> int:
    if args.action == "show":
        return cmd_profile_show(args)
    from hwnas.adapters import DeviceUnavailable
    from hwnas.adapters.devicefile import load_device
    from hwnas.profiling.profiler import ProfileRun
    from hwnas.space import SearchSpace, default_space

    if args.n is None or args.n < 1:
        raise ValueError("--n must be a positive number of architectures")
    if args.repeats < 1:
        raise ValueError("--repeats must be >= 1")
    ws = _workspace(args)
    spec = load_device(args.device, ws)
    space = SearchSpace.from_toml(args.space) if args.space else default_space()
    run = ProfileRun(spec, ws, args.n, args.seed, space, fmt=args.format,
                     plan=_plan(args, spec.plan), keep_models=args.keep_models,
                     retry_failed=args.retry_failed, repeats=args.repeats)
    try:
        rows, counts = measure_with_progress(run, f"profiling {spec.name}", quiet=args.json)
    except KeyboardInterrupt as e:
        print(f"hwnas: interrupted; {e.args[0] if e.args else 0} new rows stored. Rerun the "
              "same command to continue.", file=sys.stderr)
        return 130
    except DeviceUnavailable as e:
        print(f"hwnas: error: {e}. {getattr(e, 'stored', 0)} new rows stored; rerun the "
              "same command to continue.", file=sys.stderr)
        return 1
    folder = run.folder
    summary = {"device": spec.name, "profile": str(folder), "new_rows": len(rows),
               "stored_rows": run.stored_rows, "ok": counts["ok"], "flagged": counts["flagged"],
               "failed": counts["failed"]}
    if args.json:
        summary["rows"] = [{k: r.get(k) for k in ("arch_id", "format", "status", "error", "graph",
                                                  "p50_ms", "p90_ms", "p99_ms", "cv", "n", "rtf",
                                                  "memory_mb", "model_bytes", "params", "flops")}
                           for r in rows]
        print(json.dumps(summary, sort_keys=True))
        return 0
    print(f"{spec.name}: {len(rows)} new rows ({counts['ok']} ok, {counts['flagged']} flagged, "
          f"{counts['failed']} failed); {summary['stored_rows']} stored in {folder}")
    for r in rows:
        if r["status"] != "ok":
            print(f"  {r['arch_id']} {r['status']}: {r.get('error')}")
    return 0


def profile_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    import numpy as np

    status = Counter(r["status"] for r in rows)
    ok = [r for r in rows if r["status"] == "ok"]
    by_family: dict[str, dict[str, Any]] = {}
    for fam in sorted({r["encoder"] for r in ok}):
        # one figure per architecture (the median of its repeats), so an
        # architecture measured in two passes is not counted twice
        per_arch: dict[str, list[dict[str, Any]]] = {}
        for r in ok:
            if r["encoder"] == fam:
                per_arch.setdefault(r["arch_id"], []).append(r)
        lat = [float(np.median([r["p50_ms"] for r in rs])) for rs in per_arch.values()]
        norm = [float(np.median([r["norm_p50_ms"] for r in rs])) for rs in per_arch.values()
                if all(r.get("norm_p50_ms") for r in rs)]
        by_family[fam] = {"n": len(per_arch), "rows": sum(len(v) for v in per_arch.values()),
                          "p50_ms_median": float(np.median(lat)),
                          "p50_ms_min": float(min(lat)), "p50_ms_max": float(max(lat)),
                          "norm_p50_ms_median": float(np.median(norm)) if norm else None}
    by_graph = Counter(r["graph"] for r in ok)
    # the same problem with different numbers counts once: "noisy: robust CV N% > N%"
    reasons = Counter(re.sub(r"[-+]?\d+(?:\.\d+)?", "N", r.get("error") or "?")[:100]
                      for r in rows if r["status"] != "ok")
    runtimes = sorted({(r.get("provenance") or {}).get("runtime", "?") for r in ok})
    cvs = [r["cv"] for r in ok if r.get("cv") is not None]
    dates = sorted(r["date"] for r in rows)
    return {"rows": len(rows), "architectures": len({r["arch_id"] for r in rows}),
            "status": dict(status), "graphs": dict(by_graph),
            "formats": sorted({r["format"] for r in rows}), "runtimes": runtimes,
            "first": dates[0] if dates else None, "last": dates[-1] if dates else None,
            "by_encoder": by_family,
            "median_cv": float(np.median(cvs)) if cvs else None,
            "problems": dict(reasons.most_common(10))}


def cmd_profile_show(args: argparse.Namespace) -> int:
    from hwnas.paths import shipped_dir
    from hwnas.profiling.store import open_profile

    store = open_profile(args.device, _workspace(args))
    for note in store.notes:
        print(f"hwnas: {note}", file=sys.stderr)
    s = profile_summary(store.rows())
    s["folder"] = str(store.folder)
    s["shipped"] = store.folder.resolve().parent == shipped_dir("profiles").resolve()
    if args.json:
        print(json.dumps(s, sort_keys=True))
        return 0
    from rich.table import Table

    from .main import _console

    con = _console()
    con.print(f"[bold]{args.device}[/]: {s['rows']} rows ({s['architectures']} "
              f"architectures) in {s['folder']} "
              f"({'the shipped profile' if s['shipped'] else 'this workspace'}) "
              f"({', '.join(f'{v} {k}' for k, v in s['status'].items())}); "
              f"{s['first']} .. {s['last']}")
    con.print(f"formats {', '.join(s['formats'])}; runtimes {', '.join(s['runtimes'])}; "
              f"graphs {s['graphs']}; median CV of runs "
              f"{(s['median_cv'] or 0):.1%}")
    t = Table(title="p50 latency per call by encoder (measured; repeats: their median)")
    for col in ("encoder", "archs", "rows", "median ms", "min ms", "max ms",
                "median normalised ms"):
        t.add_column(col, justify="right" if col != "encoder" else "left")
    for fam, v in s["by_encoder"].items():
        norm = v["norm_p50_ms_median"]
        t.add_row(fam, str(v["n"]), str(v["rows"]), f"{v['p50_ms_median']:.2f}",
                  f"{v['p50_ms_min']:.2f}",
                  f"{v['p50_ms_max']:.2f}", f"{norm:.2f}" if norm is not None else "-")
    con.print(t)
    if s["problems"]:
        con.print("not ok (numbers shown as N):")
    for reason, n in s["problems"].items():
        con.print(f"  {n} x {reason}", markup=False)
    return 0


class _DevicesHelp(argparse.Action):
    """-h/--help for `hwnas devices`: lists the adapter options, which means
    importing every adapter -- done only when this help is asked for, not on
    every start of the command line."""

    def __init__(self, option_strings: list[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show this help message and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        parser.epilog = DEVICES_EPILOG + _adapter_options_help()
        parser.print_help()
        parser.exit()


def add_parsers(sub: Any) -> None:
    from hwnas.export.formats import FORMATS

    s = sub.add_parser("devices", help="device files and whether each is reachable now",
                       formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False,
                       description="List every device (shipped and in <workspace>/devices/) "
                                   "with its adapter and format, and whether it can be used "
                                   "now -- if not, why, in one line.",
                       epilog=DEVICES_EPILOG)
    s.add_argument("-h", "--help", action=_DevicesHelp)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.set_defaults(func=cmd_devices)

    s = sub.add_parser("profile", help="measure sampled architectures on a device",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Sample architectures, export each in the device's format, "
                                   "measure per-chunk (streaming) or per-utterance latency on "
                                   "the device, and store one row per architecture.",
                       epilog=PROFILE_EPILOG)
    s.add_argument("action", nargs="?", choices=("run", "show"), default="run",
                   help="run (default) or show what is stored")
    s.add_argument("--device", required=True, metavar="NAME", help="device name (hwnas devices)")
    s.add_argument("--n", type=int, metavar="N", help="architectures to have measured in total")
    s.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    s.add_argument("--space", metavar="FILE", help="TOML file overriding the space's choices")
    s.add_argument("--format", choices=[f for f in FORMATS] + ["torch"], metavar="FORMAT",
                   help="override the device's format")
    s.add_argument("--warmup-runs", type=int, dest="warmup_runs", help="override the plan")
    s.add_argument("--min-runs", type=int, dest="min_runs", help="override the plan")
    s.add_argument("--min-seconds", type=float, dest="min_seconds", help="override the plan")
    s.add_argument("--keep-models", action="store_true",
                   help="keep exported models under <workspace>/runs/profile-models/")
    s.add_argument("--retry-failed", action="store_true",
                   help="measure again the architectures stored as failed")
    s.add_argument("--repeats", type=int, default=1, metavar="R",
                   help="independent measurements per architecture (default 1); pass 2 "
                        "starts after pass 1 has measured all N, and the predictor uses "
                        "the median of the repeats as its label")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_profile)
