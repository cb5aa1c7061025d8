"""`hwnas stats` and `hwnas export`: an architecture's size and cost, and its
device graph in a device's format."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._common import CLIError, print_json, read_arch
from .options import SEED


def cmd_stats(args: argparse.Namespace) -> int:
    from hwnas import tasks

    arch = read_arch(args, tuple(tasks.names()))
    info, line = tasks.get(tasks.task_of(arch)).describe(arch)
    if args.json:
        print_json({"id": arch.id, **info})
    else:
        print(f"{arch.id}: {line}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hwnas import tasks
    from hwnas.export import ExportError, export

    arch = read_arch(args, tuple(tasks.names()))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    try:
        art = export(arch, args.format, out, weights=args.weights, seed=args.seed,
                     check=not args.no_check)
    except ExportError as e:
        raise CLIError(f"export of {arch.id} failed: {e}") from None
    if args.json:
        print_json(art.to_dict())
        return 0
    line = f"{art.format}: {art.path} ({art.size_bytes / 1024:,.0f} KiB, {art.seconds:.1f} s)"
    if art.parity:
        p = art.parity
        line += (f"; vs PyTorch on {p['samples']} held-out inputs: max |diff| "
                 f"{p['max_abs_diff']:.1e}")
        if "logits" in art.outputs:   # a recogniser's tokens (a TTS graph writes mels)
            line += f", top-token agreement {p['token_agreement']:.1%}"
    print(line)
    if art.edgetpu:
        r = art.edgetpu
        print(f"Edge TPU: {r['tpu_ops']} ops on the TPU, {r['cpu_ops']} on the CPU")
    for note in art.notes:
        print(f"note: {note}")
    return 0


def add_parsers(sub: Any) -> None:
    from hwnas.export.formats import FORMATS

    def arch_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("arch", nargs="?", metavar="ARCH.json",
                        help="architecture JSON file (one object), or - for stdin")
        sp.add_argument("--preset", metavar="NAME", help="use a named preset instead")

    s = sub.add_parser("stats", help="parameter count and FLOPs of an architecture")
    arch_args(s)
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_stats)

    s = sub.add_parser(
        "export", help="export an architecture's device graph",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export the graph a device runs: the chunk model for streaming "
                    "architectures, the utterance model otherwise. Every export is checked "
                    "against PyTorch on held-out inputs (fp32: max |diff| <= 1e-4; "
                    "quantised: top-token agreement >= 95%).",
        epilog="formats:\n  onnx            ONNX opset 17\n  tflite          TFLite fp32\n"
               "  tflite-dynamic  TFLite dynamic-range (int8 weights)\n"
               "  tflite-int8     TFLite full integer, int8 inputs and outputs\n"
               "  edgetpu         tflite-int8 compiled by edgetpu_compiler (must be on PATH)")
    arch_args(s)
    s.add_argument("--format", required=True, choices=FORMATS, metavar="FORMAT",
                   help="one of: " + ", ".join(FORMATS))
    s.add_argument("--out", required=True, metavar="DIR", help="output folder")
    s.add_argument("--weights", type=Path, metavar="FILE",
                   help="PyTorch state dict to export (default: random initialisation)")
    s.add_argument("--seed", type=SEED, default=0, help="initialisation seed (default 0)")
    s.add_argument("--no-check", action="store_true", help="skip the parity check")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_export)
