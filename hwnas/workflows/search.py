"""The search end to end, as `hwnas search` runs it: the target's predictor
calibrated to this host, the study (``hwnas.search.study``) training on the
corpus, verification of the Pareto set on the device, test-set scores, and
the winner exported with its model card.

What a caller shows is its own business: it passes ``SearchHooks`` (silent
by default) for messages, progress over measurements, feature computation
and the trials.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from hwnas import tasks

if TYPE_CHECKING:
    from hwnas.search.study import SearchConfig

DEFAULT_CER_BUDGET = "40s,2m"
#: the updates each default rung lasts at least (up to twice its time): with
#: them the rungs rank 20 architectures as 240 s of training does with Kendall
#: tau 0.70 and 0.93 instead of 0.57 and 0.76 (bench/rung_fidelity.py)
DEFAULT_RUNG_FLOORS = (400, 1000)
VERIFIED_KEYS = ("trial", "verdict", "latency_ms", "latency_ci", "predicted_ms", "p90_ms",
                 "delay_ms", "delay_ci", "delay_p90_ms", "algorithmic_ms", "rtf", "reason",
                 "note", "measurements", "flags")


def rung_floors(text: str | None, default_budget: bool) -> tuple[int, ...]:
    """--rung-floors: "400,1000" (updates per rung), "0" for none; unset, the
    default floors go with the default rungs and none with rungs of one's own."""
    if text is None:
        return DEFAULT_RUNG_FLOORS if default_budget else ()
    try:
        floors = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"--rung-floors {text!r}: give update counts, e.g. 400,1000") from None
    return floors if any(floors) else ()


