"""`hwnas search`: the multi-objective architecture search."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hwnas import strategies
from hwnas.workflows.final import FinalBudget
from hwnas.workflows.search import DEFAULT_CER_BUDGET, DEFAULT_RUNG_FLOORS, rung_floors

from ._common import (
    add_corpus_args,
    corpus_splits,
    measure_with_progress,
    open_corpus,
    parse_budget,
    read_space,
    workspace,
)
from ._executor import add_executor_arg, open_executor
from .options import COUNT, COUNT2, POSITIVE, SEED, add_device_args, defaults_of, refuse_given

SEARCH_EPILOG = """examples:
  hwnas search --target cpu --streaming --max-delay 500 --objectives cer,delay
               --trials 16 --study main            the main job (make search), one line
  hwnas search --target edge-tpu --max-latency 100
  hwnas search --target pixel6 --max-latency 40 --max-size 20 --budget 2h --cer-budget 2m,6m
  hwnas search --target cpu --objectives cer,latency,params --strategy bo --study s1
  hwnas search --target cpu --trials 40 --study s1      continue s1 up to 40 trials
  hwnas search --target pixel6 --max-latency 40 --strategy transfer --warm-start s1
                                    start from s1's Pareto set, re-scored on pixel6
  hwnas search --task tts --target cpu --max-rtf 0.002 --tts-budget 30s,90s
               --strategy evolution          TTS acoustic models, the same search
                                             (speed measured on the target per trial)

Strategies (--strategy; all propose into the same Optuna study, so resume,
optuna-dashboard and hwnas report work the same):
{strategies}

How a trial is scored:
  latency  the target's latency predictor (shown as predicted until measured).
           For a host CPU target it predicts the ratio to a reference workload,
           turned into ms with this host's reference time (timed here, ~1.5 s,
           cached); the first search on a host also measures architectures here
           until the predictor, corrected by them, is within this host's noise
           (at most --spot-budget of measuring); the correction is always used
  delay    emission delay: algorithmic delay (chunk + look-ahead + 15 ms STFT
           window; 4.8 s utterance in full context) + compute; rtf = compute /
           audio per call
  params   counted from the architecture; size = fp32 weights in MB
  CER      dev CER after short training on the corpus, by successive
           halving: a generation's feasible trials all train for the first rung
           of --cer-budget (CPU time, device time on a GPU; default 40s,2m,
           each rung lasting at least --rung-floors updates, up to twice its
           time) or --cer-steps; the best
           1/--eta of them, non-dominated on (CER, latency), continue to the next rung. With
           --cer-source supernet, a generation is first scored with weights
           inherited from each family's supernet (seconds each; `hwnas supernet`),
           and only its best go on to stand-alone training; the answer's CER is
           always a stand-alone one
Trials that break a constraint as predicted are recorded as infeasible (Optuna
constraints) and not trained.

