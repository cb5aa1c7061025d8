"""`hwnas search`: the multi-objective architecture search."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

SEARCH_EPILOG = """examples:
  hwnas search --target cpu --streaming --max-latency 2 --trials 16 --study main
  hwnas search --target edge-tpu --max-latency 100
  hwnas search --target pixel6 --max-latency 40 --max-size 20 --budget 2h --cer-budget 2m,6m
  hwnas search --target cpu --objectives cer,latency,params --sampler tpe --study s1
  hwnas search --target cpu --trials 40 --study s1      continue s1 up to 40 trials

How a trial is scored:
  latency  the target's latency predictor (shown as predicted until measured).
           For a host CPU target it predicts the ratio to a reference workload,
           turned into ms with this host's reference time (timed here, ~1.5 s,
           cached); the first search on a host also spot-checks 6 architectures
           and adapts the predictor with 20 measurements if they disagree
  params   counted from the architecture; size = fp32 weights in MB
  CER      dev CER after short training on the corpus, by successive
           halving: a generation's feasible trials all train for the first rung
           of --cer-budget (CPU time; default 40s,2m) or --cer-steps; the best 1/--eta of them,
           non-dominated on (CER, latency), continue to the next rung
Trials that break a constraint as predicted are recorded as infeasible (Optuna
constraints) and not trained.

