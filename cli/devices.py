"""`hwnas devices`: the device files, and whether each can be used now."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import console, workspace

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


def _adapter_options_help() -> str:
    try:  # `hwnas --help` must work before the dependencies are installed
        from hwnas.adapters import adapter_class, registry
    except ImportError as e:
        return f"  (listed once hwnas's dependencies are installed; missing: {e.name})"

    out = []
    for name in registry():
        cls = adapter_class(name)
        out.append(f"  {name}:")
        for opt, (default, text) in cls.OPTIONS.items():
            out.append(f"    {opt:<20} {text} (default {default!r})")
    return "\n".join(out)


def cmd_cluster(args: argparse.Namespace) -> int:
    """Every phone the cluster's nodes advertise, and every Android device
    file of this workspace that no node advertises."""
    from hwnas.adapters.devicefile import all_devices
    from hwnas.execution.ray import connect
    from hwnas.lab import cluster_devices

    ray = connect(args.address)
    rows = cluster_devices(ray)
    ray.shutdown()
    seen = {r["device"] for r in rows}
    rows += [{"device": d.name, "host": None, "node_ip": None, "node_id": None,
              "state": "not advertised: is `hwnas lab join` running where it is attached?"}
             for d in all_devices(workspace(args))
             if not isinstance(d, tuple) and d.adapter == "android" and d.name not in seen]
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return 0
    from rich.table import Table

    t = Table(title=f"phones of the cluster at {args.address}")
    for col in ("device", "bench host", "node", "state"):
        t.add_column(col, overflow="fold")
    for r in rows:
        colour = {"free": "green", "busy": "yellow"}.get(r["state"], "red")
        t.add_row(r["device"], r["host"] or "-", r["node_ip"] or "-",
                  f"[{colour}]{r['state']}[/]")
    console().print(t)
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    if args.cluster:
        return cmd_cluster(args)
    from hwnas.adapters import DeviceError
    from hwnas.adapters.devicefile import all_devices

    rows = []
    for d in all_devices(workspace(args)):
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

    t = Table(title="devices")
    for col in ("device", "adapter", "format", "reachable", "description / reason"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(r["name"], r["adapter"] or "?", r["format"] or "?",
                  "[green]yes[/]" if r["reachable"] else "[red]no[/]",
                  escape(r["description"]) if r["reachable"] else
                  f"{escape(r['description'])}\n[red]{escape(r['reason'])}[/]")
    console().print(t)
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
    s = sub.add_parser("devices", help="device files and whether each is reachable now",
                       formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False,
                       description="List every device (shipped and in <workspace>/devices/) "
                                   "with its adapter and format, and whether it can be used "
                                   "now -- if not, why, in one line.",
                       epilog=DEVICES_EPILOG)
    s.add_argument("-h", "--help", action=_DevicesHelp)
    s.add_argument("--cluster", action="store_true",
                   help="every phone of the lab's Ray cluster: its bench host, and free, busy "
                        "or unreachable")
    s.add_argument("--address", default="auto", metavar="auto|HOST:PORT",
                   help="with --cluster: the cluster's head (default auto)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.set_defaults(func=cmd_devices)
