"""`hwnas supernet`: train the weight-sharing supernets a search scores
architectures with (`hwnas search --cer-source supernet`), list them, and
score one architecture with inherited weights."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import (
    CLIError,
    add_corpus_args,
    corpus_splits,
    open_corpus,
    parse_budget,
    read_arch,
    read_space,
    workspace,
)
from .interrupt import interrupted_status
from .options import COUNT, POSITIVE, SEED, add_device_args

EPILOG = """examples:
  hwnas supernet train --family conformer --budget 60m     one family, 60 CPU-minutes
  hwnas supernet train --family all --budget 2h            every family, 2h shared equally
  hwnas supernet train --family lstm --budget 20m --space narrow.toml --langs en,es
  hwnas supernet train --budget 30m --streaming --max-delay 500
                                          the supernets `make search`'s command then uses
                                          with --cer-source supernet
  hwnas supernet list
  hwnas supernet score --preset conformer_xs               dev CER, inherited weights
  hwnas supernet score arch.json --finetune 30s            ... after a 30 CPU-s fine-tune
  hwnas supernet score arch.json --utts 100                ... on the first 100 dev utterances

One supernet per encoder family holds the weights of every architecture of
that family in the space (--space narrows it, and --streaming and --max-delay
narrow it as `hwnas search` does, so its training goes to the architectures
that search explores): layers, width, heads, FFN,
kernel and attention variant share weights; each stem (front-end, filters,
subsampling), convolution causality and decoder type has its own. Every step
trains the largest, the smallest and a random subnet of a random context
(the sandwich rule), the smaller two distilled from the largest, with random
streaming chunk sizes and left contexts (dynamic chunk training).

Budgets are CPU time on one thread. A run saves a snapshot every CPU-minute
and on Ctrl-C: the same command continues it, and a larger budget continues
a finished one. Supernets live in <workspace>/supernets/<family>-<space and
corpus hash>-s<seed>/ (supernet.pt: a plain state dict, read without pickle).
"""


def _families(args: argparse.Namespace, space: Any) -> list[str]:
    known = list(space.choices("encoder"))
    if args.family == "all":
        return known
    wanted = [f.strip() for f in args.family.split(",") if f.strip()]
    if not wanted:
        raise CLIError(f"--family: name one or more of {', '.join(known)}, or all")
    bad = [f for f in wanted if f not in known]
    if bad:
        raise CLIError(f"--family {','.join(bad)}: not in the space; one of "
                       f"{', '.join(known)} or all")
    return wanted


def _space(args: argparse.Namespace) -> Any:
    """The space of --space, narrowed by --streaming and --max-delay as a search's."""
    from hwnas.asr.delay import narrow

    try:
        return narrow(read_space(args), args.streaming, args.max_delay)[0]
    except ValueError as e:
        raise CLIError(str(e)) from None