@dataclass
class SearchRequest:
    """Everything one search needs: ``search``, the study's own options (the
    one record of a search option, ``hwnas.search.study.SearchConfig``), and
    what this workflow adds around the study. ``corpus`` is the task's opened
    training data (a recogniser's corpus, ``hwnas.training.prepare``; a TTS
    search's data, ``hwnas.tts.units.TTSData``)."""

    search: SearchConfig
    workspace: Path
    corpus: Any = None
    rung_floors: tuple[int, ...] = ()   # updates per CPU-time rung, at least (0: none)
    warm_start_from: str | None = None  # a study whose Pareto set a new study evaluates first
    streaming: bool = False
    verify: bool = True
    export: bool = True
    format: str | None = None           # default: the target's
    out: Path | None = None             # default: <study dir>/export
    default_budget: bool = False        # ``rungs`` is DEFAULT_CER_BUDGET (said so)
    executor: Any = None                # where trainings run (default: this process)
    cer_source: str = "train"           # "supernet": screen with inherited weights first
    supernet_budget_s: float = 300.0    # CPU s per family where no supernet is trained yet
    finetune_s: float = 20.0            # CPU s of fine-tuning inherited weights (0: none)
    screen_utts: int = 100              # dev utterances of an inherited score (0: all)
    baselines: bool = True              # the presets that fit go first (hwnas.search.baselines)
    final: Any = None                   # hwnas.workflows.final.FinalBudget (default: a third)
    spot_budget_s: float = 120.0        # measuring on a new host, at most (workflows.target)
    train_device: str = "cpu"           # where trials train (nn.fit.train_device): cpu, cuda[:N]
    precision: str = "fp32"             # their precision (nn.fit.trial_device: resolved, but
                                        # "auto" for a Ray cluster's GPUs, resolved there)
    gpus_per_trial: float = 1.0         # what a trial on a GPU asks Ray for (small ones share)

    def device_options(self) -> dict[str, Any]:
        """Where and how its trainings run (trials, supernets, their scoring)."""
        return {"device": self.train_device, "precision": self.precision,
                "gpus": self.gpus_per_trial}

    @property
    def rung_unit(self) -> str:
        """What a rung budget counts, as a unit of work takes it."""
        return "steps" if self.search.rung_unit == "steps" else "cpu_seconds"

    def check(self) -> None:
        """Refuse what cannot mean anything, before any work."""

        task = tasks.get(self.search.task)
        if self.cer_source == "supernet" and not task.supernets:
            raise ValueError(f"--cer-source supernet: {self.search.task.upper()} searches have no "
                             "weight-sharing supernets; train each trial (--cer-source train)")
        if self.search.max_delay_ms is not None and "delay" not in task.objectives:
            raise ValueError(f"--max-delay: {self.search.task.upper()} architectures have no "
                             "emission delay; use --max-latency or --max-rtf")
        if self.gpus_per_trial not in (1.0, 0.5, 0.25):
            raise ValueError(f"--gpus-per-trial must be 1, 0.5 or 0.25, got "
                             f"{self.gpus_per_trial:g}")
        if (self.train_device != "cpu" or self.precision != "fp32") \
                and not task.trains_on_accelerators:
            raise ValueError(f"{self.search.task.upper()} training runs on the CPU in fp32 "
                             f"only, for now; leave out --train-device and --precision")
        if self.streaming and "streaming" not in task.default_space().domain:
            raise ValueError(f"--streaming: {self.search.task.upper()} architectures do not stream")
        if self.format:
            from hwnas.export import FORMATS

            if self.format not in FORMATS:
                raise ValueError(f"unknown --format {self.format!r}; one of "
                                 f"{', '.join(FORMATS)}")
        c = self.search
        for name, v in (("max-latency", c.max_latency_ms), ("max-delay", c.max_delay_ms),
                        ("max-rtf", c.max_rtf), ("max-params", c.max_params),
                        ("max-size", c.max_size_mb)):
            if v is not None and not v > 0:
                raise ValueError(f"--{name} must be > 0, got {v:g}")
        if self.cer_source not in ("train", "supernet"):
            raise ValueError(f"--cer-source must be train or supernet, got {self.cer_source!r}")
        if self.supernet_budget_s <= 0 or self.finetune_s < 0 or self.screen_utts < 0:
            raise ValueError("--supernet-budget must be > 0, --finetune and --screen-utts >= 0")
        if self.rung_floors and self.rung_unit != "cpu_seconds":
            raise ValueError("--rung-floors stretch CPU-time rungs (--cer-budget); "
                             "--cer-steps rungs are updates already")
        if len(self.rung_floors) > len(self.search.rungs) or any(f < 0 for f in self.rung_floors):
            raise ValueError(f"--rung-floors: at most one per rung ({len(self.search.rungs)}), "
                             f"each >= 0, got {','.join(map(str, self.rung_floors))}")
        if not self.spot_budget_s >= 0:
            raise ValueError(f"--spot-budget must be >= 0, got {self.spot_budget_s:g}")
        if self.search.population_size is not None and self.search.population_size < 2:
            raise ValueError(f"--population must be >= 2, got {self.search.population_size}")
        from hwnas.workflows.final import FinalBudget

        # a task without a final phase answers at its rungs
        self.final = self.final or (FinalBudget() if task.final_phase else FinalBudget(share=0))
        if self.final.each is not None and self.final.each < self.longest_rung():
            raise ValueError(f"--final-budget {self.final.each:g} is below the longest rung "
                             f"({self.longest_rung():g}): the finalists would train less than "
                             "the search trained them")
        if self.final.share is not None and not 0 <= self.final.share < 1:
            raise ValueError(f"--final-budget share must be from 0 to below 1, got "
                             f"{self.final.share:g}")

    def floor(self, rung: int) -> int:
        """The floor of updates of rung ``rung`` (0: none)."""
        return self.rung_floors[rung] if rung < len(self.rung_floors) else 0

    def longest_rung(self) -> float:
        """The most training a trial's rungs may take (a floor of updates
        stretches a rung up to STRETCH times its budget)."""
        from hwnas.training.halving import STRETCH

        return max(b * (STRETCH if self.floor(i) else 1.0) for i, b in enumerate(self.search.rungs))


class SearchHooks:
    """What the search tells its caller; every method has a silent default."""

    def say(self, text: str) -> None:
        pass

    def measure(self, run: Any) -> None:
        """Drive a ``ProfileRun`` (e.g. under a progress bar)."""
        run.drive(None)

    def splits(self, corpus: Any, frontend: str, n_filters: int) -> Any:
        """``corpus.splits`` (e.g. with progress while features are computed)."""
        return corpus.splits(frontend, n_filters)

    @contextlib.contextmanager
    def searching(self, total: int) -> Iterator[None]:
        """Around the loop over trials (e.g. a progress bar)."""
        yield

    def on_rung(self, number: int, cand: Any, rung: int) -> None:
        pass

    def on_trial(self, trial: Any) -> None:
        pass

    @contextlib.contextmanager
    def training_supernet(self, family: str, budget_s: float
                          ) -> Iterator[Callable[[int, float, dict], None]]:
        """Around a supernet's training; yields ``on_step(step, cpu_s, losses)``."""
        yield lambda step, cpu_s, losses: None

    def on_screen(self, cand: Any, result: dict[str, Any]) -> None:
        """One architecture scored with supernet weights (inherited or fine-tuned)."""

    @contextlib.contextmanager
    def finalising(self, total: int) -> Iterator[Callable[[str], None]]:
        """Around the final phase; yields ``done(line)``, called as each finalist
        reaches the final budget."""
        yield self.say


