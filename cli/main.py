"""hwnas command line. Thin: parse arguments, call hwnas, print.

Every error the user can cause (bad JSON, unknown field, impossible
combination, unwritable output, failed conversion) ends as one line on
stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import hwnas

EPILOG = """examples:
  hwnas space show                     the decisions and their choices
  hwnas space count                    exact number of valid architectures
  hwnas space sample --n 5 --seed 7 --json > archs.jsonl
  hwnas space presets                  hand-designed baselines
  hwnas stats --preset conformer_xs    parameters and FLOPs
  hwnas export arch.json --format tflite-int8 --out exported/
  hwnas devices                        device files; reachable now, or why not
  hwnas profile --device cpu --n 100   measure 100 sampled architectures (resumable)
  hwnas profile show --device cpu      what a profile holds
  hwnas predictor train --device cpu   latency predictor from the profile (XGBoost)
  hwnas predictor adapt --from cpu --device cpu-torch --n 20
  hwnas predict --device cpu --preset conformer_s
  hwnas data build --langs en,es,de         the built-in synthetic speech corpus
  hwnas train --preset conformer_xs --budget 3m   train; learning curve, CER/WER
  hwnas train --preset conformer_xs --budget 30m --train librispeech:DIR --dev kaldi:DIR
  hwnas score runs/train/RUN --test librispeech:DIR   CER/WER of a saved run
  hwnas search --target cpu --streaming --max-latency 2 --cer-budget 40s,2m
  hwnas report hwnas                        figures and HTML of a study
"""


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def _space(args: argparse.Namespace):
    from hwnas.space import SearchSpace, default_space

    return SearchSpace.from_toml(args.space) if getattr(args, "space", None) else default_space()


def _read_arch(args: argparse.Namespace):
    from hwnas.space import ArchConfig, preset

    if getattr(args, "preset", None):
        if args.arch:
            raise CLIError("give either ARCH.json or --preset, not both")
        return preset(args.preset)
    if not args.arch:
        raise CLIError("give an architecture: ARCH.json (or - for stdin) or --preset NAME")
    if args.arch == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(args.arch).read_text()
        except FileNotFoundError:
            raise CLIError(f"architecture file not found: {args.arch}") from None
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
            raise CLIError(f"cannot read {args.arch}: {e}") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and all(ln.lstrip().startswith("{") for ln in lines):
        try:
            json.loads(text)
        except json.JSONDecodeError:
            raise CLIError(f"{args.arch} holds {len(lines)} JSON lines; give one architecture "
                           "(e.g. `head -n 1`)") from None
    try:
        return ArchConfig.from_json(text)
    except ValueError as e:
        raise CLIError(f"{args.arch}: {e}") from None


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=True))


def _console():
    from rich.console import Console

    # piped output (logs, CI) gets a wide table rather than rich's 80 columns
    return Console() if sys.stdout.isatty() else Console(width=160)


# --- space --------------------------------------------------------------------------
def cmd_space_show(args: argparse.Namespace) -> int:
    space = _space(args)
    if args.json:
        _print_json({"decisions": space.describe(), "count": space.count()})
        return 0
    from rich.table import Table

    t = Table(title=f"search space: {space.count():,} valid architectures")
    for col in ("decision", "choices", "meaning", "rule"):
        t.add_column(col, overflow="fold")
    for d in space.describe():
        t.add_row(d["name"], ", ".join(map(str, d["choices"])), d["help"], d["rule"] or "")
    _console().print(t)
    return 0


def cmd_space_count(args: argparse.Namespace) -> int:
    n = _space(args).count()
    if args.json:
        _print_json({"count": n})
    else:
        print(n)
    return 0


def cmd_space_presets(args: argparse.Namespace) -> int:
    from hwnas.space import preset, preset_description, preset_names

    rows = [{"name": n, "id": preset(n).id, "description": preset_description(n),
             "arch": preset(n).to_dict()} for n in preset_names()]
    if args.json:
        for r in rows:
            _print_json(r)
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
    con = _console()
    con.print(t)
    for r in rows:
        con.print(f"[bold]{r['name']}[/]: {r['description']}")
    return 0


def cmd_space_sample(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise CLIError("--n must be at least 1")
    archs = _space(args).sample_distinct(args.n, args.seed)
    if args.json:
        for a in archs:
            _print_json({"id": a.id, **a.to_dict()})
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
    _console().print(t)
    return 0


# --- stats / export --------------------------------------------------------------------
def cmd_stats(args: argparse.Namespace) -> int:
    from hwnas.models.stats import model_stats

    arch = _read_arch(args)
    st = model_stats(arch)
    if args.json:
        _print_json({"id": arch.id, **st.to_dict()})
    else:
        per = "per chunk" if st.graph == "chunk" else "per utterance (4.8 s)"
        print(f"{arch.id}: {st.params:,} parameters ({st.graph_params:,} in the device "
              f"graph), {st.flops / 1e6:,.1f} MFLOPs {per}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hwnas.export import ExportError, export

    arch = _read_arch(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    try:
        art = export(arch, args.format, out, weights=args.weights, seed=args.seed,
                     check=not args.no_check)
    except ExportError as e:
        raise CLIError(f"export of {arch.id} failed: {e}") from None
    if args.json:
        _print_json(art.to_dict())
        return 0
    line = f"{art.format}: {art.path} ({art.size_bytes / 1024:,.0f} KiB, {art.seconds:.1f} s)"
    if art.parity:
        p = art.parity
        line += (f"; vs PyTorch on {p['samples']} held-out inputs: max |diff| "
                 f"{p['max_abs_diff']:.1e}, top-token agreement {p['token_agreement']:.1%}")
    print(line)
    if art.edgetpu:
        r = art.edgetpu
        print(f"Edge TPU: {r['tpu_ops']} ops on the TPU, {r['cpu_ops']} on the CPU")
    for note in art.notes:
        print(f"note: {note}")
    return 0


# --- parser ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from hwnas.export.formats import FORMATS

    p = argparse.ArgumentParser(
        prog="hwnas", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Find speech-recognition architectures that are accurate and fast "
                    "on your hardware.")
    p.add_argument("--version", action="version", version=f"hwnas {hwnas.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

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
    s.add_argument("--n", type=int, default=10, help="how many (default 10)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.set_defaults(func=cmd_space_sample)

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
    s.add_argument("--seed", type=int, default=0, help="initialisation seed (default 0)")
    s.add_argument("--no-check", action="store_true", help="skip the parity check")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_export)

    from . import hil

    hil.add_parsers(sub)
    from . import predict

    predict.add_parsers(sub)
    from . import data

    data.add_parsers(sub)
    from . import train

    train.add_parsers(sub)
    from . import search

    search.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (CLIError, ValueError) as e:
        print(f"hwnas: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        print(f"hwnas: error:{where} {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hwnas: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("hwnas: error: out of memory (an architecture or input too large for this "
              "machine)", file=sys.stderr)
        return 1
    except RecursionError:
        print("hwnas: error: input nested too deeply to read", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
