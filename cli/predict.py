"""`hwnas predict`: predicted latency of architectures on a device."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import read_archs, workspace

PREDICT_EPILOG = """examples:
  hwnas predict --device cpu --preset conformer_s
  hwnas predict --device cpu arch.json --json
  hwnas space sample --n 1000 --json | hwnas predict --device cpu - --json

Every figure printed is a prediction, labelled as one; measure with
`hwnas profile --device D` to get a measured latency.

On a host CPU device (cpu, cpu-torch ...) the prediction is exactly what
`hwnas search` would use on this host: the predictor corrected by this host's
spot check. Where this host has none yet, it is run first (about 1-2 minutes
of measuring, --spot-budget; kept for every later command); --no-spot-check
predicts without it, labelled UNCORRECTED.
"""


def _fmt_ms(x: float) -> str:
    return f"{x:.3f}" if x < 1 else f"{x:.2f}"


def cmd_predict(args: argparse.Namespace) -> int:
    from hwnas.asr import preset
    from hwnas.workflows.target import describe_correction, target_predictor

    from ._common import measure_with_progress, parse_budget

    if bool(args.preset) == bool(args.arch):
        raise ValueError("give ARCH.json (one object or JSON lines; - for stdin) or --preset")
    archs = [preset(args.preset)] if args.preset else read_archs(args.arch)
    ws = workspace(args)
    # ratios to the reference workload x this host's reference time, corrected
    # by this host's spot check (run now where there is none, unless told not to)
    tl = target_predictor(args.device, ws, None, check=not args.no_spot_check,
                          budget_s=parse_budget(args.spot_budget), measure=lambda run:
                          measure_with_progress(run, "spot check: measuring on this host",
                                                quiet=args.json),
                          say=lambda line: print(line, file=sys.stderr))
    folder, model, ref = tl.where, tl.predictor, tl.reference
    uncorrected = tl.corrected is False   # a host CPU without its spot check
    ratio = model.predict(archs) if model.relative else None
    pred = model.predict_ms(archs, ref["ms"] if ref else None)
    card = model.card
    about = {"predictor": str(folder), "device": args.device,
             "reference_ms": ref["ms"] if ref else None,
             "reference": ref and {k: ref[k] for k in ("ms", "ci_lo", "ci_hi", "measured",
                                                       "cached")},
             "runtime": card.get("runtime"), "train_size": card.get("train_size"),
             "adapted_from": (card.get("adaptation") or {}).get("from"),
             "heldout_within_10pct": (card.get("heldout") or {}).get("within_10pct"),
             "corrected": tl.corrected, "spot_check": tl.spot_check and {
                 k: tl.spot_check[k] for k in ("n", "noise", "loo_median_abs_error", "stopped",
                                               "spent_s")}}
    from hwnas.asr import default_space, delay

    space = default_space()   # the space the shipped predictors were trained on
    results = []
    for i, (a, p) in enumerate(zip(archs, pred)):
        results.append({"arch_id": a.id, "encoder": a.encoder, "decoder": a.decoder,
                        "graph": a.graph,
                        "predicted_p50_ms": float(p), "predicted_rtf": delay.rtf(a, float(p)),
                        "predicted_ratio": float(ratio[i]) if ratio is not None else None,
                        "extrapolated": not space.contains(a),
                        "latency_source": "predicted, uncorrected" if uncorrected
                        else "predicted"})
    if args.json:
        print(json.dumps({"predictions": results, "card": about}, sort_keys=True))
        return 0
    label = "predicted, UNCORRECTED for this host, not measured" if uncorrected else \
        "predicted, not measured"
    for r in results:
        per = "per chunk" if r["graph"] == "chunk" else "per 4.8 s utterance"
        rel = (f"{r['predicted_ratio']:.4f} x reference, " if r["predicted_ratio"] is not None
               else "")
        print(f"{r['arch_id']} {r['encoder']}/{r['decoder']}: predicted p50 "
              f"{_fmt_ms(r['predicted_p50_ms'])} ms {per} ({rel}RTF "
              f"{r['predicted_rtf']:.4f}, {label})"
              + (" EXTRAPOLATED: outside the space's choices the predictor was trained on"
                 if r["extrapolated"] else ""))
    if ref is not None:
        from hwnas.predict.calibration import describe

        print(f"ms = ratio x {describe(ref)}")
        print(f"corrected for this host: {describe_correction(tl.spot_check)}"
              if tl.corrected else "UNCORRECTED: this host has no spot check yet (run "
              "without --no-spot-check to make one)")
    acc = about["heldout_within_10pct"]
    print(f"predictor: {about['predictor']} ({about['runtime']}, trained on "
          f"{about['train_size']} measured architectures"
          + (f", adapted from {about['adapted_from']}" if about["adapted_from"] else "")
          + (f"; {acc:.0%} of held-out predictions within ±10%" if acc is not None else "")
          + ")")
    return 0


def add_parsers(sub: Any) -> None:
    def common(s: argparse.ArgumentParser) -> None:
        s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
        s.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser("predict", help="predicted latency of architectures on a device",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Predict the p50 latency of one device-graph call (a chunk "
                                   "for streaming architectures, a 4.8 s utterance otherwise) "
                                   "with the device's predictor.",
                       epilog=PREDICT_EPILOG)
    s.add_argument("arch", nargs="?", metavar="ARCH.json",
                   help="one architecture (JSON object) or many (JSON lines); - for stdin")
    s.add_argument("--preset", metavar="NAME", help="a named preset instead")
    s.add_argument("--device", required=True, metavar="NAME")
    s.add_argument("--no-spot-check", action="store_true", dest="no_spot_check",
                   help="on a host CPU without a spot check yet: predict without one "
                        "(labelled UNCORRECTED) instead of measuring first")
    s.add_argument("--spot-budget", dest="spot_budget", default="2m", metavar="TIME",
                   help="measuring time at most for a spot check run now (default 2m)")
    common(s)
    s.set_defaults(func=cmd_predict)
