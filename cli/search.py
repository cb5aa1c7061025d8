"""`hwnas search`: the multi-objective architecture search."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

SEARCH_EPILOG = """examples:
  hwnas search --target cpu --streaming --max-latency 2 --trials 16 --cer-budget 40s,2m
  hwnas search --target pixel6 --max-latency 40 --max-size 20 --budget 2h --cer-budget 2m,6m
  hwnas search --target cpu --objectives cer,latency,params --sampler tpe --study s1
  hwnas search --target cpu --trials 40 --study s1      continue s1 up to 40 trials

How a trial is scored:
  latency  the target's latency predictor (shown as predicted until measured);
           for a host CPU target whose predictor was measured on another CPU,
           the search first adapts it with 20 measurements here
  params   counted from the architecture; size = fp32 weights in MB
  CER      dev CER after short training on the corpus, by successive
           halving: a generation's feasible trials all train for the first rung
           of --cer-budget (CPU time) or --cer-steps; the best 1/--eta of them,
           non-dominated on (CER, latency), continue to the next rung
Trials that break a constraint as predicted are recorded as infeasible (Optuna
constraints) and not trained.

The corpus is the built-in one (--langs, --size) unless --train/--dev name
your own (librispeech:DIR, commonvoice:DIR/SPLIT.tsv, kaldi:DIR; --test for
the answer's test sets, as in `hwnas train`). A study keeps one corpus.

Before answering, the Pareto set is measured on the target (when reachable);
one that misses the latency constraint as measured is dropped and reported with
both numbers. Each is scored on every test set, and the lowest-CER one meeting
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
    from hwnas.search.target import target_predictor
    from hwnas.space import SearchSpace, default_space
    from hwnas.training.trainer import rung_runner, save_run

    from .hil import _workspace, measure_with_progress
    from .train import corpus_splits, open_corpus, parse_budget

    torch.set_num_threads(1)
    if (args.cer_budget is None) == (args.cer_steps is None):
        raise ValueError("give the training per trial: --cer-budget 1m,3m (CPU time per rung) "
                         "or --cer-steps 100,300 (deterministic)")
    unit = "steps" if args.cer_steps is not None else "cpu_seconds"
    rungs = _rungs(args.cer_steps if unit == "steps" else args.cer_budget,
                   "steps" if unit == "steps" else "budget")
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

    # on a host the shipped predictor does not describe, measurements (adaptation
    # and verification) go to a host-specific profile, never into another host's
    predictor, where, adapted, spec = target_predictor(args.target, ws, spec, measure=measure,
                                                       say=err.print)
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
        study = run_search(cfg, lambda a: float(predictor.predict([a])[0]), runner,
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
        front, dropped, note = verify(front, spec, ws, predictor.card.get("label", "p50_ms"),
                                      args.max_latency, measure=measure)
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


def _print_result(out: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.table import Table

    from .main import _console

    front, source = out["pareto"], out["latency_source"].upper()
    tests = sorted({k for r in front for k in r.get("tests", {})})
    t = Table(title=f"Pareto front, {args.target} (feasible; latency {source}"
                    + (f", predictor {out['predictor']})" if source == "PREDICTED" else ")"))
    cols = ["trial", "arch", "encoder/decoder", "dev CER", *[f"{k} CER" for k in tests],
            "p50 ms", "p90 ms", "RTF", "predicted ms", "params", "MB"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("arch", "encoder/decoder") else "right")
    for r in front:
        a = r["arch"]
        t.add_row(str(r["trial"]), r["arch_id"], f"{a['encoder']}/{a['decoder']}",
                  f"{r['cer']:.3f}", *[f"{r['tests'][k]['cer']:.3f}" for k in tests],
                  f"{r['latency_ms']:.2f} ({r['latency_source']})",
                  f"{r['p90_ms']:.2f}" if r.get("p90_ms") is not None else "-",
                  f"{r['rtf']:.4f}" if r.get("rtf") is not None else "-",
                  f"{r.get('predicted_ms', r['latency_ms']):.2f}", f"{r['params']:,}",
                  f"{r['size_mb']:.2f}")
    con = _console()
    con.print(t)
    if out["note"]:
        con.print(out["note"])
    for r in out["dropped"]:
        con.print(f"dropped {r['arch_id']}: {r['reason']}")
    best = out["selected"]
    if best:
        con.print(f"selected for {args.target}: {best['arch_id']} (lowest CER meeting the "
                  f"constraints): dev CER {best['cer']:.3f}, {best['latency_ms']:.2f} ms "
                  f"{best['latency_source']}")
        if out["export"]:
            con.print(f"exported with its model card: {out['export']}")
    else:
        con.print("no trial met the constraints yet; add trials or relax them")


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
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=args.study, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
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
                   help="constraint on p50 per device-graph call (ms)")
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
                   help="training per rung, CPU time: 2m, or 1m,3m for two rungs")
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
