"""`hwnas lab join|scan`: a bench host's phones in the lab's Ray cluster."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import workspace
from .options import COUNT0, POSITIVE

LAB_EPILOG = """examples:
  ray start --head --port 6379                      on the lab's head host (once)
  hwnas lab scan                                    which phones this host has now
  hwnas lab join --address 10.0.0.1:6379            on each bench host (keep it running)
  hwnas devices --cluster --address 10.0.0.1:6379   every phone of the lab
  hwnas profile --device pixel6 --phones 'pixel6-*' --executor ray --address 10.0.0.1:6379
  hwnas lab join --address 10.0.0.1:6379 --num-cpus 8 --num-gpus 4
                                                    on a GPU host: trials train there with
  hwnas search --target pixel6 --train-device cuda --executor ray --address 10.0.0.1:6379

A phone is named by its device file in <workspace>/devices/ (serial -> name):
one file per phone, e.g. pixel6-bench2-a.toml with serial = "1A2B3C4D" (a
USB phone, through the adb server if one runs) or "192.168.1.23:5555".
join advertises one Ray resource per present phone (device:NAME) and starts
the node again when phones come or go. The node offers no CPU unless
--num-cpus says so: exports and training run elsewhere, and nothing competes
with a measurement on this host. The same line without hwnas:
  ray start --address HEAD --num-cpus 0 --resources '{"device:NAME": 1}'
(with HWNAS_LAB_WORKSPACE=<this workspace> in its environment).
"""


def cmd_scan(args: argparse.Namespace) -> int:
    from hwnas.lab import scan

    found = scan(workspace(args), args.adb_server)
    if args.json:
        print(json.dumps({"present": found.present, "absent": found.absent,
                          "unknown": found.unknown}, sort_keys=True))
        return 0
    for name, serial in sorted(found.present.items()):
        print(f"{name}: present ({serial})")
    for name, why in sorted(found.absent.items()):
        print(f"{name}: absent: {why}")
    for serial in found.unknown:
        print(f"{serial}: attached, but no device file names it")
    if not (found.present or found.absent or found.unknown):
        print("no Android device files in this workspace, and no phone attached")
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    from hwnas.execution.ray import reachable
    from hwnas.lab import BenchNode

    reachable(args.address)   # a head that does not answer: one line now, not a retry loop

    def say(line: str) -> None:
        print(f"hwnas: {line}", file=sys.stderr, flush=True)

    node = BenchNode(args.address, workspace(args), num_cpus=args.num_cpus,
                     num_gpus=args.num_gpus,
                     node_ip=args.node_ip_address, name=args.name, adb_server=args.adb_server,
                     interval_s=args.interval, say=say)
    import signal

    def leave(*_: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, or a service manager's SIGTERM (a background job may ignore SIGINT)
    signal.signal(signal.SIGINT, leave)
    signal.signal(signal.SIGTERM, leave)
    say(f"joining {args.address} as {node.name}; Ctrl-C to leave")
    try:
        node.run()
    except KeyboardInterrupt:
        say("left the cluster")
        return 130
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("lab", help="bench hosts: this host's phones in the lab's Ray cluster",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=LAB_EPILOG)
    ps = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, fn, text in (("scan", cmd_scan, "which phones this host has now (no cluster)"),
                           ("join", cmd_join, "advertise this host's phones to the cluster, "
                                              "and keep that in step as phones come and go")):
        s = ps.add_parser(name, help=text, description=text, epilog=LAB_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "join":
            s.add_argument("--address", required=True, metavar="HOST:PORT",
                           help="the cluster's head (its `ray start --head` port)")
            s.add_argument("--num-cpus", type=COUNT0, default=0, metavar="N",
                           help="CPUs this node offers for exports and training (default 0)")
            s.add_argument("--num-gpus", type=COUNT0, default=0, metavar="N",
                           help="GPUs this node offers for training (default 0): a GPU host "
                                "of the lab")
            s.add_argument("--node-ip-address", metavar="IP",
                           help="this host's address as the other nodes reach it")
            s.add_argument("--name", metavar="NAME",
                           help="the bench host's name in rows (default: the host name)")
            s.add_argument("--interval", type=POSITIVE, default=5.0, metavar="S",
                           help="seconds between checks for phones (default 5)")
        s.add_argument("--adb-server", default="", metavar="HOST:PORT",
                       help="the adb server to ask (default 127.0.0.1:5037 or "
                            "$ANDROID_ADB_SERVER_PORT)")
        s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
        if name == "scan":
            s.add_argument("--json", action="store_true", help="machine-readable output")
        s.set_defaults(func=fn)