The corpus is the built-in one (--langs, --size) unless --train/--dev name
your own (librispeech:DIR, commonvoice:DIR/SPLIT.tsv, kaldi:DIR; --test for
the answer's test sets, as in `hwnas train`). A study keeps one corpus.

Before answering, the Pareto set is measured on the target (when reachable)
and judged by the 95% confidence interval of each measured p50: met when the
interval is below --max-latency, missed (dropped, with both numbers) when it
is above, borderline (measured again, longer, and reported as such) when the
limit falls inside it. Each is scored on every test set, and the lowest-CER one meeting
the constraints is exported in the target's format with a model card.

The study lives in SQLite at <workspace>/runs/search/<study>.db unless
--storage names another SQLAlchemy URL (postgresql+psycopg://user@host/db);
trained runs and the export go to <workspace>/runs/search/<study>/. Rerunning
the same command resumes the study (a generation cut short is asked again).
Open it with: optuna-dashboard sqlite:///runs/search/<study>.db
"""


def _rungs(text: str, unit: str) -> tuple[float, ...]:
    from .train import parse_budget

    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError(f"--cer-{unit}: give one or more budgets, e.g. 1m,3m")
    if unit == "steps":
        try:
            vals = tuple(float(int(p)) for p in parts)
        except ValueError:
            raise ValueError(f"--cer-steps {text!r}: give step counts, e.g. 100,300") from None
    else:
        vals = tuple(parse_budget(p) for p in parts)
    return vals


def _fmt_budget(b: float, unit: str) -> str:
    return f"{int(b)} steps" if unit == "steps" else f"{b:g} CPU s"


def cmd_search(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from hwnas.adapters.devicefile import load_device
    from hwnas.search.results import export_selected, score_tests, study_paths, trial_dir
    from hwnas.search.study import SearchConfig, pareto, run_search, select_for_target
    from hwnas.space import SearchSpace, default_space
    from hwnas.training.trainer import rung_runner, save_run

    from .hil import _workspace, measure_with_progress
    from .train import corpus_splits, open_corpus, parse_budget

    torch.set_num_threads(1)
    if args.cer_budget is not None and args.cer_steps is not None:
        raise ValueError("give --cer-budget or --cer-steps, not both")
    default_budget = args.cer_budget is None and args.cer_steps is None
    if default_budget:
        args.cer_budget = DEFAULT_CER_BUDGET
    unit = "steps" if args.cer_steps is not None else "cpu_seconds"
    rungs = _rungs(args.cer_steps if unit == "steps" else args.cer_budget,
                   "steps" if unit == "steps" else "budget")
    if args.format:
        from hwnas.export import FORMATS

        if args.format not in FORMATS:
            raise ValueError(f"unknown --format {args.format!r}; one of {', '.join(FORMATS)}")
    for name in ("max_latency", "max_params", "max_size"):
        v = getattr(args, name)
        if v is not None and not v > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {v:g}")
    ws = _workspace(args)
    err = Console(stderr=True, quiet=args.json)
    spec = load_device(args.target, ws)

    db, study_dir = study_paths(ws, args.study)
    storage = args.storage
    if storage is None:
        db.parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{db.resolve()}"
    corpus = open_corpus(args, ws)  # only reads file lists: the corpus is built when needed
    space = SearchSpace.from_toml(args.space) if args.space else default_space()
    if args.streaming:
        space = space.with_choices({"streaming": [True]})
    cfg = SearchConfig(target=args.target, objectives=tuple(args.objectives.split(",")),
                       max_latency_ms=args.max_latency, max_params=args.max_params,
                       max_size_mb=args.max_size, trials=args.trials,
                       time_budget_s=parse_budget(args.budget) if args.budget else None,
                       rungs=rungs, rung_unit="steps" if unit == "steps" else "CPU s",
                       eta=args.eta, sampler=args.sampler, seed=args.seed,
                       study=args.study, storage=storage, space=space,
                       corpus=corpus.description)

    def measure(run: Any) -> None:
        measure_with_progress(run, f"measuring {run.n} on {run.spec.name}", quiet=args.json)

    # before any work: a target without a predictor, a bad storage URL or database
    explain_missing_predictor(args.target, ws, spec)
    from hwnas.search.study import open_storage

    open_storage(storage)

    # on a host CPU the predictor is calibrated to this host (reference time, spot
    # check, adaptation where the ratios differ); its measurements go to a
    # host-specific profile, never into another host's
    tl = target_latency(args.target, ws, spec, measure, err.print)
    predictor, where, adapted, spec = tl.predictor, tl.where, tl.adapted, tl.spec
    if default_budget:
        err.print(f"training per trial: {' then '.join(f'{b:g} s' for b in rungs)} of CPU "
                  f"time by rung (the default, --cer-budget {DEFAULT_CER_BUDGET}; change it "
                  "with --cer-budget or --cer-steps)")
    err.print("corpus and features (built and cached on first use) ...")
    corpus.prepare()
    tok = corpus.tokenizer
    runners: dict[tuple[str, int], Any] = {}

    def runner(arch: Any, budget: float, state: Any) -> tuple[float, Any]:
        key = (arch.frontend, arch.n_filters)
        if key not in runners:
            sp = corpus_splits(corpus, *key, err)
            runners[key] = rung_runner(sp.train, sp.dev, tok, seed=args.seed, unit=unit,
                                       eval_every=10**9)
        return runners[key](arch, budget, state)

    progress = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=err,
                        transient=args.json)
    with progress:
        task = progress.add_task("search", total=cfg.trials, info="")

        def on_rung(number: int, cand: Any, rung: int) -> None:
            res = cand.state["result"]
            save_run(trial_dir(study_dir, number, cand.arch.id), res, tok,
                     {"trial": number, "rungs": cand.rungs, "corpus": corpus.description})
            r = cand.rungs[-1]
            progress.update(task, info=f"#{number} {cand.arch.encoder}/{cand.arch.decoder} rung "
                                       f"{rung} ({_fmt_budget(r['budget_s'], unit)}): dev CER "
                                       f"{r['cer']:.3f}")

        def on_trial(t: Any) -> None:
            a = t.user_attrs
            progress.update(task, advance=1)
            if not a["trained"]:
                progress.console.print(f"  #{t.number} {a['arch']['encoder']}/"
                                       f"{a['arch']['decoder']}: infeasible as predicted "
                                       f"({a['latency_ms']:.2f} ms, {a['params']:,} params); "
                                       "not trained")
            else:
                rs = ", ".join(f"{r['cer']:.3f}" for r in a["rungs"])
                progress.console.print(f"  #{t.number} {a['arch']['encoder']}/"
                                       f"{a['arch']['decoder']}: dev CER by rung {rs}; "
                                       f"{a['latency_ms']:.2f} ms predicted, "
                                       f"{a['params']:,} params")

        t0 = time.monotonic()
        study = run_search(cfg, lambda a: float(tl.ms([a])[0]), runner,
                           on_rung=on_rung, on_trial=on_trial)
    front = pareto(study)
    dropped: list[dict[str, Any]] = []
    note = None
    if args.no_verify:
        note = "not verified on the device (--no-verify): latencies are predicted"
    elif front:
        from hwnas.search.verify import verify

        err.print(f"verifying: measuring the {len(front)} Pareto architectures on "
                  f"{args.target} ...")
        front, dropped, note = verify(front, spec, ws, args.max_latency, tl.reference,
                                      measure=measure)
        for r in [*front, *dropped]:
            study.set_user_attr(f"verified:{r['arch_id']}", {
                k: r.get(k) for k in ("trial", "verdict", "latency_ms", "latency_ci",
                                      "predicted_ms", "reason", "note", "measurements",
                                      "flags")})
    if front:
        err.print("scoring the Pareto set on the test sets ...")

        score_tests(front, study_dir, lambda fe, n: corpus_splits(corpus, fe, n, err).tests)
    best = select_for_target(front)
    card, export_error = None, None
    if best and not args.no_export:
        from hwnas.export import ExportError

        fmt = args.format or predictor.card.get("format") or spec.make().format
        err.print(f"exporting {best['arch_id']} as {fmt} ...")
        try:
            card = export_selected(best, study_dir, fmt, Path(args.out) if args.out else
                                   study_dir / "export", {
                                   "study": args.study, "storage": storage,
                                   "target": args.target,
                                   "constraints": study.user_attrs.get("constraints"),
                                   "predictor": where,
                                   "corpus": corpus.description,
                                   "training": {"unit": unit, "rung_budgets": list(rungs),
                                                "eta": args.eta, "seed": args.seed}})
        except ExportError as e:  # the study and its trained runs stay; say how to retry
            run = trial_dir(study_dir, best["run_trial"], best["arch_id"])
            export_error = (f"export of {best['arch_id']} as {fmt} failed: {e}; the study "
                            f"and its trained weights are kept; retry with `hwnas export "
                            f"{run}/arch.json --weights {run}/weights.pt --format FMT` or "
                            "rerun this command with --format")
    out = {"study": args.study, "target": args.target, "trials": len(study.trials),
           "predictor": where, "adapted": adapted, "pareto": front, "dropped": dropped,
           "reference_ms": tl.ref_ms, "spot_check": tl.spot_check,
           "feasible_as_predicted": sum(1 for t in study.trials
                                        if t.user_attrs.get("trained")),
           "min_predicted_ms": min((t.user_attrs["latency_ms"] for t in study.trials
                                    if "latency_ms" in t.user_attrs), default=None),
           "selected": best, "export": card and card["folder"],
           "latency_source": "measured" if front and all(
               r.get("latency_source") == "measured" for r in front) else "predicted",
           "note": note, "export_error": export_error,
           "seconds": round(time.monotonic() - t0, 1)}
    if args.json:
        print(json.dumps(out, sort_keys=True, default=str))
    else:
        _print_result(out, args)
    if export_error:
        raise ValueError(export_error)
    return 0


DEFAULT_CER_BUDGET = "40s,2m"


def target_latency(target: str, ws: Path, spec: Any, measure: Any, say: Any) -> Any:
    """The target's predictor for the search, calibrated to this host."""
    from hwnas.search.target import target_predictor

    return target_predictor(target, ws, spec, measure=measure, say=say)


def explain_missing_predictor(target: str, ws: Path, spec: Any) -> None:
    """Without a predictor: one line that names what would make the target work."""
    from hwnas.predict.latency import find_predictor

    try:
        find_predictor(target, ws)
    except ValueError:
        adapter = spec.make()
        try:
            why = adapter.check()
        finally:
            adapter.close()
        if why is None:
            raise
        raise ValueError(f"{target} has no latency predictor and cannot be measured here "
                         f"({why}); to search for it, attach it and then measure it "
                         f"(`hwnas profile --device {target} --n 1000` and `hwnas predictor "
                         f"train --device {target}`, or 20 measurements: `hwnas predictor "
                         f"adapt --from cpu --device {target}`), or copy a trained "
                         f"predictors/{target}/ folder into the workspace") from None


def _print_result(out: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.table import Table

    from .main import _console

    front, source = out["pareto"], out["latency_source"].upper()
    tests = sorted({k for r in front for k in r.get("tests", {})})
    t = Table(title=f"Pareto front, {args.target} (feasible; latency {source}"
                    + (f", predictor {out['predictor']})" if source == "PREDICTED" else ")"))
    cols = ["trial", "arch", "encoder/decoder", "dev CER", *[f"{k} CER" for k in tests],
            "p50 ms", "95% CI", "verdict", "p90 ms", "RTF", "predicted ms", "params", "MB"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("arch", "encoder/decoder") else "right")
    for r in front:
        a = r["arch"]
        t.add_row(str(r["trial"]), r["arch_id"], f"{a['encoder']}/{a['decoder']}",
                  f"{r['cer']:.3f}", *[f"{r['tests'][k]['cer']:.3f}" for k in tests],
                  f"{r['latency_ms']:.3f} ({r['latency_source']})",
                  f"{r['latency_ci'][0]:.3f}-{r['latency_ci'][1]:.3f}"
                  if r.get("latency_ci") else "-", r.get("verdict", "-"),
                  f"{r['p90_ms']:.2f}" if r.get("p90_ms") is not None else "-",
                  f"{r['rtf']:.4f}" if r.get("rtf") is not None else "-",
                  f"{r.get('predicted_ms', r['latency_ms']):.2f}", f"{r['params']:,}",
                  f"{r['size_mb']:.2f}")
    con = _console()
    con.print(t)
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
    if best:
        con.print(f"selected for {args.target}: {best['arch_id']} (lowest CER meeting the "
                  f"constraints): dev CER {best['cer']:.3f}, {best['latency_ms']:.2f} ms "
                  f"{best['latency_source']}")
        if out["export"]:
            con.print(f"exported with its model card: {out['export']}")
    elif out["dropped"]:
        con.print(f"verification dropped every candidate ({len(out['dropped'])}: reasons "
                  "above); the study is kept: add trials (the same command with a larger "
                  "--trials), or relax the constraint the measurements missed")
    elif not out["feasible_as_predicted"]:
        low = out.get("min_predicted_ms")
        con.print(f"nothing was feasible as predicted: none of the {out['trials']} trials "
                  "met the constraints by its predicted figures"
                  + (f" (fastest predicted {low:.3f} ms against --max-latency "
                     f"{args.max_latency:g})" if low is not None and args.max_latency else "")
                  + "; relax the constraints or add trials")
    else:
        con.print("no trained trial is on the feasible front yet; add trials")


REPORT_EPILOG = """examples:
  hwnas report hwnas                          the default study of `hwnas search`
  hwnas report s1 --out reports/s1 --top 6
  hwnas report s1 --storage postgresql+psycopg://user@db/hwnas

Writes pareto.png, hypervolume.png, best_cer.png, diversity.png, compute.png,
importance.png, top.png, report.json and report.html (self-contained: the
figures are embedded) into --out (default <workspace>/runs/search/<study>/report).
"""


def _storage_for(args: argparse.Namespace, db: Path) -> str:
    if args.storage:
        return args.storage
    if not db.is_file():
        raise ValueError(f"no study database {db}; run `hwnas search ... --study {args.study}` "
                         "first, or give --storage")
    return f"sqlite:///{db.resolve()}"


def cmd_report(args: argparse.Namespace) -> int:
    import optuna

    from hwnas.search.report import build_report
    from hwnas.search.results import study_paths

    from .hil import _workspace

    db, study_dir = study_paths(_workspace(args), args.study)
    storage = _storage_for(args, db)
    if args.top < 1:
        raise ValueError("--top must be >= 1")
    from hwnas.search.study import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = open_storage(storage)
    try:
        study = optuna.load_study(study_name=args.study, storage=rdb)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(rdb)]
        raise ValueError(f"no study {args.study!r} in {storage}; it holds: "
                         f"{', '.join(names) or 'none'}") from None
    out = Path(args.out) if args.out else study_dir / "report"
    s = build_report(study, out, args.top)
    if args.json:
        print(json.dumps(s, sort_keys=True, default=str))
        return 0
    from .main import _console

    con = _console()
    con.print(f"study {args.study} ({s['target']}): {s['trials']} trials, {s['trained']} "
              f"trained ({s['stopped_early']} stopped early), {s['infeasible']} infeasible; "
              f"training spent {s['training_spent']:g} {s['training_unit']}; hypervolume "
              f"{s['hypervolume']:.4g} (latency predicted)")
    for name, path in s["figures"].items():
        con.print(f"  {name:<12} {path}")
    con.print(f"report: {s['html']}")
    return 0


def add_parsers(sub: Any) -> None:
    from .train import add_corpus_args

    r = sub.add_parser("report", help="figures and an HTML page for a search study",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Pareto front, hypervolume history, best CER, diversity, "
                                   "early stopping and compute, parameter importances and the "
                                   "top architectures of a study, as PNG and HTML.",
                       epilog=REPORT_EPILOG)
    r.add_argument("study", metavar="STUDY", help="study name (hwnas search --study)")
    r.add_argument("--storage", metavar="URL", help="Optuna storage URL (default: the "
                   "workspace's SQLite file for STUDY)")
    r.add_argument("--out", metavar="DIR", help="output folder")
    r.add_argument("--top", type=int, default=4, help="architectures side by side (default 4)")
    r.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    r.add_argument("--json", action="store_true", help="machine-readable summary")
    r.set_defaults(func=cmd_report)

    s = sub.add_parser("search", help="multi-objective search: CER, latency, size",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="An Optuna study (NSGA-II by default) over the search "
                                   "space: CER from short training on a corpus (built-in or yours) "
                                   "(successive halving), latency from the target's "
                                   "predictor, size counted; the answer is measured on the "
                                   "target and the winner exported.",
                       epilog=SEARCH_EPILOG)
    s.add_argument("--target", required=True, metavar="DEVICE",
                   help="device to search for (hwnas devices lists them)")
    s.add_argument("--max-latency", type=float, dest="max_latency", metavar="MS",
                   help="constraint on the compute time of one device-graph call, p50 in ms "
                        "(one chunk for streaming models, one 4.8 s utterance otherwise); "
                        "verified as met when the measurement's 95%% interval is below it")
    s.add_argument("--max-params", type=int, dest="max_params", metavar="N",
                   help="constraint on the parameter count")
    s.add_argument("--max-size", type=float, dest="max_size", metavar="MB",
                   help="constraint on the fp32 weight size (MB)")
    s.add_argument("--objectives", default="cer,latency",
                   help="comma-separated: cer, latency, params (default cer,latency)")
    s.add_argument("--trials", type=int, default=20, help="trials in the study (default 20)")
    s.add_argument("--budget", metavar="TIME",
                   help="wall-clock limit for this run, e.g. 1h (checked between generations)")
    s.add_argument("--sampler", default="nsga2", choices=("nsga2", "tpe", "gp", "random"))
    s.add_argument("--cer-budget", dest="cer_budget", metavar="RUNGS",
                   help="training per rung, CPU time: 2m, or 1m,3m for two rungs "
                        f"(default {DEFAULT_CER_BUDGET})")
    s.add_argument("--cer-steps", dest="cer_steps", metavar="RUNGS",
                   help="training per rung in steps (deterministic): 100,300")
    s.add_argument("--eta", type=int, default=3, help="keep 1/eta at each rung (default 3)")
    add_corpus_args(s)
    s.add_argument("--space", metavar="FILE", help="TOML file overriding the space's choices")
    s.add_argument("--streaming", action="store_true",
                   help="streaming architectures only (latency is then per chunk)")
    s.add_argument("--storage", metavar="URL", help="Optuna storage URL (default SQLite)")
    s.add_argument("--study", default="hwnas", help="study name (default hwnas)")
    s.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    s.add_argument("--no-verify", action="store_true", dest="no_verify",
                   help="do not measure the Pareto set on the target before answering")
    s.add_argument("--format", help="export format (default: the target's)")
    s.add_argument("--out", metavar="DIR",
                   help="export folder (default <workspace>/runs/search/<study>/export)")
    s.add_argument("--no-export", action="store_true", dest="no_export",
                   help="do not export the selected architecture")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_search)
