"""`hwnas space`: show, count and sample the search space, and its presets."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import CLIError, console, print_json, read_space
from .options import COUNT, SEED


def cmd_space_show(args: argparse.Namespace) -> int:
    space = read_space(args)
    if args.json:
        print_json({"decisions": space.describe(), "count": space.count()})
        return 0
    from rich.table import Table

    t = Table(title=f"search space: {space.count():,} valid architectures")
    for col in ("decision", "choices", "meaning", "rule"):
        t.add_column(col, overflow="fold")
    for d in space.describe():
        t.add_row(d["name"], ", ".join(map(str, d["choices"])), d["help"], d["rule"] or "")
    console().print(t)
    return 0


def cmd_space_count(args: argparse.Namespace) -> int:
    n = read_space(args).count()
    if args.json:
        print_json({"count": n})
    else:
        print(n)
    return 0


def cmd_space_presets(args: argparse.Namespace) -> int:
    from hwnas.asr import preset, preset_description, preset_names

    rows = [{"name": n, "id": preset(n).id, "description": preset_description(n),
             "arch": preset(n).to_dict()} for n in preset_names()]
    if args.json:
        for r in rows:
            print_json(r)
        return 0
    from rich.table import Table

    t = Table(title="presets (hand-designed baselines)")
    for col in ("name", "id", "encoder", "decoder", "mode"):
        t.add_column(col, no_wrap=True)
    for r in rows:
        a = r["arch"]
        mode = f"streaming {a['chunk_ms']} ms" if a["streaming"] else "full context"
        t.add_row(r["name"], r["id"], f"{a['encoder']} {a['num_layers']}x{a['d_model']}",
                  a["decoder"], mode)
    con = console()
    con.print(t)
    for r in rows:
        con.print(f"[bold]{r['name']}[/]: {r['description']}")
    return 0


def cmd_space_sample(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise CLIError("--n must be at least 1")
    archs = read_space(args).sample_distinct(args.n, args.seed)
    if args.json:
        for a in archs:
            print_json({"id": a.id, **a.to_dict()})
        return 0
    from rich.table import Table

    t = Table(title=f"{len(archs)} architectures, seed {args.seed}")
    for col in ("id", "encoder", "attention", "decoder", "layers x dim", "front-end",
                "subsampling", "mode"):
        t.add_column(col)
    for a in archs:
        mode = f"stream {a.chunk_ms} ms" if a.streaming else "full"
        t.add_row(a.id, a.encoder, a.attention or "-", a.decoder,
                  f"{a.num_layers}x{a.d_model}", f"{a.frontend}/{a.n_filters}",
                  a.subsampling, mode)
    console().print(t)
    return 0


def add_parsers(sub: Any) -> None:
    def space_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--space", metavar="FILE",
                        help="TOML file overriding choices: [choices] d_model = [144, 256]")

    space = sub.add_parser("space", help="the search space: show, count, sample, presets",
                           description="Inspect the speech search space.")
    ssub = space.add_subparsers(dest="space_command", metavar="SUBCOMMAND", required=True)
    s = ssub.add_parser("show", help="decisions, choices and rules")
    space_opt(s)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_space_show)
    s = ssub.add_parser("count", help="exact number of distinct valid architectures")
    space_opt(s)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_space_count)
    s = ssub.add_parser("presets", help="named hand-designed baselines")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=cmd_space_presets)
    s = ssub.add_parser("sample", help="N distinct random architectures (deterministic)",
                        description="Sample N distinct valid architectures; the same seed "
                                    "gives the same architectures.")
    space_opt(s)
    s.add_argument("--n", type=COUNT, default=10, help="how many (default 10)")
    s.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=cmd_space_sample)
