"""`hwnas profile`: measure sampled architectures on a device, and show what
a profile holds."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import console, measure_with_progress, plan_overrides, read_space, workspace
from ._executor import add_executor_arg, open_executor
from .interrupt import interrupted_status
from .options import COUNT, COUNT0, NONNEGATIVE, SEED

PROFILE_EPILOG = """examples:
  hwnas profile --device cpu --n 200 --seed 0      measure 200 sampled architectures
  hwnas profile --device cpu --n 1000 --seed 0     later: adds the next 800, keeps the 200
  hwnas profile --device pixel6 --n 50 --json      a phone over ADB
  hwnas profile show --device cpu                  what is stored
  hwnas profile --device pixel6 --phones 'pixel6-*' --executor ray --n 200
                                                   one profile, measured on every pixel6-*
                                                   phone of the lab's Ray cluster

Rows go to <workspace>/profiles/<device>/ (Parquet shards + manifest.json).
Interrupt at any time (Ctrl-C, kill -9): rerun the same command to continue;
no row is lost or measured twice. With --phones, a phone that is lost gives
its work to the others; on a Ray cluster the run waits for a lost phone
(up to 10 min) when it was the last. An architecture that fails to export or run
is stored with its reason (--retry-failed tries those again).
"""


def cmd_profile(args: argparse.Namespace) -> int:
    if args.action == "show":
        return cmd_profile_show(args)
    from hwnas.adapters import DeviceUnavailable
    from hwnas.adapters.devicefile import load_device, matching_devices
    from hwnas.profiling.profiler import ProfileRun

    if args.n is None or args.n < 1:
        raise ValueError("--n must be a positive number of architectures")
    if args.repeats < 1:
        raise ValueError("--repeats must be >= 1")
    ws = workspace(args)
    spec = load_device(args.device, ws)
    if args.ops:
        from hwnas.workflows.profile import check_ops_device

        check_ops_device(spec)      # before any work
    space = read_space(args)
    run = ProfileRun(spec, ws, args.n, args.seed, space, fmt=args.format,
                     plan=plan_overrides(args, spec.plan), keep_models=args.keep_models,
                     retry_failed=args.retry_failed, repeats=args.repeats,
                     phones=matching_devices(args.phones, ws, like=spec)
                     if args.phones else None,
                     say=lambda line: print(f"hwnas: {line}", file=sys.stderr, flush=True),
                     executor=open_executor(args), task=args.task)
    try:
        rows, counts = measure_with_progress(run, f"profiling {spec.name}", quiet=args.json)
    except KeyboardInterrupt as e:
        print(f"hwnas: interrupted; {e.args[0] if e.args else 0} new rows stored. Rerun the "
              "same command to continue.", file=sys.stderr)
        return interrupted_status(e)
    except DeviceUnavailable as e:
        print(f"hwnas: error: {e}. {getattr(e, 'stored', 0)} new rows stored; rerun the "
              "same command to continue.", file=sys.stderr)
        return 1
    finally:
        run.executor.close()
    folder = run.folder
    summary = {"device": spec.name, "profile": str(folder), "new_rows": len(rows),
               "stored_rows": run.stored_rows, "ok": counts["ok"], "flagged": counts["flagged"],
               "failed": counts["failed"]}
    if args.ops:
        from hwnas.workflows.profile import block_tables

        summary["ops"] = block_tables(rows, spec)
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
    from .bench import _print_blocks

    for t in summary.get("ops", []):
        print(f"{t['arch_id']} ({t['encoder']}): where the time goes ({t['source']})")
        _print_blocks(console(), t["blocks"], t.get("by_order_share"))
    return 0


def cmd_profile_show(args: argparse.Namespace) -> int:
    from hwnas.paths import shipped_dir
    from hwnas.profiling.store import open_profile, profile_name
    from hwnas.workflows.profile import profile_summary

    store = open_profile(profile_name(args.device, args.task), workspace(args))
    for note in store.notes:
        print(f"hwnas: {note}", file=sys.stderr)
    s = profile_summary(store.rows())
    s["folder"] = str(store.folder)
    s["shipped"] = store.folder.resolve().parent == shipped_dir("profiles").resolve()
    if args.json:
        print(json.dumps(s, sort_keys=True))
        return 0
    from rich.table import Table

    con = console()
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


def add_parsers(sub: Any) -> None:
    from hwnas.adapters import runnable_formats
    from hwnas.tasks import names as task_names

    s = sub.add_parser("profile", help="measure sampled architectures on a device",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Sample architectures, export each in the device's format, "
                                   "measure per-chunk (streaming) or per-utterance latency on "
                                   "the device, and store one row per architecture.",
                       epilog=PROFILE_EPILOG)
    s.add_argument("action", nargs="?", choices=("run", "show"), default="run",
                   help="run (default) or show what is stored")
    s.add_argument("--device", required=True, metavar="NAME", help="device name (hwnas devices)")
    s.add_argument("--n", type=COUNT, metavar="N", help="architectures to have measured in total")
    s.add_argument("--seed", type=SEED, default=0, help="sampling seed (default 0)")
    s.add_argument("--task", choices=task_names(), default="asr",
                   help="asr (default): speech recognisers; tts: TTS acoustic models, "
                        "stored as the profile <device>.tts (any registered task: "
                        "<device>.<task>)")
    s.add_argument("--space", metavar="FILE", help="TOML file overriding the space's choices")
    s.add_argument("--format", choices=runnable_formats(), metavar="FORMAT",
                   help="override the device's format")
    s.add_argument("--warmup-runs", type=COUNT0, dest="warmup_runs", help="override the plan")
    s.add_argument("--min-runs", type=COUNT, dest="min_runs", help="override the plan")
    s.add_argument("--min-seconds", type=NONNEGATIVE, dest="min_seconds", help="override the plan")
    s.add_argument("--ops", action="store_true",
                   help="where each new architecture's time goes, per block (ONNX Runtime's "
                        "profiler on this host's CPU)")
    s.add_argument("--keep-models", action="store_true",
                   help="keep exported models under <workspace>/runs/profile-models/")
    s.add_argument("--retry-failed", action="store_true",
                   help="measure again the architectures stored as failed")
    add_executor_arg(s, "exports and measurements")
    s.add_argument("--phones", metavar="PATTERN",
                   help="device names (globs, comma-separated) of interchangeable phones that "
                        "share the measurements of this profile; each row records which one "
                        "and which host measured it (default: the device itself)")
    s.add_argument("--repeats", type=COUNT, default=1, metavar="R",
                   help="independent measurements per architecture (default 1); pass 2 "
                        "starts after pass 1 has measured all N, and the predictor uses "
                        "the median of the repeats as its label")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_profile)
