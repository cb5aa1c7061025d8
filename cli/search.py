"""`hwnas search`: the multi-objective architecture search (first part)."""

from __future__ import annotations

import argparse
import json
from typing import Any

SEARCH_EPILOG = """examples:
  hwnas search --target cpu --max-latency 5 --trials 20 --cer-budget 2m
  hwnas search --target cpu --objectives cer,latency,params --sampler tpe --study s1
  hwnas search --target cpu --trials 40 --study s1      continue s1 up to 40 trials

Latency comes from the target's predictor and is shown as predicted until
the Pareto set has been measured on the target (done before answering when
the target is reachable; one that misses the constraint as measured is
dropped and reported with both numbers).
Trials whose predicted latency or size breaks a constraint are recorded as
infeasible (Optuna constraints) and not trained. The study is stored in
SQLite under <workspace>/runs/search/<study>.db unless --storage names
another Optuna storage URL; rerunning the same command resumes it.
"""


def cmd_search(args: argparse.Namespace) -> int:
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from hwnas.data.corpus import SIZES
    from hwnas.data.tokens import CharTokenizer
    from hwnas.predict.latency import find_predictor, load_predictor
    from hwnas.search.study import SearchConfig, pareto, run_search, select_for_target
    from hwnas.space import SearchSpace, default_space
    from hwnas.training.prepare import builtin_features
    from hwnas.training.trainer import TrainConfig, concat, train

    from .hil import _workspace
    from .main import _console
    from .train import parse_budget

    torch.set_num_threads(1)
    if (args.cer_budget is None) == (args.cer_steps is None):
        raise ValueError("give the training per trial: --cer-budget 2m (CPU time) or "
                         "--cer-steps N (deterministic)")
    if args.size not in SIZES:
        raise ValueError(f"unknown size {args.size!r}; one of {', '.join(SIZES)}")
    ws = _workspace(args)
    predictor = load_predictor(args.target, ws)
    where = find_predictor(args.target, ws)
    storage = args.storage
    if storage is None:
        (ws / "runs" / "search").mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(ws / 'runs' / 'search' / f'{args.study}.db').resolve()}"
    space = SearchSpace.from_toml(args.space) if args.space else default_space()
    cfg = SearchConfig(target=args.target, objectives=tuple(args.objectives.split(",")),
                       max_latency_ms=args.max_latency, max_params=args.max_params,
                       trials=args.trials, sampler=args.sampler, seed=args.seed,
                       study=args.study, storage=storage, space=space)
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    tok = CharTokenizer.for_languages(langs)
    tcfg = TrainConfig(steps=args.cer_steps, seed=args.seed, eval_every=10**9,
                       cpu_seconds=parse_budget(args.cer_budget) if args.cer_budget else None)
    data: dict[tuple[str, int], Any] = {}

    def train_cer(arch: Any) -> float:
        key = (arch.frontend, arch.n_filters)
        if key not in data:
            sets = builtin_features(ws, langs, args.size, args.corpus_seed, *key)
            data[key] = (concat([sets[(lang, "train")] for lang in langs], "train"),
                         concat([sets[(lang, "dev")] for lang in langs], "dev"))
        tr, dv = data[key]
        return train(arch, tr, dv, tok, tcfg).dev["cer"]

    def predict_latency(arch: Any) -> float:
        return float(predictor.predict([arch])[0])

    progress = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                        transient=args.json)
    with progress:
        task = progress.add_task("search", total=cfg.trials, info="")

        def on_trial(t: Any) -> None:
            a = t.user_attrs
            progress.update(task, advance=1, info=f"#{t.number} {a['arch']['encoder']} "
                            f"CER {a['cer']:.3f} {a['latency_ms']:.2f} ms (predicted)"
                            + ("" if a["trained"] else " infeasible"))

        study = run_search(cfg, predict_latency, train_cer, on_trial)
    front = pareto(study)
    dropped: list[dict[str, Any]] = []
    note = None
    if args.no_verify:
        note = "not verified on the device (--no-verify): latencies are predicted"
    else:
        from hwnas.adapters.devicefile import load_device
        from hwnas.search.verify import verify

        if not args.json:
            _console().print(f"measuring the {len(front)} Pareto architectures on "
                             f"{args.target} ...")
        front, dropped, note = verify(front, load_device(args.target, ws), ws,
                                      predictor.card.get("label", "p50_ms"), args.max_latency)
    best = select_for_target(sorted(front, key=lambda r: (r["cer"], r["latency_ms"])))
    out = {"study": args.study, "storage": storage, "target": args.target,
           "trials": len(study.trials), "predictor": str(where), "pareto": front,
           "dropped": dropped, "selected": best,
           "latency_source": "measured" if front and all(
               r.get("latency_source") == "measured" for r in front) else "predicted",
           "note": note}
    if args.json:
        print(json.dumps(out, sort_keys=True, default=str))
        return 0
    source = out["latency_source"].upper()
    t = Table(title=f"Pareto front, {args.target} (feasible; latency {source}"
                    + (f", predictor {where})" if source == "PREDICTED" else ")"))
    for c in ("trial", "arch", "encoder/decoder", "dev CER", "p50 ms", "predicted ms",
              "params"):
        t.add_column(c, justify="left" if c in ("arch", "encoder/decoder") else "right")
    for r in front:
        a = r["arch"]
        t.add_row(str(r["trial"]), r["arch_id"], f"{a['encoder']}/{a['decoder']}",
                  f"{r['cer']:.3f}", f"{r['latency_ms']:.2f} ({r['latency_source']})",
                  f"{r.get('predicted_ms', r['latency_ms']):.2f}", f"{r['params']:,}")
    con = _console()
    con.print(t)
    if note:
        con.print(note)
    for r in dropped:
        con.print(f"dropped {r['arch_id']}: {r['reason']}")
    if best:
        con.print(f"selected for {args.target}: {best['arch_id']} (lowest CER meeting the "
                  f"constraints): CER {best['cer']:.3f}, {best['latency_ms']:.2f} ms "
                  f"{best['latency_source']}")
    else:
        con.print("no trial met the constraints yet; add trials or relax them")
    return 0


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("search", help="multi-objective search: CER, latency, size",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="An Optuna study (NSGA-II by default) over the search "
                                   "space: CER from short training on the built-in corpus, "
                                   "latency from the target's predictor, parameters counted.",
                       epilog=SEARCH_EPILOG)
    s.add_argument("--target", required=True, metavar="DEVICE",
                   help="device whose latency predictor to use")
    s.add_argument("--max-latency", type=float, dest="max_latency", metavar="MS",
                   help="constraint on predicted p50 per call (ms)")
    s.add_argument("--max-params", type=int, dest="max_params", metavar="N",
                   help="constraint on the parameter count")
    s.add_argument("--objectives", default="cer,latency",
                   help="comma-separated: cer, latency, params (default cer,latency)")
    s.add_argument("--trials", type=int, default=20, help="trials in the study (default 20)")
    s.add_argument("--sampler", default="nsga2", choices=("nsga2", "tpe", "gp", "random"))
    s.add_argument("--cer-budget", dest="cer_budget", help="training per trial, CPU time (2m)")
    s.add_argument("--cer-steps", type=int, dest="cer_steps",
                   help="training per trial in steps (deterministic)")
    s.add_argument("--langs", default="en", help="built-in languages (default en)")
    s.add_argument("--size", default="small", help="built-in corpus size (default small)")
    s.add_argument("--corpus-seed", type=int, default=0, dest="corpus_seed")
    s.add_argument("--space", metavar="FILE", help="TOML file overriding the space's choices")
    s.add_argument("--storage", metavar="URL", help="Optuna storage URL (default SQLite)")
    s.add_argument("--study", default="hwnas", help="study name (default hwnas)")
    s.add_argument("--seed", type=int, default=0, help="sampler and training seed")
    s.add_argument("--no-verify", action="store_true", dest="no_verify",
                   help="do not measure the Pareto set on the target before answering")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_search)