The corpus is the built-in one (--langs, --size) unless --train/--dev name
your own (librispeech:DIR, commonvoice:DIR/SPLIT.tsv, kaldi:DIR; --test for
the answer's test sets, as in `hwnas train`). A study keeps one corpus.

Baselines: a new study first trains the hand-designed presets that fit its
space and constraints (hwnas.asr.presets; made streaming, 16 blocks cut to
the space's 8, the longest chunk meeting --max-delay: each change is printed),
like any trial. Final phase: the feasible Pareto set and the best baseline
each train to one final budget (--final-budget, default a third of the whole
training) and the answer is decided there: the best found architecture that
beats the best baseline (lower CER at equal or lower latency/delay), or else
the baseline itself, said so.

Before answering, the finalists are measured on the target (when reachable)
and judged by the 95% confidence interval of each measured p50: met when the
interval is below --max-latency, missed (dropped, with both numbers) when it
is above, borderline (measured again, longer, and reported as such) when the
limit falls inside it. Each is scored on every test set, and the answer is
exported in the target's format with a model card.

The study lives in SQLite at <workspace>/runs/search/<study>.db unless
--storage names another SQLAlchemy URL (postgresql+psycopg://user@host/db)
or an Optuna journal file (journal:FILE: asks stay fast with hundreds of
trials per generation, where SQLite slows down; one host only, no heartbeats);
trained runs and the export go to <workspace>/runs/search/<study>/. Rerunning
the same command resumes the study (a generation cut short is asked again).
Open it with: optuna-dashboard sqlite:///runs/search/<study>.db
""".format(strategies="\n".join(f"  {n:<10} {strategies.summary(n)}" for n in strategies.names()))


def _rungs(text: str, unit: str) -> tuple[float, ...]:

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


class _RichHooks:
    """The search's messages on stderr: progress bars over measurements,
    feature computation and the trials; a line per trial."""

    def __init__(self, quiet: bool, unit: str, key: str = "cer") -> None:
        from rich.console import Console

        self.err = Console(stderr=True, quiet=quiet)
        self.quiet, self.unit, self.progress, self.task = quiet, unit, None, None
        # the trials' quality: its field in a trial's record, and its name
        self.key, self.label = key, {"mcd": "dev MCD"}.get(key, "dev CER")

    def say(self, text: str) -> None:
        self.err.print(text)

    def measure(self, run: Any) -> None:
        measure_with_progress(run, f"measuring {run.n} on {run.spec.name}", quiet=self.quiet)

    def splits(self, corpus: Any, frontend: str, n_filters: int) -> Any:
        return corpus_splits(corpus, frontend, n_filters, self.err)

    @contextlib.contextmanager
    def searching(self, total: int) -> Iterator[None]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                                 console=self.err, transient=self.quiet)
        with self.progress:
            self.task = self.progress.add_task("search", total=total, info="")
            yield

    def on_rung(self, number: int, cand: Any, rung: int) -> None:
        r = cand.rungs[-1]
        self.progress.update(self.task, info=f"#{number} {_kind(cand.arch.to_dict())} rung "
                                             f"{rung} ({_fmt_budget(r['budget_s'], self.unit)})"
                                             f": {self.label} {r['cer']:.3f}")

    @contextlib.contextmanager
    def training_supernet(self, family: str, budget_s: float) -> Iterator[Any]:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn(f"[bold]supernet {family}"), BarColumn(),
                      TextColumn("{task.completed:.0f}/{task.total:.0f} CPU s"),
                      TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                      console=self.err, transient=self.quiet) as bar:
            task = bar.add_task("supernet", total=budget_s, info="")
            yield lambda step, cpu, losses: bar.update(
                task, completed=min(cpu, budget_s), info=f"step {step} loss largest "
                f"{losses['largest']:.3f} smallest {losses['smallest']:.3f}")

    @contextlib.contextmanager
    def finalising(self, total: int) -> Iterator[Any]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("[bold]final phase"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.err, transient=self.quiet) as bar:
            task = bar.add_task("final", total=total)

            def done(line: str) -> None:
                bar.console.print(line)
                bar.update(task, advance=1)

            yield done

    def on_screen(self, cand: Any, r: dict[str, Any]) -> None:
        self.progress.update(self.task, info=f"{cand.arch.encoder}/{cand.arch.decoder} "
                                             f"{r['source']}: dev CER {r['cer']:.3f}")

    def on_trial(self, t: Any) -> None:
        a = t.user_attrs
        self.progress.update(self.task, advance=1)
        what = f"  #{t.number} {_kind(a['arch'])}"
        if a.get("cer_source", "trained") != "trained":
            self.progress.console.print(f"{what}: dev CER {a['cer']:.3f} ({a['cer_source']} "
                                        f"from the supernet); {a['latency_ms']:.2f} ms "
                                        "compute predicted")
        elif not a["trained"]:
            self.progress.console.print(f"{what}: infeasible as "
                                        f"{a.get('latency_source', 'predicted')} "
                                        f"({a['latency_ms']:.2f} ms compute, "
                                        f"{a.get('delay_ms', math.nan):.0f} ms delay, "
                                        f"{a['params']:,} params); not trained")
        else:
            rs = ", ".join(f"{r['cer']:.3f}" for r in a["rungs"])
            self.progress.console.print(f"{what}: {self.label} by rung {rs}; "
                                        f"{a['latency_ms']:.2f} ms compute, "
                                        f"{a.get('delay_ms', math.nan):.0f} ms delay "
                                        f"{a.get('latency_source', 'predicted')}, "
                                        f"{a['params']:,} params")


TTS_ONLY = {"tts_budget", "tts_size", "asr_run"}


def _kind(arch: dict[str, Any]) -> str:
    """An architecture's encoder/decoder in a few characters, whatever its task."""
    from hwnas import tasks

    f = tasks.row_fields(tasks.arch_from_dict(arch))
    return f"{f['encoder']}/{f['decoder']}"


def _task_cli(task: str) -> Any:
    """A task's own command-line module, ``cli/<task>.py``, where it has one
    with ``search_parts(args, workspace)`` (the data, rungs, objectives and
    study name it puts into the request) and ``print_search(summary, target)``;
    None: the recogniser's defaults below."""
    import importlib

    try:
        mod = importlib.import_module(f"{__package__}.{task}")
    except ModuleNotFoundError:
        return None
    return mod if hasattr(mod, "search_parts") else None


def cmd_search(args: argparse.Namespace) -> int:
    from hwnas.search.study import SearchConfig
    from hwnas.workflows.search import SearchRequest, run

    ws = workspace(args)
    own: dict[str, Any] = {}
    parts = _task_cli(args.task)
    if parts is not None:
        own = parts.search_parts(args, ws)
    else:
        refuse_given(args, TTS_ONLY, "only --task tts uses it")
    if args.cer_budget is not None and args.cer_steps is not None:
        raise ValueError("give --cer-budget or --cer-steps, not both")
    default_budget = args.cer_budget is None and args.cer_steps is None
    unit = "steps" if args.cer_steps is not None else "cpu_seconds"
    from hwnas import tasks
    from hwnas.nn.fit import trial_device

    name = args.train_device   # a task that trains on the CPU only: auto is the CPU
    if not tasks.get(args.task).trains_on_accelerators and name in (None, "auto"):
        name = "cpu"
    device, precision, gpus = trial_device(name, args.precision, args.executor)
    clock = "steps" if unit == "steps" else "CPU s" if device == "cpu" else "device s"
    rungs = _rungs(args.cer_steps, "steps") if unit == "steps" else \
        _rungs(args.cer_budget or DEFAULT_CER_BUDGET, "budget")
    study = {"rungs": rungs, "objectives": tuple(args.objectives.split(",")),
             "study": args.study}
    study.update({k: v for k, v in own.items() if k != "corpus"})  # the task's own
    search = SearchConfig(
        target=args.target, task=args.task, storage=args.storage,
        rung_unit=clock, **study,
        max_latency_ms=args.max_latency, max_delay_ms=args.max_delay, max_rtf=args.max_rtf,
        max_params=args.max_params, max_size_mb=args.max_size,
        trials=args.trials, time_budget_s=parse_budget(args.budget) if args.budget else None,
        eta=args.eta, sampler=args.strategy, seed=args.seed, population_size=args.population,
        space=read_space(args) if args.space else None)
    req = SearchRequest(
        search=search, workspace=ws, corpus=own.get("corpus"),
        rung_floors=() if own else rung_floors(args.rung_floors, default_budget),
        warm_start_from=args.warm_start, cer_source=args.cer_source,
        supernet_budget_s=parse_budget(args.supernet_budget),
        finetune_s=parse_budget(args.finetune) if args.finetune not in ("0", "0s") else 0.0,
        screen_utts=args.screen_utts, streaming=args.streaming,
        verify=not args.no_verify, export=not args.no_export, format=args.format,
        out=Path(args.out) if args.out else None, default_budget=default_budget and not own,
        baselines=not args.no_baselines,
        final=None if own else FinalBudget.parse(args.final_budget, unit, parse_budget),
        spot_budget_s=parse_budget(args.spot_budget), train_device=device,
        precision=precision, gpus_per_trial=args.gpus_per_trial)
    req.check()
    if not own:
        req.corpus = open_corpus(args, ws)  # only reads file lists: built when needed
    with open_executor(args, gpus) as req.executor:
        outcome = run(req, _RichHooks(args.json, unit, "mcd" if "mcd" in search.objectives
                                      else "cer"))
    if args.json:
        print(json.dumps(outcome.summary, sort_keys=True, default=str))
    elif parts is not None:
        parts.print_search(outcome.summary, args.target)
    else:
        from ._answer import print_result

        print_result(outcome.summary, args)
    if outcome.export_error:
        raise ValueError(outcome.export_error)
    return 0


def add_parsers(sub: Any) -> None:

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
    s.add_argument("--task", choices=("asr", "tts"), default="asr",
                   help="asr (default): speech recognisers; tts: TTS acoustic models, on "
                        "objectives mcd,rtf,params (see `hwnas tts --help`)")
    s.add_argument("--tts-budget", dest="tts_budget", default="60s", metavar="TIME",
                   help="--task tts: CPU time each trial trains by rung: 60s, or 30s,90s "
                        "for two rungs (default 60s)")
    s.add_argument("--tts-size", dest="tts_size", default="small",
                   choices=("tiny", "small", "medium"),
                   help="--task tts: the built-in TTS data's size (default small)")
    s.add_argument("--asr-run", dest="asr_run", metavar="RUN",
                   help="--task tts: a `hwnas train` run that transcribes each trial's "
                        "speech: the cer (intelligibility) objective, default then "
                        "cer,rtf,params")
    s.add_argument("--max-latency", type=POSITIVE, dest="max_latency", metavar="MS",
                   help="constraint on COMPUTE only: the time of one device-graph call, p50 "
                        "in ms (one chunk for streaming models, one 4.8 s utterance "
                        "otherwise), not the delay a user hears; verified as met when the "
                        "measurement's 95%% interval is below it")
    s.add_argument("--max-delay", type=POSITIVE, dest="max_delay", metavar="MS",
                   help="constraint on the emission delay a user feels, ms: the chunk, its "
                        "look-ahead and the 15 ms STFT window must arrive (algorithmic "
                        "delay), then the chunk is computed (p50); full-context models wait "
                        "for the whole 4.8 s utterance. Predicted during the search, "
                        "verified as measured")
    s.add_argument("--max-rtf", type=POSITIVE, dest="max_rtf", metavar="R",
                   help="constraint on the real-time factor: compute / audio per call")
    s.add_argument("--max-params", type=COUNT, dest="max_params", metavar="N",
                   help="constraint on the parameter count")
    s.add_argument("--max-size", type=POSITIVE, dest="max_size", metavar="MB",
                   help="constraint on the fp32 weight size (MB)")
    s.add_argument("--objectives", default="cer,latency",
                   metavar="LIST",
                   help="comma-separated, minimised: cer (dev CER over the corpus), or with "
                        "several --langs cer_mean (the languages' mean) or cer_worst (the "
                        "worst language's); latency (compute per call), delay (emission "
                        "delay), rtf, params (default cer,latency)")
    s.add_argument("--trials", type=COUNT, default=20, help="trials in the study (default 20)")
    s.add_argument("--budget", metavar="TIME",
                   help="wall-clock limit for this run, e.g. 1h (checked between generations)")
    add_executor_arg(s, "the trials' trainings")
    s.add_argument("--strategy", "--sampler", dest="strategy", default="nsga2",
                   choices=strategies.names(), metavar="NAME",
                   help="who proposes architectures: " + ", ".join(strategies.names()) +
                        " (default nsga2; one line each below)")
    s.add_argument("--population", type=COUNT, metavar="N",
                   help="trials proposed and trained together, a generation (default: "
                        "trials / 25, at least 4, at most 50; the --budget is checked "
                        "between generations)")
    s.add_argument("--warm-start", dest="warm_start", metavar="STUDY",
                   help="a new study evaluates STUDY's Pareto set first (found for another "
                        "device or corpus; its latency is predicted again for --target)")
    s.add_argument("--cer-budget", dest="cer_budget", metavar="RUNGS",
                   help="training per rung: 2m, or 1m,3m for two rungs; CPU time on a CPU, "
                        "device time on a GPU (wall time, evaluations not charged) "
                        f"(default {DEFAULT_CER_BUDGET})")
    s.add_argument("--cer-steps", dest="cer_steps", metavar="RUNGS",
                   help="training per rung in steps (deterministic): 100,300")
    s.add_argument("--rung-floors", dest="rung_floors", metavar="UPDATES",
                   help="updates each CPU-time rung lasts at least, stretched to at most "
                        "twice its time: a model slow per update is judged further along "
                        "its curve (default with the default --cer-budget: "
                        f"{','.join(map(str, DEFAULT_RUNG_FLOORS))}; otherwise none; 0 "
                        "for none)")
    s.add_argument("--cer-source", dest="cer_source", choices=("train", "supernet"),
                   default="train",
                   help="train: every feasible trial trains stand-alone (default); supernet: "
                        "each is first scored with weights inherited from its family's "
                        "supernet, the best 1/eta^2 fine-tuned, the best 1/eta of those "
                        "trained stand-alone (only those can be the answer)")
    s.add_argument("--supernet-budget", dest="supernet_budget", default="5m", metavar="TIME",
                   help="with --cer-source supernet: CPU time per family to train a supernet "
                        "the workspace lacks (default 5m; `hwnas supernet train` for more)")
    s.add_argument("--finetune", default="20s", metavar="TIME",
                   help="with --cer-source supernet: fine-tuning of inherited weights (default "
                        "20s; 0 to skip)")
    s.add_argument("--screen-utts", dest="screen_utts", type=COUNT, default=100, metavar="N",
                   help="with --cer-source supernet: inherited scores on the first N dev "
                        "utterances (default 100; 0 for all: slower, less noisy)")
    s.add_argument("--eta", type=COUNT2, default=3, help="keep 1/eta at each rung (default 3)")
    s.add_argument("--final-budget", dest="final_budget", default="1/3", metavar="SHARE|TIME",
                   help="the final phase: the feasible Pareto set and the best baseline each "
                        "train to one final budget, and the answer is decided there. A share "
                        "of the whole training (default 1/3: half as much again as the "
                        "trials spent, split between the finalists, never less than the "
                        "longest rung), or what each finalist trains to (10m; steps with "
                        "--cer-steps); 0 for none (the answer at the rungs' CERs)")
    s.add_argument("--spot-budget", dest="spot_budget", default="2m", metavar="TIME",
                   help="on a host CPU not spot-checked yet: measuring time at most to "
                        "correct the latency predictor for this host (default 2m; the first "
                        "6 architectures are always measured)")
    s.add_argument("--no-baselines", action="store_true", dest="no_baselines",
                   help="do not start a new study with the hand-designed presets that fit "
                        "its space and constraints (by default they train first, like any "
                        "trial, and the answer is compared with the best of them)")
    add_corpus_args(s)
    add_device_args(s)
    s.add_argument("--gpus-per-trial", dest="gpus_per_trial", type=float, default=1.0,
                   choices=(1.0, 0.5, 0.25), metavar="1|0.5|0.25",
                   help="with --executor ray and a GPU: the share of a GPU each trial asks "
                        "for (small models share a card; default 1)")
    s.add_argument("--space", metavar="FILE", help="TOML file overriding the space's choices")
    s.add_argument("--streaming", action="store_true",
                   help="streaming architectures only (latency is then per chunk)")
    s.add_argument("--storage", metavar="URL",
                   help="Optuna storage: a SQLAlchemy URL (default: SQLite in the workspace; "
                        "postgresql+psycopg://... for a shared study) or journal:FILE (a "
                        "journal file on this host: fast with large generations)")
    s.add_argument("--study", default="hwnas", help="study name (default hwnas)")
    s.add_argument("--seed", type=SEED, default=0, help="sampler and training seed")
    s.add_argument("--no-verify", action="store_true", dest="no_verify",
                   help="do not measure the Pareto set on the target before answering")
    s.add_argument("--format", help="export format (default: the target's)")
    s.add_argument("--out", metavar="DIR",
                   help="export folder (default <workspace>/runs/search/<study>/export)")
    s.add_argument("--no-export", action="store_true", dest="no_export",
                   help="do not export the selected architecture")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_search, option_defaults=defaults_of(s))
