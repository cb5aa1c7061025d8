"""`hwnas bench`: benchmark model files made anywhere on a device."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import CLIError, console, plan_overrides, workspace
from .options import COUNT, COUNT0, NONNEGATIVE, SEED

EPILOG = """examples:
  a streaming model whose state is fed back from call to call (here Silero-style
  names: input `state` -> output `stateN`, found by the name rule), 32 ms of
  audio per call, a constant sample-rate input:
    hwnas bench vad.onnx --device cpu --shape input=1x512 --value sr=16000 \\
        --audio-ms 32 --lookahead-ms 0

  A vs B: two models interleaved call by call (A B B A ...), each one's ratio
  to the first with a 95% interval from paired blocks:
    hwnas bench small.onnx big.onnx --device cpu --seconds 5

  where the time goes (per operator; per block for hwnas's own exports):
    hwnas bench exported/model.onnx --device cpu --ops

Inputs: declared shapes and dtypes are read from the model. Open dimensions
are set with --shape INPUT=1x512 (or --shape DIM=512 for a named dimension),
constants with --value NAME=16000, whole inputs with --inputs FILE.npz. States
start at zeros; other float inputs get standard normal noise (seed 0); an
integer input without a value is refused, never guessed.

State pairs: an output feeds an input when their shapes and dtypes agree and
the output's name is the input's with new_/next_/out_ before it, _out/_new/
_next/N/n after it, in->out as a name part, or a trailing 0->n (h0 -> hn).
--state IN=OUT adds a pair; --no-state feeds nothing back.

On a phone (an android device file, e.g. pixel6) benchmark_model times the
.tflite: its own cold start, models compared in alternating batches, --ops
from its op profiling; it feeds random inputs, so states are not fed back.

Results go to <workspace>/benches/<UTC time>-<first model>/ (result.json, and
ops-<model>.csv with --ops). Docs: docs/bench.md.
"""


def cmd_bench(args: argparse.Namespace) -> int:
    from hwnas.adapters import DeviceError
    from hwnas.adapters.devicefile import load_device
    from hwnas.bench.run import BenchRequest, bench, save, to_json

    ws = workspace(args)
    spec = load_device(args.device, ws)
    req = BenchRequest(models=args.models, shapes=args.shape or [], values=args.value or [],
                       inputs=args.inputs, states=args.state or [],
                       auto_state=not args.no_state, audio_ms=args.audio_ms,
                       lookahead_ms=args.lookahead_ms, ops=args.ops,
                       compare_seconds=args.seconds, seed=args.seed)
    say = (lambda line: None) if args.json else (
        lambda line: print(f"hwnas: {line}", file=sys.stderr, flush=True))
    try:
        result = bench(spec, req, plan_overrides(args, spec.plan), say=say)
    except DeviceError as e:
        raise CLIError(str(e)) from None
    folder = save(result, ws)
    result["folder"] = str(folder)
    if args.json:
        print(json.dumps(to_json(result), sort_keys=True))
        return 0
    _print(result)
    print(f"saved: {folder}")
    return 0


def _ms(x: float | None) -> str:
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return "-"
    return f"{x:.4f}" if x < 0.1 else f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _ci(d: dict[str, Any], key: str = "p50") -> str:
    return (f"{_ms(d.get(f'{key}_ms', d.get('mean_ms')))} [{_ms(d.get(f'{key}_ci_lo'))}, "
            f"{_ms(d.get(f'{key}_ci_hi'))}]")


def _print(result: dict[str, Any]) -> None:
    from rich.table import Table

    con = console()
    con.print(f"{result['device']}: {result['device_description']} "
              f"({result['runtime']}, {result['threads']} thread(s)); measured, ms per call",
              markup=False, highlight=False)
    t = Table(show_edge=False, pad_edge=False)
    for col in ("model", "format", "load", "first", "p50 [95% CI]", "p90", "p99", "n"):
        t.add_column(col, justify="left" if col in ("model", "format") else "right")
    for m in result["models"]:
        s = m["steady"]
        t.add_row(m["name"], m["format"], _ms(m["cold"]["load_ms"]), _ms(m["cold"]["first_ms"]),
                  _ci(s), _ms(s.get("p90_ms")), _ms(s.get("p99_ms")), str(s["n"]))
    con.print(t)
    for m in result["models"]:
        pairs = [f"{p['input']}<-{p['output']}" for p in m["state_pairs"]]
        shown = ", ".join(pairs[:4]) + (f", ... ({len(pairs)} pairs: result.json)"
                                        if len(pairs) > 4 else "")
        con.print(f"{m['name']}: state fed back: {shown or 'none'}", markup=False,
                  highlight=False)
        fed = {p["input"] for p in m["state_pairs"]}
        for i in [i for i in m["inputs"] if i["name"] not in fed or len(fed) <= 4]:
            con.print(f"  {i['name']} {'x'.join(map(str, i['shape'])) or 'scalar'} {i['dtype']}:"
                      f" {i['source']}", markup=False, highlight=False)
        if m.get("state_note"):
            con.print(f"  state {m['state_note']}", markup=False, highlight=False)
        if m.get("streaming"):
            st = m["streaming"]
            p90 = _ms(st.get("emission_delay_p90_ms"))
            con.print(f"  RTF {st['rtf']:.4f}; emission delay {_ms(st['emission_delay_ms'])} ms "
                      f"(p90 {p90}) = {st['audio_ms']:g} ms audio + {st['lookahead_ms']:g} ms "
                      "look-ahead + compute", markup=False, highlight=False)
        for f in m["flags"]:
            con.print(f"  flag: {f}", markup=False, highlight=False)
        if m.get("ops"):
            _print_ops(con, m["ops"])
    if result.get("comparison"):
        _print_comparison(con, result["comparison"])


def _print_ops(con: Any, table: dict[str, Any]) -> None:
    from rich.table import Table

    if not table["rows"]:
        con.print(f"  ops: {table.get('note')}", markup=False, highlight=False)
        return
    if table.get("mapping"):   # the Edge TPU: where each op runs, no per-op times
        con.print(f"  ops: {table['tpu_ops']} on the Edge TPU, {table['cpu_ops']} on the CPU "
                  f"({table['source']})", markup=False, highlight=False, soft_wrap=True)
        for r in table["rows"]:
            con.print(f"    {r['op_type']:<24} {r['calls']:>4}  {r['node']}", markup=False,
                      highlight=False)
        return
    con.print(f"  where the time goes ({table['source']}), top 10 of {len(table['rows'])} ops:",
              markup=False, highlight=False)
    t = Table(show_edge=False)
    for col in ("op type", "node", "calls", "share", "ms/call"):
        t.add_column(col, justify="right" if col in ("calls", "share", "ms/call") else "left",
                     overflow="ellipsis", max_width=44 if col == "node" else None)
    for r in table["rows"][:10]:
        t.add_row(r["op_type"], r["node"], str(r["calls"]), f"{r['share']:.1%}",
                  f"{r['ms_per_call']:.4f}")
    con.print(t)
    if table.get("blocks"):
        from hwnas.bench.ops import by_kind

        blocks = table["blocks"]
        # a deep model's parts summed over its layers (every layer: result.json)
        _print_blocks(con, by_kind(blocks) if len(blocks) > 14 else blocks,
                      table.get("by_order_share"))


def _print_blocks(con: Any, blocks: list[dict[str, Any]], by_order: float | None = None) -> None:
    """Per-block times and a stacked bar: one letter per block, 80 columns."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    bar = "".join(letters[i % len(letters)] * round(b["share"] * 80)
                  for i, b in enumerate(blocks))
    con.print(f"  [{bar}]", markup=False, highlight=False)
    for i, b in enumerate(blocks):
        con.print(f"  {letters[i % len(letters)]} {b['block']:<40} {b['ms_per_run']:8.4f} ms "
                  f"{b['share']:6.1%}", markup=False, highlight=False)
    if by_order:
        from hwnas.bench.ops import BY_ORDER_NOTE

        con.print(f"  {by_order:.0%} {BY_ORDER_NOTE}", markup=False, highlight=False)