@dataclass
class SearchOutcome:
    summary: dict[str, Any]
    export_error: str | None = None
    study: Any = field(default=None, repr=False)


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


class TrialRungs:
    """The study's trainings as units of work (the task's ``rung_unit``):
    each trial trains in its own folder, a later rung continuing the snapshot
    the earlier one left there. With the default local executor the units
    share the driver's corpus, whose features the driver computes first (with
    its progress display)."""

    def __init__(self, req: SearchRequest, study_dir: Path, hooks: SearchHooks) -> None:
        from hwnas.execution import LocalExecutor

        self.req, self.study_dir, self.hooks = req, Path(study_dir), hooks
        self.task = tasks.get(req.search.task)
        self.quality = next((o for o in req.search.objectives if o in self.task.quality),
                            self.task.quality[0])
        self.executor = req.executor or LocalExecutor()
        ctx = getattr(self.executor, "ctx", None)
        if ctx is not None and hasattr(req.corpus, "splits"):
            from hwnas.training.prepare import share_corpus

            share_corpus(ctx, req.corpus)

    def unit(self, cand: Any, budget: float, rung: int) -> Any:
        from hwnas.search.storage import trial_dir

        if rung == 0 and hasattr(self.req.corpus, "splits"):   # features before the first
            # unit that needs them (with the caller's progress display)
            self.hooks.splits(self.req.corpus, cand.arch.frontend, cand.arch.n_filters)
        from hwnas.training.halving import floor_options

        return self._train(cand.arch.to_dict(), budget,
                           trial_dir(self.study_dir, cand.tag, cand.arch.id),
                           cand.state is not None, {"trial": cand.tag},
                           floor_options(budget, self.req.floor(rung)))

    def _train(self, arch: dict[str, Any], budget: float, run_dir: Path, resume: bool,
               extra: dict[str, Any], options: dict[str, Any] | None = None) -> Any:
        """A unit that trains ``arch`` to ``budget`` in ``run_dir`` as the search's
        trials train (its data, seed and unit; no dev evaluations on the way;
        ``options`` for the trainer, e.g. a rung's floor of updates)."""
        device = self.req.device_options() if self.task.trains_on_accelerators else {}
        return self.task.rung_unit(self.req.corpus, arch, workspace=str(self.req.workspace),
                                   budget=budget, unit=self.req.rung_unit,
                                   seed=self.req.search.seed,
                                   run_dir=str(run_dir), resume=resume, extra=extra,
                                   options={**device, **(options or {})})

    def result(self, cand: Any, out: dict[str, Any]) -> tuple[float, Any]:
        """(the study's quality measure, the snapshot)."""
        return float(out["quality"][self.quality]), out["snapshot"]

    def measure(self, cer: float, by_lang: dict[str, float] | None) -> float:
        """The study's CER measure: pooled, or the mean or worst of the
        languages' CERs (--objectives cer_mean|cer_worst)."""
        from hwnas.tasks.units import quality

        return quality(cer, by_lang)[self.quality]

    def details(self, out: dict[str, Any]) -> dict[str, Any]:
        """What a rung's record keeps: the training it took (a rung with a floor
        of updates may take more than its budget), the CER by language, the
        dev figures a task reports beside its quality."""
        return {"cpu_s": out["cpu_seconds"], "steps": out["steps"],
                **{k: out[k] for k in ("gpu_mb", "gpu_util_pct") if k in out},
                **({"by_lang": out["by_lang"], "cer_pooled": out["cer"]}
                   if out.get("by_lang") else {}),
                **({"dev": out["dev"]} if out.get("dev") else {})}

    def release(self, cand: Any) -> None:
        """The optimiser's snapshot goes once the trial trains no more: it is
        three times the model, and weights.pt beside it holds what was trained.
        With a final phase it stays until the finalists are known (``prune``):
        a finalist continues it."""
        if self.req.final.off:
            Path(cand.state).unlink(missing_ok=True)

    def prune(self, study: Any, keep: set[int]) -> None:
        """The snapshots of finished trials whose runs are not in ``keep``."""
        import optuna

        from hwnas.search.storage import trial_dir

        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            if t.user_attrs.get("rungs") and t.number not in keep:
                (trial_dir(self.study_dir, t.number, t.user_attrs["arch_id"])
                 / "checkpoint.pt").unlink(missing_ok=True)

    def final_unit(self, row: dict[str, Any], folder: Path, budget: float, resume: bool) -> Any:
        """The unit that trains a finalist to the final budget in ``folder``
        (a snapshot every CPU-minute: a final run is long enough to resume)."""
        return self._train(row["arch"], budget, folder, resume,
                           {"trial": row["trial"], "final_budget": budget,
                            "unit": self.req.rung_unit}, {"snapshot_every_s": 60.0})

    def record(self, number: int, cand: Any) -> None:
        """The trial's rungs so far, into its run's result.json (the driver's record)."""
        import json

        from hwnas.paths import write_atomic
        from hwnas.search.storage import trial_dir
        from hwnas.state import read_json
        from hwnas.training.runs import RESULT

        path = trial_dir(self.study_dir, number, cand.arch.id) / "result.json"
        summary = read_json(path, RESULT)
        write_atomic(path, json.dumps({**summary, "rungs": cand.rungs}, indent=2,
                                      sort_keys=True) + "\n")