def cmd_train(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hwnas.asr.supernet.workspace import train_family
    from hwnas.nn.fit import resolve_precision, train_device

    torch.set_num_threads(1)
    device = train_device(args.train_device)
    precision = resolve_precision(args.precision, device)
    clock = "CPU s" if device.type == "cpu" else "device s"
    space = _space(args)
    families = _families(args, space)
    total = parse_budget(args.budget)
    share = total / len(families)
    ws = workspace(args)
    err = Console(stderr=True)
    corpus = open_corpus(args, ws)
    if not args.json:
        err.print("corpus and features (computed and cached on first use) ...")
    corpus.prepare()
    results = []
    for family in families:
        fam = space.with_choices({"encoder": [family]})
        for fe in fam.choices("frontend"):
            for nf in fam.choices("n_filters"):
                corpus_splits(corpus, fe, nf, err)
        progress = Progress(TextColumn(f"[bold]supernet {family}"), BarColumn(),
                            TextColumn("{task.completed:.0f}/{task.total:.0f} " + clock),
                            TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                            console=err, transient=args.json)
        with progress:
            task = progress.add_task("train", total=share, info="")

            def on_step(step: int, cpu: float, losses: dict, task: Any = task,
                        progress: Any = progress) -> None:
                progress.update(task, completed=min(cpu, share),
                                info=f"step {step} loss largest {losses['largest']:.3f} "
                                     f"smallest {losses['smallest']:.3f}")

            try:
                folder, info = train_family(ws, family, space, corpus, share, args.seed,
                                            on_step=on_step, say=err.print,
                                            device=str(device), precision=precision)
            except KeyboardInterrupt as e:
                progress.stop()
                err.print("interrupted; the supernet's snapshot is saved: the same command "
                          "continues it", highlight=False)
                return interrupted_status(e)
        last = info["curve"][-1] if info["curve"] else {}
        results.append({"family": family, "folder": str(folder), "steps": info["steps"],
                        "cpu_seconds": info["cpu_seconds"], "params": info["params"],
                        "dev_cer_largest": last.get("dev_cer_largest"),
                        "dev_cer_smallest": last.get("dev_cer_smallest")})
        if not args.json:
            print(f"{family}: {info['steps']} steps in {info['cpu_seconds']:.0f} {clock}, "
                  f"{info['params'] / 1e6:.1f} M weights; dev CER of the largest "
                  f"{last.get('dev_cer_largest', float('nan')):.3f}, smallest "
                  f"{last.get('dev_cer_smallest', float('nan')):.3f} (first 100 dev "
                  f"utterances); saved {folder}")
    if args.json:
        print(json.dumps(results, sort_keys=True))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    import sys

    from hwnas.asr.supernet.workspace import INFO_SHAPE
    from hwnas.state import StateError, read_json

    root = workspace(args) / "supernets"
    rows = []
    for info_file in sorted(root.glob("*/info.json")):
        try:
            info = read_json(info_file, INFO_SHAPE)
        except StateError as e:
            print(f"skipped: {e}", file=sys.stderr)
            continue
        rows.append({"folder": str(info_file.parent), "family": info.get("family"),
                     "steps": info.get("steps"), "cpu_seconds": info.get("cpu_seconds"),
                     "corpus": info.get("corpus")})
    if args.json:
        print(json.dumps(rows, sort_keys=True))
    elif not rows:
        print(f"no supernets in {root}; train one: hwnas supernet train --family conformer "
              "--budget 30m")
    for r in rows if not args.json else []:
        print(f"{r['family']:<12} {r['steps']:>6} steps  {r['cpu_seconds']:>7.0f} CPU s  "
              f"{r['folder']}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from hwnas.asr.supernet.score import score
    from hwnas.asr.supernet.workspace import held_supernet, open_family, supernet_dir

    torch.set_num_threads(1)
    arch = read_arch(args)
    space = _space(args)
    ws = workspace(args)
    err = Console(stderr=True)
    corpus = open_corpus(args, ws)
    folder = held_supernet(ws, arch.encoder, (space, read_space(args)), corpus.description,
                           args.seed)
    if folder is None:
        looked = supernet_dir(ws, arch.encoder, space, corpus.description, args.seed)
        raise CLIError(f"no {arch.encoder} supernet for this space and corpus in {ws} "
                       f"(looked for {looked}); train one: hwnas supernet train --family "
                       f"{arch.encoder} --budget 30m")
    net = open_family(folder)
    finetune = parse_budget(args.finetune) if args.finetune else 0.0
    sp = corpus_splits(corpus, arch.frontend, arch.n_filters, err)
    r = score(net, arch, sp, corpus.tokenizer, finetune_cpu=finetune, seed=args.seed,
              dev_utts=args.utts)
    r = {"arch_id": arch.id, "supernet": str(folder), **r}
    if args.json:
        print(json.dumps(r, sort_keys=True))
    else:
        print(f"{arch.id} {arch.encoder}/{arch.decoder}: dev CER {r['cer']:.3f} "
              f"WER {r['wer']:.3f} on {r['utts']} dev utterances ({r['source']}, "
              f"{r['steps']} fine-tuning steps, {r['cpu_s']:.1f} CPU s)")
    return 0


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("supernet", help="weight-sharing supernets: train, list, score",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train the elastic supernets with which a search scores "
                                   "an architecture in about a second (inherited weights) "
                                   "before training the best stand-alone.", epilog=EPILOG)
    ss = s.add_subparsers(dest="supernet_command", metavar="ACTION", required=True)

    def common(p: Any) -> None:
        p.add_argument("--space", metavar="FILE", help="TOML narrowing the space's choices")
        p.add_argument("--streaming", action="store_true",
                       help="streaming architectures only, as hwnas search --streaming")
        p.add_argument("--max-delay", dest="max_delay", type=POSITIVE, metavar="MS",
                       help="only the chunks and look-aheads hwnas search --max-delay keeps")
        add_corpus_args(p)
        p.add_argument("--seed", type=SEED, default=0, help="training seed (default 0)")
        p.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
        p.add_argument("--json", action="store_true", help="machine-readable output")

    t = ss.add_parser("train", help="train (or continue) supernets",
                      formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    t.add_argument("--family", default="all",
                   help="encoder family, several (comma-separated) or all (default)")
    t.add_argument("--budget", required=True,
                   help="CPU time in all (device time on a GPU), shared equally by the "
                        "families: 30m, 2h")
    add_device_args(t)
    common(t)
    t.set_defaults(func=cmd_train)
    lst = ss.add_parser("list", help="the supernets in the workspace")
    lst.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=cmd_list)
    sc = ss.add_parser("score", help="dev CER of an architecture with inherited weights")
    sc.add_argument("arch", nargs="?", metavar="ARCH.json", help="architecture JSON, or - ")
    sc.add_argument("--preset", metavar="NAME", help="a named preset instead")
    sc.add_argument("--finetune", metavar="BUDGET",
                    help="fine-tune the inherited weights this much CPU time first (30s)")
    sc.add_argument("--utts", type=COUNT, metavar="N",
                    help="score on the first N dev utterances only (default: all)")
    common(sc)
    sc.set_defaults(func=cmd_score)
