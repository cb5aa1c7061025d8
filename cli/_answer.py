"""What `hwnas search` prints at the end of a speech recogniser's search: its
finalists' accuracy, then their latency and delay, then the answer."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ._common import console


def print_result(out: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.table import Table

    from hwnas.asr import ArchConfig, delay

    front, source = out["pareto"], out["latency_source"].upper()
    tests = sorted({k for r in front for k in r.get("tests", {})})
    langs = sorted({k for r in front for k in r.get("cer_by_lang") or {}})
    measure = {"cer_mean": "dev CER (lang mean)", "cer_worst": "dev CER (worst lang)"}.get(
        next((o for o in args.objectives.split(",") if o.startswith("cer")), "cer"), "dev CER")

    def num(v: Any, fmt: str) -> str:
        return format(v, fmt) if v is not None else "-"

    def table(title: str, cols: list[str]) -> Table:
        t = Table(title=title, title_justify="left")
        for c in cols:
            t.add_column(c, justify="left" if c in ("arch", "encoder/decoder") else "right")
        return t

    # two tables, so that each fits a terminal: what it is and how accurate, then how fast
    final = out.get("final_budget")
    unit = "steps" if out.get("budget_unit") == "steps" else "CPU s"
    title = (f"Finalists, {args.target}: the feasible Pareto set and the best baseline, each "
             f"trained {final:g} {unit}" if final else
             f"Pareto front and the best baseline, {args.target}: accuracy (feasible)")
    acc = table(title,
                ["trial", "arch", "encoder/decoder", measure, *[f"dev {k}" for k in langs],
                 *[f"{k} CER" for k in tests],
                 "params", "MB", "verdict"])
    speed = table(f"... and latency on {args.target} ({source}"
                  + (f", predictor {out['predictor']})" if source == "PREDICTED" else ")"),
                  ["trial", *(["rung CER"] if final else []), "chunk ms", "look-ahead ms",
                   "algorithmic ms", "compute p50 ms", "95% CI", "p90 ms", "emission delay ms",
                   "RTF", "predicted ms"])
    for r in front:
        a, d = r["arch"], delay.describe(ArchConfig.from_dict(r["arch"]))
        acc.add_row(f"{r['trial']}*" if r.get("baseline") else str(r["trial"]), r["arch_id"],
                    f"{a['encoder']}/{a['decoder']}", f"{r['cer']:.3f}",
                    *[num((r.get("cer_by_lang") or {}).get(k), ".3f") for k in langs],
                    *[f"{r['tests'][k]['cer']:.3f}" for k in tests],
                    f"{r['params']:,}", f"{r['size_mb']:.2f}", r.get("verdict", "-"))
        speed.add_row(str(r["trial"]), *([num(r.get("rung_cer"), ".3f")] if final else []),
                      num(d["chunk_ms"], ".0f") if a["streaming"] else "full",
                      num(d["lookahead_ms"], ".0f"), num(d["algorithmic_ms"], ".0f"),
                      f"{r['latency_ms']:.3f}", f"{r['latency_ci'][0]:.3f}-"
                      f"{r['latency_ci'][1]:.3f}" if r.get("latency_ci") else "-",
                      num(r.get("p90_ms"), ".2f"), num(r.get("delay_ms"), ".1f"),
                      num(r.get("rtf"), ".4f"), f"{r.get('predicted_ms', r['latency_ms']):.2f}")
    con = console()
    con.print(acc)
    con.print(speed)
    top = (out.get("baseline") or {}).get("arch_id")
    for r in front:
        if r.get("baseline"):
            con.print(f"{r['trial']}*: {'the best' if r['arch_id'] == top else 'a'} baseline, "
                      f"{r['baseline']} (hand-designed, brought into the space; trained like "
                      "any trial)")
    if out["note"]:
        con.print(out["note"])
    if out.get("reference_ms"):
        con.print(f"ms on this host: the predictor's ratios x this host's reference time "
                  f"{out['reference_ms']:.3f} ms")
    for r in front:
        if r.get("note"):
            con.print(f"{r['arch_id']}: {r['note']}")
    for r in out["dropped"]:
        con.print(f"dropped {r['arch_id']}: {r['reason']}")
    best = out["selected"]
    if out.get("versus_baseline"):
        con.print(out["versus_baseline"])
    if best:
        why = (f"the baseline {best['baseline']}" if best.get("baseline") else
               "lowest CER meeting the constraints")
        con.print(f"selected for {args.target}: {best['arch_id']} ({why}): dev CER "
                  f"{best['cer']:.3f}, {best['latency_ms']:.2f} ms "
                  f"compute per call, {best.get('delay_ms', math.nan):.0f} ms emission delay "
                  f"({best['latency_source']})")
        if out["export"]:
            trained = Path(out["export"]).name   # the id with the data's vocabulary filled in
            con.print(f"exported with its model card: {out['export']}"
                      + (f" (id {trained}: {best['arch_id']} as trained, with the training "
                         "data's vocabulary)" if trained != best["arch_id"] else ""))
    elif out["dropped"]:
        con.print(f"verification dropped every candidate ({len(out['dropped'])}: reasons "
                  "above); the study is kept: add trials (the same command with a larger "
                  "--trials), or relax the constraint the measurements missed")
    elif not out["feasible_as_predicted"]:
        low, low_delay = out.get("min_predicted_ms"), out.get("min_predicted_delay_ms")
        con.print(f"nothing was feasible as predicted: none of the {out['trials']} trials "
                  "met the constraints by its predicted figures"
                  + (f" (fastest predicted {low:.3f} ms against --max-latency "
                     f"{args.max_latency:g})" if low is not None and args.max_latency else "")
                  + (f" (shortest predicted emission delay {low_delay:.0f} ms against "
                     f"--max-delay {args.max_delay:g})" if low_delay is not None
                     and args.max_delay else "")
                  + "; relax the constraints or add trials")
    else:
        con.print("no trained trial is on the feasible front yet; add trials")
