"""`hwnas predictor train|eval|adapt|show`: latency predictors learned from
measured profiles."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._common import console, measure_with_progress, read_space, workspace
from ._executor import add_executor_arg, open_executor
from .interrupt import interrupted_status
from .options import COUNT, POSITIVE, SEED

PREDICTOR_EPILOG = """examples:
  hwnas predictor train --device cpu           XGBoost on the cpu profile -> predictors/cpu/
  hwnas predictor eval --device cpu            held-out accuracy, baselines, per family,
                                               leave-one-family-out
  hwnas predictor adapt --from cpu --device cpu-torch --n 20
                                               measure 20 chosen architectures on cpu-torch
                                               and adapt the cpu predictor to it
  hwnas predictor show --device cpu            the model card
  hwnas predictor train --device cpu --task tts   TTS models (profile cpu.tts)
  hwnas predict --device cpu --preset conformer_s

A predictor is two files under <workspace>/predictors/<device>/: model.json
(XGBoost's own format) and card.json (device, runtime, feature schema,
training set, held-out accuracy). The held-out share is a fixed 20% of
architectures chosen by a hash of their id: the same ones on every run.
"""


def _named(args: argparse.Namespace) -> str:
    """The profile and predictor name of ``--device`` for ``--task``."""
    from hwnas.profiling.store import profile_name

    return profile_name(args.device, getattr(args, "task", "asr"))


def _named_all(args: argparse.Namespace, devices: list[str]) -> list[str]:
    from hwnas.profiling.store import profile_name

    return [profile_name(d, getattr(args, "task", "asr")) for d in devices]


def _fitter(args: argparse.Namespace) -> Any:
    from hwnas.workflows.predictor import fitter

    return fitter(objective=args.objective, seed=args.seed, cost_model=not args.no_cost_model,
                  rounds=args.rounds, max_depth=args.max_depth, eta=args.eta)


def _metric_row(name: str, m: dict[str, Any]) -> list[str]:
    from hwnas.predict.metrics import fmt_pct

    return [name, str(m["n"]), fmt_pct(m["within_5pct"]), fmt_pct(m["within_10pct"]),
            fmt_pct(m["rmspe"]), fmt_pct(m["median_ape"]), fmt_pct(m["max_ape"]),
            f"{m['kendall_tau']:.3f}" if m["kendall_tau"] == m["kendall_tau"] else "-",
            f"{m['spearman_rho']:.3f}" if m["spearman_rho"] == m["spearman_rho"] else "-"]


def _metric_table(title: str, rows: list[list[str]]) -> Any:
    from rich.table import Table

    t = Table(title=title)
    for c in ("", "n", "within ±5%", "within ±10%", "RMSPE", "median err", "worst err",
              "Kendall τ", "Spearman ρ"):
        t.add_column(c, justify="left" if not c else "right")
    for r in rows:
        t.add_row(*r)
    return t


def _print_report(rep: dict[str, Any], lofo: dict[str, Any] | None) -> None:

    con = console()
    rows = [_metric_row("predictor (XGBoost)", rep["heldout"]),
            _metric_row("FLOPs-only baseline", rep["baselines"]["flops_only"]),
            _metric_row("params-only baseline", rep["baselines"]["params_only"])]
    con.print(_metric_table(f"held-out architectures ({rep['test_size']} held out, "
                            f"{rep['train_size']} trained on; label {rep['label']})", rows))
    con.print(_metric_table("held out, per encoder family",
                            [_metric_row(f, m) for f, m in rep["per_family"].items()]))
    if lofo:
        con.print(_metric_table("leave-one-encoder-family-out (trained without the family)",
                                [_metric_row(f, m) for f, m in lofo.items()]))
    noise = rep.get("repeat_noise")
    if noise:
        con.print(f"repeat noise (two measurements of one architecture, {noise['archs']} "
                  f"architectures): median {noise['median']:.1%} apart, "
                  f"{noise['within_5pct']:.0%} within 5%, {noise['within_10pct']:.0%} "
                  f"within 10% -- the floor under any predictor's error here")


def cmd_train(args: argparse.Namespace) -> int:
    from hwnas.predict.latency import predictor_dir
    from hwnas.workflows.predictor import install, train_predictor

    ws = workspace(args)
    args.device = _named(args)
    model, rep = train_predictor(args.device, ws, args.label, _fitter(args),
                                 tuple(_named_all(args, args.also or [])))
    out, what = install(model, predictor_dir(ws, args.device), args.replace)
    if args.json:
        print(json.dumps({"predictor": str(out), "installed": what, **model.card},
                         sort_keys=True, default=str))
        return 0
    _print_report(rep, None)
    print(f"{what} ({rep['train_size']} architectures trained on)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from hwnas.predict.evaluate import holdout_report, leave_family_out
    from hwnas.workflows.predictor import profile_data

    args.device = _named(args)
    data = profile_data(args.device, workspace(args), args.label).data
    fit = _fitter(args)
    _, rep = holdout_report(data, fit)
    lofo = None if args.no_lofo else leave_family_out(data, fit)
    if args.json:
        print(json.dumps({"device": args.device, **rep, "leave_family_out": lofo},
                         sort_keys=True, default=str))
        return 0
    _print_report(rep, lofo)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from hwnas.predict.latency import find_predictor, read_card

    args.device = _named(args)
    folder = find_predictor(args.device, workspace(args))
    card = read_card(folder)
    if args.json:
        print(json.dumps({"predictor": str(folder), **card}, sort_keys=True))
        return 0

    con = console()
    con.print(f"[bold]{args.device}[/] predictor in {folder}")
    for k in ("device", "runtime", "threads", "format", "label", "objective", "train_size",
              "test_size", "schema_version", "xgboost", "date"):
        con.print(f"  {k:<15} {card.get(k)}")
    if card.get("adaptation"):
        a = card["adaptation"]
        con.print(f"  adapted from   {a.get('from')} with {a.get('n')} measurements "
                  f"({a.get('method')})")
    if card.get("heldout"):
        rows = [_metric_row("predictor", card["heldout"])]
        for name, m in (card.get("baselines") or {}).items():
            rows.append(_metric_row(name.replace("_", "-"), m))
        con.print(_metric_table("held-out accuracy (from the card)", rows))
    return 0


def cmd_adapt(args: argparse.Namespace) -> int:
    from hwnas.adapters import DeviceUnavailable
    from hwnas.adapters.devicefile import load_device, matching_devices
    from hwnas.predict.latency import load_predictor, predictor_dir
    from hwnas.workflows.adapt import adapt_predictor

    if args.device == args.source:
        raise ValueError("--from and --device name the same device")
    ws = workspace(args)
    source = load_predictor(args.source, ws)
    spec = load_device(args.device, ws)

    def measure(run: Any) -> None:
        measure_with_progress(run, f"measuring {run.n} on {spec.name}", quiet=args.json)

    phones = matching_devices(args.phones, ws, like=spec) if args.phones else None
    try:
        with open_executor(args) as ex:
            adapted, report = adapt_predictor(
                source, args.source, spec, ws, n=args.n, pool=args.pool, seed=args.seed,
                method=args.method, label=args.label, measure=measure,
                space=read_space(args) if args.space else None, executor=ex, phones=phones)
    except KeyboardInterrupt as e:
        print(f"hwnas: interrupted; {e.args[0] if e.args else 0} measurements stored. Rerun "
              "the same command to continue.", file=sys.stderr)
        return interrupted_status(e)
    except DeviceUnavailable as e:
        raise ValueError(f"{e}; {getattr(e, 'stored', 0)} measurements stored, rerun to "
                         "continue") from None
    corr = adapted.card["adaptation"]
    fit_n, rest_n = report["measured"], adapted.card.get("test_size", 0)
    from hwnas.workflows.predictor import install

    out, what = install(adapted, predictor_dir(ws, args.device), args.replace)
    report["predictor"], report["installed"] = str(out), what
    if args.json:
        print(json.dumps(report, sort_keys=True, default=str))
        return 0

    con = console()
    con.print(f"adapted the {args.source} predictor to {args.device} with {fit_n} "
              f"measurements (correction: {corr['method']}); saved {out}")
    if "heldout" in report:
        con.print(_metric_table(f"{args.device}: the other {rest_n} measured architectures",
                                [_metric_row("adapted", report["heldout"]),
                                 _metric_row(f"{args.source} predictor as is",
                                             report["unadapted"])]))
    else:
        con.print(f"no other measured architectures on {args.device} to check it against; "
                  f"measure some with `hwnas profile --device {args.device} --n 100 --seed 1`")
    return 0


def replace_option(s: argparse.ArgumentParser) -> None:
    s.add_argument("--replace", action="store_true",
                   help="install the new predictor even where the one there is better on "
                        "its held-out figures (the earlier one is kept as "
                        "<device>.replaced-<time>); without it a worse one is saved beside, "
                        "as <device>.candidate-<time>")


def add_parsers(sub: Any) -> None:
    from hwnas.tasks import names as task_names

    def common(s: argparse.ArgumentParser) -> None:
        s.add_argument("--task", choices=task_names(), default="asr",
                       help="whose graphs: asr (default) or tts (the profile <device>.tts)")
        s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
        s.add_argument("--json", action="store_true", help="machine-readable output")

    def training(s: argparse.ArgumentParser) -> None:
        s.add_argument("--label", choices=("auto", "rel", "norm", "raw"), default="auto",
                       help="latency column to learn: rel_p50 (ratio to the reference "
                            "workload timed beside every call: host speed divided out, travels "
                            "between hosts; CPU devices), norm_p50_ms (that ratio x the "
                            "profile's reference ms), raw p50_ms, or auto (rel where every row "
                            "has it)")
        s.add_argument("--objective", choices=("log", "relative"), default="log",
                       help="log: squared error of log latency on the cost-model base "
                            "(default); relative: squared relative error on the linear scale, "
                            "trees only")
        s.add_argument("--no-cost-model", action="store_true",
                       help="trees only, without the additive cost model as their base")
        s.add_argument("--rounds", type=COUNT, help="boosting rounds (default 300)")
        s.add_argument("--max-depth", type=COUNT, dest="max_depth", help="tree depth (default 3)")
        s.add_argument("--eta", type=POSITIVE, help="learning rate (default 0.1)")
        s.add_argument("--seed", type=SEED, default=0, help="XGBoost seed (default 0)")

    p = sub.add_parser("predictor", help="train, evaluate, adapt latency predictors",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Latency predictors learned from measured profiles.",
                       epilog=PREDICTOR_EPILOG)
    ps = p.add_subparsers(dest="predictor_command", metavar="SUBCOMMAND", required=True)
    s = ps.add_parser("train", help="train on a device's profile; save model + card",
                      description="Train on the profile's training share (80%), report the "
                                  "held-out share beside FLOPs-only and params-only baselines, "
                                  "save to <workspace>/predictors/<device>/.")
    s.add_argument("--device", required=True, metavar="NAME", help="device whose profile to use")
    s.add_argument("--also", action="append", metavar="NAME",
                   help="learn this profile too (repeatable): the same target measured on "
                        "another CPU, e.g. copied from another machine into profiles/NAME; "
                        "each CPU's descriptor (ISA, caches, runtime, reference time) "
                        "becomes features, and predictions are made at this host's")
    replace_option(s)
    training(s)
    common(s)
    s.set_defaults(func=cmd_train)
    s = ps.add_parser("eval", help="held-out and leave-one-family-out accuracy",
                      description="Train on the training share and report the held-out "
                                  "share, per family, the baselines and leave-one-encoder-"
                                  "family-out accuracy. Saves nothing.")
    s.add_argument("--device", required=True, metavar="NAME")
    s.add_argument("--no-lofo", action="store_true", help="skip leave-one-family-out")
    training(s)
    common(s)
    s.set_defaults(func=cmd_eval)
    s = ps.add_parser("adapt", help="few-shot: adapt a predictor to another device",
                      description="Choose N architectures that cover the source predictor's "
                                  "latency range and the encoder families, measure them on "
                                  "--device (stored in its profile; rerun to resume), fit a "
                                  "small correction and save the adapted predictor for --device. "
                                  "Other measured architectures of --device, if any, are used "
                                  "to report its accuracy.")
    replace_option(s)
    s.add_argument("--from", dest="source", required=True, metavar="DEVICE",
                   help="device whose predictor to adapt")
    s.add_argument("--device", required=True, metavar="NAME", help="the new device")
    s.add_argument("--n", type=COUNT, default=20, help="measurements on the new device "
                                                      "(default 20)")
    s.add_argument("--pool", type=COUNT, default=2000,
                   help="sampled candidates to choose from (default 2000)")
    s.add_argument("--space", metavar="FILE",
                   help="TOML file restricting the space the candidates come from")
    s.add_argument("--seed", type=SEED, default=0, help="pool sampling seed (default 0)")
    s.add_argument("--method", choices=("auto", "scale", "affine", "ridge"), default="auto",
                   help="correction; auto picks by leave-one-out error (default)")
    s.add_argument("--label", choices=("auto", "rel", "norm", "raw"), default="auto",
                   help="latency column of the new device's rows (default auto)")
    add_executor_arg(s, "the measurements")
    s.add_argument("--phones", metavar="PATTERN",
                   help="interchangeable phones that share the measurements (as for profile)")
    common(s)
    s.set_defaults(func=cmd_adapt)
    s = ps.add_parser("show", help="print a predictor's model card")
    s.add_argument("--device", required=True, metavar="NAME")
    common(s)
    s.set_defaults(func=cmd_show)