def _print_comparison(con: Any, c: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title="A vs B (interleaved, paired)", show_edge=False)
    for col in ("model", "p50 [95% CI]", "ratio to first [95% CI]", "verdict"):
        t.add_column(col)
    for m in c["models"]:
        ratio = (f"{m['ratio']:.3f} [{m['ratio_ci_lo']:.3f}, {m['ratio_ci_hi']:.3f}]"
                 if "ratio" in m else "1 (reference)")
        t.add_row(m["model"], _ci(m), ratio, m.get("verdict", ""))
    con.print(t)
    import textwrap

    con.print(textwrap.fill(f"method: {c['method']}", 100, subsequent_indent="  "),
              markup=False, highlight=False)


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("bench", help="benchmark model files made anywhere on a device",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Time ONNX, TFLite, TorchScript or torch.export files on a "
                                   "device as a stream runs them (state fed back), under the "
                                   "profiler's rules: cold start, then p50/p90/p99 with 95% "
                                   "intervals; with two or more models, A vs B.",
                       epilog=EPILOG)
    s.add_argument("models", nargs="+", metavar="MODEL", help="model files (format from bytes)")
    s.add_argument("--device", default="cpu", metavar="NAME",
                   help="device name (hwnas devices; default cpu)")
    s.add_argument("--shape", action="append", metavar="NAME=1x512",
                   help="an input's shape, or DIM=N for a named dimension (repeatable)")
    s.add_argument("--value", action="append", metavar="NAME=V",
                   help="a constant input: one number fills it, or numbers joined by commas")
    s.add_argument("--inputs", metavar="FILE.npz", help="whole inputs, by name")
    s.add_argument("--state", action="append", metavar="IN=OUT",
                   help="feed output OUT back into input IN (repeatable)")
    s.add_argument("--no-state", action="store_true", help="do not pair states by the rule")
    s.add_argument("--audio-ms", type=float, dest="audio_ms", metavar="MS",
                   help="audio per call: gives RTF and the emission delay")
    s.add_argument("--lookahead-ms", type=float, default=0.0, dest="lookahead_ms", metavar="MS",
                   help="look-ahead added to the algorithmic delay (default 0)")
    s.add_argument("--ops", action="store_true", help="where the time goes, per operator")
    s.add_argument("--seconds", type=float, default=5.0, metavar="S",
                   help="interleaved A vs B time with two or more models (default 5)")
    s.add_argument("--seed", type=SEED, default=0, help="seed of the noise inputs (default 0)")
    s.add_argument("--warmup-runs", type=COUNT0, dest="warmup_runs", help="override the plan")
    s.add_argument("--min-runs", type=COUNT, dest="min_runs", help="override the plan")
    s.add_argument("--min-seconds", type=NONNEGATIVE, dest="min_seconds", help="override the plan")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_bench)