def run(req: SearchRequest, hooks: SearchHooks | None = None) -> SearchOutcome:
    """Run (or resume) the search of ``req`` and deliver its answer."""
    import torch

    from hwnas.adapters.devicefile import load_device
    from hwnas.search.storage import open_storage, study_paths
    from hwnas.search.study import (
        best_baseline,
        make_strategy,
        pareto,
        run_search,
        select_for_target,
    )
    from hwnas.workflows.target import target_predictor

    hooks = hooks or SearchHooks()
    torch.set_num_threads(1)
    req.check()
    task = tasks.get(req.search.task)
    ws = Path(req.workspace)
    spec = load_device(req.search.target, ws)
    db, study_dir = study_paths(ws, req.search.study)
    storage = req.search.storage
    if storage is None:
        db.parent.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{db.resolve()}"
    space, gone = task.narrow(req.search.space or task.default_space(), req.streaming,
                              req.search.max_delay_ms)
    if req.streaming:   # --streaming's own choice, not a consequence of the delay
        gone.pop("streaming", None)
    if gone:
        hooks.say(f"--max-delay {req.search.max_delay_ms:g} ms: left out of the space, since "
                  "their audio alone takes longer to arrive: "
                  + "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in gone.items()))
    space = task.search_space(space, req.corpus)   # e.g. the data's phoneme inventory
    # the study's options as given, with what this run resolved: where it is
    # stored, the narrowed space, the data's description, the warm-start set
    cfg = replace(req.search, latency_source=task.latency, storage=storage, space=space,
                  corpus=req.corpus.description,
                  warm_start=_warm_start(req, ws, storage, space, hooks))
    from hwnas.search.study import refuse_early

    if task.latency == "predicted":   # before any work (nothing written): no predictor
        explain_missing_predictor(req.search.target, ws, spec)
    open_storage(storage)
    refuse_early(cfg)            # a study of another task, target or corpus: before any work
    strategy = make_strategy(cfg)   # a strategy that cannot search this space, too
    if task.latency == "measured":   # every architecture measured on the target
        tl: Any = MeasuredOn(spec, ws, req.search.task, hooks.measure, req.executor)
    else:
        # on a host CPU the predictor is calibrated to this host (reference time, spot
        # check, adaptation where the ratios differ); its measurements go to a
        # host-specific profile, never into another host's
        tl = target_predictor(req.search.target, ws, spec, measure=hooks.measure, say=hooks.say,
                              budget_s=req.spot_budget_s)

    def predict(a: Any) -> float:
        return float(tl.ms([a])[0])

    if req.baselines:
        cfg.baselines = _baselines(cfg, predict, hooks, task.presets())
    if req.default_budget:
        from hwnas.training.halving import STRETCH

        rung = [f"{b:g} s" + (f" (at least {req.floor(i)} updates, up to {STRETCH * b:g} s)"
                              if req.floor(i) else "")
                for i, b in enumerate(req.search.rungs)]
        kind = "CPU time" if req.search.rung_unit == "CPU s" else "GPU time"
        hooks.say(f"training per trial: {' then '.join(rung)} of {kind} by rung (the "
                  f"default, --cer-budget {DEFAULT_CER_BUDGET}; change it with --cer-budget, "
                  "--rung-floors or --cer-steps)")
    hooks.say("training data and features (built and cached on first use) ...")
    req.corpus.prepare()
    rungs = TrialRungs(req, study_dir, hooks)

    def on_rung(number: int, cand: Any, rung: int) -> None:
        rungs.record(number, cand)
        hooks.on_rung(number, cand, rung)

    screen = None
    if req.cer_source == "supernet" or hasattr(strategy, "use_supernets"):
        t_nets = time.monotonic()   # their training counts against --budget's wall time
        shared = task.weight_sharing()
        folders = _supernets(req, ws, space, hooks, shared)
        if cfg.time_budget_s is not None:
            cfg.time_budget_s = max(0.0, cfg.time_budget_s - (time.monotonic() - t_nets))
        splits = lambda fe, n: hooks.splits(req.corpus, fe, n)  # noqa: E731
        if req.cer_source == "supernet":
            screen = shared.SupernetScreen(folders, rungs.executor, req.corpus.description,
                                           str(ws), prepare=splits, eta=req.search.eta,
                                           finetune_s=req.finetune_s, seed=req.search.seed,
                                           dev_utts=req.screen_utts or None,
                                           on_score=hooks.on_screen,
                                           options=req.device_options())
        if hasattr(strategy, "use_supernets"):   # read once, shared with a local screen
            from hwnas.execution import WorkerContext

            ctx = getattr(rungs.executor, "ctx", None) or WorkerContext()
            strategy.use_supernets({f: shared.supernet_of(ctx, p) for f, p in folders.items()},
                                   splits, req.corpus.tokenizer,
                                   partial(shared.differentiable_search,
                                           device=req.train_device))
    if cfg.time_budget_s is not None and not req.final.off:
        # a wall-clock --budget keeps the final phase's share for it
        cfg.time_budget_s *= 1 - (req.final.share or 0.0)
    t0 = time.monotonic()
    with hooks.searching(cfg.trials):
        study = run_search(cfg, predict, rungs, on_rung=on_rung,
                           on_trial=hooks.on_trial, executor=rungs.executor, screen=screen,
                           strategy=strategy)
    if req.cer_source == "supernet":
        study.set_user_attr("cer_source", "supernet")
    front = usable_front(study, study_dir) if req.final.off else pareto(study)
    base = best_baseline(study)
    if base is not None and base["arch_id"] not in {r["arch_id"] for r in front}:
        front.append(base)   # the answer always shows the best baseline beside the found
    final_budget = None
    if front and not req.final.off:
        rungs.prune(study, {r["run_trial"] for r in front})
        front, final_budget = _final_phase(req, study, study_dir, front, rungs, hooks)
    dropped: list[dict[str, Any]] = []
    note = None
    if not req.verify:
        note = "not verified on the device (--no-verify): latencies are predicted"
    elif front:
        from hwnas.workflows.verify import verify

        hooks.say(f"verifying: measuring the {len(front)} finalist architectures on "
                  f"{req.search.target} ...")
        front, dropped, note = verify(front, tl.spec, ws, req.search.max_latency_ms,
                                      tl.reference_beside, measure=hooks.measure,
                                      max_delay_ms=req.search.max_delay_ms,
                                      max_rtf=req.search.max_rtf,
                                      executor=rungs.executor)
        for r in [*front, *dropped]:
            study.set_user_attr(f"verified:{r['arch_id']}", {k: r.get(k) for k in VERIFIED_KEYS})
    if front and task.test_sets:
        from hwnas.workflows.deliver import score_tests

        hooks.say(f"scoring the {len(front)} finalists on the test sets ...")
        score_tests(front, study_dir, task, lambda fe, n: hooks.splits(req.corpus, fe, n).tests)
    from hwnas.search.baselines import best as best_of
    from hwnas.workflows.final import decide

    best, versus = decide(front, cfg.objectives, select_for_target)
    if versus:
        versus += (f" (each trained {final_budget:g} {cfg.rung_unit})" if final_budget
                   else " (at the search's rungs: no final phase)")
    study.set_user_attr("seed", req.search.seed)
    study.set_user_attr("delivered", best and {"arch_id": best["arch_id"],
                                               "baseline": best.get("baseline"),
                                               "versus_baseline": versus})
    card, export_error = None, None
    if best and req.export:
        card, export_error = _deliver(req, best, study, study_dir, storage, tl, hooks,
                                      final_budget)
    import optuna

    out = {"study": req.search.study, "target": req.search.target, "task": req.search.task,
           "objectives": list(cfg.objectives),
           "trials": len(study.get_trials(deepcopy=False,
                                          states=(optuna.trial.TrialState.COMPLETE,))),
           "predictor": tl.where, "corrected": tl.corrected, "pareto": front, "dropped": dropped,
           "reference_ms": tl.ref_ms, "spot_check": tl.spot_check,
           "feasible_as_predicted": sum(1 for t in study.trials
                                        if t.user_attrs.get("trained")),
           "min_predicted_ms": min((t.user_attrs["latency_ms"] for t in study.trials
                                    if "latency_ms" in t.user_attrs), default=None),
           "min_predicted_delay_ms": min((t.user_attrs["delay_ms"] for t in study.trials
                                          if "delay_ms" in t.user_attrs), default=None),
           "selected": best, "export": card and card["folder"],
           "baseline": best_of(front),
           "versus_baseline": versus, "final_budget": final_budget,
           "budget_unit": cfg.rung_unit,
           "latency_source": "measured" if front and all(
               r.get("latency_source") == "measured" for r in front) else "predicted",
           "note": note, "export_error": export_error, "cer_source": req.cer_source,
           "scored": {src: sum(1 for t in study.trials if t.user_attrs.get("cer_source") == src
                               or any(x["source"] == src
                                      for x in t.user_attrs.get("screen", [])))
                      for src in ("inherited", "fine-tuned", "trained")},
           "seconds": round(time.monotonic() - t0, 1)}
    return SearchOutcome(out, export_error, study)


def _baselines(cfg: Any, predict: Callable[[Any], float], hooks: SearchHooks,
               presets: dict[str, Any]) -> tuple[Any, ...]:
    """The presets that fit the space and the constraints as predicted, each
    brought in by the smallest change (said, with what was left out and why)."""
    from hwnas.search.baselines import for_search
    from hwnas.search.study import judge

    found, notes = for_search(cfg.space, lambda a: judge(cfg, a, predict), presets,
                              cfg.latency_source)
    if len(found) >= cfg.trials:
        notes.append(f"--trials {cfg.trials} leaves no trial for the search itself: "
                     f"{min(len(found), cfg.trials)} of the baselines are the whole study")
    hooks.say(f"baselines ({len(found)}; a new study trains them first, like any trial): "
              + "; ".join(b.describe() for b in found))
    for line in notes:
        hooks.say(f"  {line}")
    return tuple(found)


def usable_front(study: Any, study_dir: Path) -> list[dict]:
    """The Pareto set, less trials whose trained run cannot be read: each such
    run's folder is set aside, the trial marked broken in the study with the
    reason (it counts as failed; a note says so), and the set drawn again
    without it."""
    import logging

    from hwnas.paths import stamped
    from hwnas.search.storage import run_of
    from hwnas.search.study import BROKEN, best_baseline, pareto

    task = tasks.get(study.user_attrs.get("task", tasks.DEFAULT))
    while True:
        front = pareto(study)
        bad = []
        for r in [*front, *([b] if (b := best_baseline(study)) else [])]:
            run = run_of(r, study_dir)
            try:
                task.check_run(run)
            except ValueError as e:
                bad.append((r, run, str(e)))
        if not bad:
            return front
        for r, run, why in bad:
            where = ""
            if run.exists():
                dest = stamped(Path(study_dir) / "set-aside", f"trial-{run.name}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                run.replace(dest)
                where = f"; its folder is set aside as {dest}"
            study.set_user_attr(f"{BROKEN}{r['run_trial']}", why)
            logging.getLogger("hwnas").warning(
                f"trial {r['trial']} ({r['arch_id']}) counts as failed: {why}{where}")


def _final_phase(req: SearchRequest, study: Any, study_dir: Path, rows: list[dict[str, Any]],
                 rungs: TrialRungs, hooks: SearchHooks) -> tuple[list[dict[str, Any]], float]:
    """Train the finalists to one final budget (kept in the study, so that a
    rerun resumes the same phase); returns their rows as they stand there."""
    from hwnas.search.baselines import best
    from hwnas.search.study import spent
    from hwnas.workflows import final

    unit = req.rung_unit
    ids = sorted(r["arch_id"] for r in rows)
    kept = study.user_attrs.get("final") or {}
    done = final.prepare(rows, study_dir, unit)
    if kept.get("finalists") == ids and kept.get("unit") == unit and kept.get("rule") == \
            repr(req.final):   # a rerun: the phase as it began, however far it got
        budget = float(kept["budget"])
    else:
        budget = req.final.per_finalist(spent(study), done, max(req.search.rungs))
        study.set_user_attr("final", {"finalists": ids, "unit": unit, "budget": budget,
                                      "rule": repr(req.final)})
    shown = "steps" if unit == "steps" else "CPU s"
    base = best(rows)
    hooks.say(f"final phase ({req.final.describe(shown)}): {len(rows)} finalists, the "
              f"feasible Pareto set" + (f" and the best baseline ({base['baseline']})"
                                        if base else "")
              + f", each trained to {budget:g} {shown} ...")

    with hooks.finalising(len(rows)) as done_line:
        def on_done(row: dict[str, Any], res: dict[str, Any]) -> None:
            done_line(f"  {row['arch_id']} {row['arch']['encoder']}/{row['arch']['decoder']}"
                      + (f" (baseline {row['baseline']})" if row.get("baseline") else "")
                      + f": dev CER {res['dev']['cer']:.3f} at {budget:g} {shown} "
                      f"(rung: {row['cer']:.3f})")

        out = final.train_finalists(rows, study_dir, budget, unit,
                                    lambda r, folder, resume: rungs.final_unit(r, folder,
                                                                               budget, resume),
                                    rungs.executor, rungs.measure, rungs.task.set_aside_run,
                                    on_done)
    for r in out:
        study.set_user_attr(f"final:{r['arch_id']}", {k: r.get(k) for k in (
            "cer", "rung_cer", "cer_by_lang", "final_budget", "final_steps", "run_dir")})
    return sorted(out, key=lambda r: (r["cer"], r["latency_ms"])), budget


def _supernets(req: SearchRequest, ws: Path, space: Any, hooks: SearchHooks, shared: Any
               ) -> dict[str, Path]:
    """Each family's supernet folder (for ``--cer-source supernet`` and
    ``--strategy darts``): one the workspace holds for this search's space, or for the whole
    space (which contains it), or else one trained now for this search's space
    (to ``req.supernet_budget_s``); ``shared``: the task's weight-sharing package."""

    folders = {}
    seed = 0   # supernets are shared by searches of any --seed (as `hwnas supernet train`)
    for family in space.choices("encoder"):
        whole = req.search.space or tasks.default_space(req.search.task)
        folder = shared.held_supernet(ws, family, (space, whole),
                                      req.corpus.description, seed, req.supernet_budget_s,
                                      req.train_device)
        if folder is None:
            hooks.say(f"training the {family} supernet for this space "
                      f"({req.supernet_budget_s:g} CPU s; kept in the workspace for later "
                      "searches) ...")
            with hooks.training_supernet(family, req.supernet_budget_s) as on_step:
                folder, _ = shared.train_family(ws, family, space, req.corpus,
                                                req.supernet_budget_s, seed, on_step=on_step,
                                                say=hooks.say, device=req.train_device,
                                                precision=req.precision)
        folders[family] = folder
    return folders


def _warm_start(req: SearchRequest, ws: Path, storage: str, space: Any,
                hooks: SearchHooks) -> tuple[Any, ...]:
    """The architectures of ``req.warm_start_from``'s Pareto set that this space
    holds (in the same storage as this study, or that study's default file)."""
    if not req.warm_start_from:
        return ()
    import optuna

    from hwnas.search.storage import open_storage, study_paths
    from hwnas.search.study import pareto

    if req.warm_start_from == req.search.study:
        raise ValueError("--warm-start names this study itself; name another study")
    url = req.search.storage
    if url is None:
        db = study_paths(ws, req.warm_start_from)[0]
        if not db.is_file():
            raise ValueError(f"--warm-start {req.warm_start_from}: no such study in {ws} "
                             f"({db} is missing)")
        url = f"sqlite:///{db.resolve()}"
    try:
        other = optuna.load_study(study_name=req.warm_start_from, storage=open_storage(url))
    except KeyError:
        raise ValueError(f"--warm-start {req.warm_start_from}: no such study in {url}") from None
    if other.user_attrs.get("task", tasks.DEFAULT) != req.search.task:
        raise ValueError(f"--warm-start {req.warm_start_from}: a search of "
                         f"{other.user_attrs.get('task', tasks.DEFAULT).upper()} architectures, "
                         f"not {req.search.task.upper()}")
    archs = [tasks.arch_from_dict(r["arch"]) for r in pareto(other)]
    kept = tuple(a for a in archs if space.contains(a))
    left = len(archs) - len(kept)
    hooks.say(f"warm start (of a new study): {len(kept)} architectures of "
              f"{req.warm_start_from}'s Pareto set (found for "
              f"{other.user_attrs.get('target', '?')}) go first, their latency predicted "
              f"for {req.search.target}"
              + (f"; {left} left out, outside this search's space" if left else ""))
    return kept


class MeasuredOn:
    """The speed of a task searched without a latency predictor: each
    architecture is measured on the target when first judged (its rows kept
    in the target's profile of that task and reused, by this search and the
    next). It stands where a calibrated predictor stands in a search."""

    predictor = None
    corrected = False
    spot_check = None
    ref_ms = None
    reference_beside = None

    def __init__(self, spec: Any, workspace: Path, task: str, measure: Callable[[Any], None],
                 executor: Any = None) -> None:
        self.spec, self.workspace, self.task = spec, Path(workspace), task
        self.measure, self.executor = measure, executor
        self.where = f"measured on {spec.name} (no predictor)"
        self._ms: dict[str, float] = {}

    def ms(self, archs: list[Any]) -> list[float]:
        """Compute ms per call (the median of the usable measurements; inf
        where none is usable: the architecture could not be exported or run)."""
        import math
        import statistics

        from hwnas.profiling.profiler import ProfileRun

        todo = list({a.id: a for a in archs if a.id not in self._ms}.values())
        if todo:
            run = ProfileRun(self.spec, self.workspace, len(todo), 0,
                             tasks.default_space(self.task), archs=todo, task=self.task,
                             executor=self.executor)
            if {a.id for a in todo} - {r["arch_id"] for r in run.store().rows()}:
                self.measure(run)   # (measured before, in this profile: nothing to show)
            by_id: dict[str, list[float]] = {}
            for r in run.store().rows():
                if r.get("status") in ("ok", "flagged") and r.get("p50_ms"):
                    by_id.setdefault(r["arch_id"], []).append(float(r["p50_ms"]))
            for a in todo:
                got = by_id.get(a.id)
                self._ms[a.id] = statistics.median(got) if got else math.inf
        return [self._ms[a.id] for a in archs]


class Delivered(NamedTuple):
    card: dict[str, Any] | None      # the exported winner's model card
    error: str | None                # why it could not be exported


def _deliver(req: SearchRequest, best: dict[str, Any], study: Any, study_dir: Path,
             storage: str, tl: Any, hooks: SearchHooks, final_budget: float | None
             ) -> Delivered:
    """Export the winner with its model card, or say why not."""
    from hwnas.export import ExportError
    from hwnas.search.storage import run_of
    from hwnas.workflows.deliver import export_selected

    fmt = req.format or tl.predictor.card.get("format") if tl.predictor else req.format
    fmt = fmt or tl.spec.make().format
    hooks.say(f"exporting {best['arch_id']} as {fmt} ...")
    try:
        return Delivered(export_selected(best, study_dir, fmt, req.out or study_dir / "export", {
            "study": req.search.study, "storage": storage, "target": req.search.target,
            "constraints": study.user_attrs.get("constraints"), "predictor": tl.where,
            "corpus": req.corpus.description,
            "training": {"unit": req.rung_unit, "rung_budgets": list(req.search.rungs),
                         "eta": req.search.eta, "seed": req.search.seed,
                         "final_budget": final_budget,
                         "baseline": best.get("baseline"),
                         "screened_by": "supernet" if req.cer_source == "supernet" else None
                         }}), None)
    except ExportError as e:  # the study and its trained runs stay; say how to retry
        run = run_of(best, study_dir)
        return Delivered(None, (f"export of {best['arch_id']} as {fmt} failed: {e}; the study "
                                f"and its trained weights are kept; retry with `hwnas export "
                                f"{run}/arch.json --weights {run}/weights.pt --format FMT` or "
                                "rerun this command with --format"))
