"""The search: an Optuna study over the space, minimising CER, latency and size.

Each trial suggests an architecture through the space's own ``suggest``,
predicts its latency on the target with the target's latency predictor
(labelled predicted), computes its parameters and fp32 weight size
analytically, and -- only if it meets the constraints as predicted -- trains
it for its CER. Constraints are Optuna constraints (value <= 0 is feasible),
so infeasible trials inform the sampler instead of vanishing; they are not
trained and carry CER 1.0.

Trials run a generation at a time (ask/tell; a generation is NSGA-II's
population): the feasible ones of a generation go through multi-objective
successive halving (``hwnas.training.halving``) over the rung budgets, so
only the promising ones train long. A trial's CER is its dev CER at the last
rung it reached; every rung it ran is kept with it (``rungs``,
``stopped_at``).

Storage is any Optuna storage URL (SQLite by default); the study name fixes
the study, so a killed search resumes: trials a killed process left running
are marked failed and their architectures asked again first.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hwnas import tasks
from hwnas.search.storage import open_storage
from hwnas.training.halving import Candidate, RungUnits, successive_halving

#: the speech recogniser's objectives (each task declares its own:
#: ``hwnas.tasks._base.Task.objectives``); the trained-quality ones are dev CER
#: pooled over the corpus's languages, the mean of the languages' CERs, or the
#: worst language's; a search has one quality objective
OBJECTIVES = ("cer", "cer_mean", "cer_worst", "latency", "delay", "rtf", "params")
QUALITY = ("cer", "cer_mean", "cer_worst")
UNTRAINED_CER = 1.0  # infeasible recognisers are not trained

#: ``run(arch, budget, state) -> (dev quality, state)``: trains ``arch`` up to
#: ``budget`` in total (continuing from ``state``), see ``hwnas.asr.train.rung_runner``;
#: or ``RungUnits`` (``training.halving``), which describes each training as a unit
Runner = Callable[[Any, float, Any], tuple[float, Any]] | RungUnits


@dataclass
class SearchConfig:
    target: str
    task: str = tasks.DEFAULT                     # whose architectures (hwnas.tasks)
    objectives: tuple[str, ...] = ("cer", "latency")
    max_latency_ms: float | None = None   # compute per device-graph call
    max_delay_ms: float | None = None     # emission delay (hwnas.asr.delay)
    max_rtf: float | None = None          # compute / audio per call
    max_params: int | None = None
    max_size_mb: float | None = None
    trials: int = 20
    time_budget_s: float | None = None   # stop starting generations after this (wall)
    rungs: tuple[float, ...] = (120.0,)  # training budget per rung, in rung_unit
    rung_unit: str = "CPU s"             # what a rung budget counts: CPU s, device s (an
                                         # accelerator's synchronised wall time), steps
    eta: int = 3                         # keep 1/eta at each rung
    generation: int | None = None        # trials asked together (default: population)
    population_size: int | None = None   # NSGA-II population (default: trials / 25, 4..50)
    sampler: str = "nsga2"
    seed: int = 0
    study: str = "hwnas"
    storage: str | None = None
    space: Any = None                    # a SearchSpace (default: the task's whole space)
    corpus: dict | None = None           # what trials train on (a study keeps one corpus)
    warm_start: tuple[Any, ...] = ()     # evaluated first in a new study (transfer)
    baselines: tuple[Any, ...] = ()      # hwnas.search.baselines.Baseline: a new study's first
    latency_source: str = "predicted"    # what predict_latency gives: predicted or measured

    def __post_init__(self) -> None:
        task = tasks.get(self.task)
        if self.space is None:
            self.space = task.default_space()
        bad = [o for o in self.objectives if o not in task.objectives]
        if bad or not self.objectives:
            raise ValueError(f"unknown objective(s) {', '.join(bad) or 'none'} for "
                             f"{self.task.upper()}; choose from {', '.join(task.objectives)}")
        if sum(o in task.quality for o in self.objectives) > 1:
            raise ValueError(f"give one quality objective: {' or '.join(task.quality)}")
        from hwnas import strategies

        if self.sampler not in strategies.names():
            raise ValueError(f"unknown strategy {self.sampler!r}; one of "
                             f"{', '.join(strategies.names())}")
        if self.trials < 1:
            raise ValueError("--trials must be >= 1")
        if not self.rungs or any(b <= a for a, b in zip(self.rungs, self.rungs[1:])) \
                or self.rungs[0] <= 0:
            raise ValueError("rung budgets must be positive and increasing, e.g. 1m,3m")
        if self.eta < 2:
            raise ValueError("--eta must be >= 2")

    @property
    def population(self) -> int:
        """About 25 generations whatever the trial count: with 200 trials a
        population of 6-8 beat 4, 12, 16, 24 and 50 at reaching random
        search's hypervolume (bench/search_efficiency.py, held-out seeds)."""
        return self.population_size or max(4, min(50, self.trials // 25))

    @property
    def batch(self) -> int:
        return self.generation or self.population


def quality_objective(cfg: SearchConfig) -> str | None:
    """The study's trained-quality objective (None: it trains nothing)."""
    return next((o for o in cfg.objectives if o in tasks.get(cfg.task).quality), None)


def quality_key(cfg: SearchConfig) -> str:
    """The field of a trial's record (and of a Pareto row) holding its quality."""
    task = tasks.get(cfg.task)
    return task.quality_key(quality_objective(cfg) or task.quality[0])


def quality_of(row: dict[str, Any]) -> float:
    """A Pareto row's quality (rows of studies made before tasks hold a CER)."""
    return row[row.get("quality_key", "cer")]


def make_strategy(cfg: SearchConfig) -> Any:
    from hwnas import strategies

    # strategies know the trained quality as "cer", whichever measure the study uses
    quality = tasks.get(cfg.task).quality
    objectives = tuple("cer" if o in quality else o for o in cfg.objectives)
    return strategies.make(cfg.sampler, cfg.space, seed=cfg.seed, objectives=objectives,
                           population=cfg.population)


def open_study(cfg: SearchConfig, sampler: Any = None) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=cfg.study, storage=open_storage(cfg.storage),
                                directions=["minimize"] * len(cfg.objectives),
                                sampler=sampler or make_strategy(cfg).sampler(),
                                load_if_exists=True)
    attrs = study.user_attrs
    check_continues(cfg, attrs)
    if cfg.corpus is not None:
        study.set_user_attr("corpus", cfg.corpus)
    study.set_user_attr("target", cfg.target)
    study.set_user_attr("objectives", list(cfg.objectives))
    # names shown by optuna-dashboard and the reports instead of "0", "1", ...
    import warnings

    with warnings.catch_warnings():   # experimental in Optuna 5, stable in what it stores
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([tasks.get(cfg.task).objectives[o] for o in cfg.objectives])
    if cfg.task != tasks.DEFAULT or "task" in attrs:   # the default task's says nothing (as before)
        study.set_user_attr("task", cfg.task)
    study.set_user_attr("quality_key", quality_key(cfg))
    study.set_user_attr("latency_source", cfg.latency_source)
    study.set_user_attr("generation", cfg.batch)
    study.set_user_attr("strategy", cfg.sampler)
    study.set_user_attr("rung_unit", cfg.rung_unit)
    study.set_user_attr("constraints", {"max_latency_ms": cfg.max_latency_ms,
                                        "max_delay_ms": cfg.max_delay_ms,
                                        "max_rtf": cfg.max_rtf,
                                        "max_params": cfg.max_params,
                                        "max_size_mb": cfg.max_size_mb})
    return study


def check_continues(cfg: SearchConfig, attrs: dict[str, Any]) -> None:
    """Refuse to continue a study (its ``attrs``) with another task, target,
    objectives or corpus: its trials would not compare."""
    if "target" in attrs and attrs.get("task", tasks.DEFAULT) != cfg.task:
        raise ValueError(f"study {cfg.study!r} searched {attrs.get('task', tasks.DEFAULT).upper()} "
                         f"architectures, not {cfg.task.upper()}; choose another --study")
    if attrs.get("target", cfg.target) != cfg.target:
        raise ValueError(f"study {cfg.study!r} searched for {attrs['target']}, "
                         f"not {cfg.target}; choose another --study")
    if attrs.get("objectives", list(cfg.objectives)) != list(cfg.objectives):
        raise ValueError(f"study {cfg.study!r} has objectives {','.join(attrs['objectives'])}; "
                         "choose another --study for other objectives")
    was = attrs.get("rung_unit", cfg.rung_unit)
    if "steps" not in (was, cfg.rung_unit) and was != cfg.rung_unit:
        raise ValueError(f"study {cfg.study!r} trained its trials by {was} (the budget of a "
                         f"{'CPU' if was == 'CPU s' else 'GPU'}), not {cfg.rung_unit}: its rungs "
                         f"would not compare; continue it with --train-device "
                         f"{'cpu' if was == 'CPU s' else 'cuda'}, or choose another --study")
    if cfg.corpus is not None and attrs.get("corpus", cfg.corpus) != cfg.corpus:
        from hwnas.training.prepare import corpus_text

        raise ValueError(f"study {cfg.study!r} trains on {corpus_text(attrs['corpus'])}, "
                         f"not {corpus_text(cfg.corpus)}: its CERs would not compare; "
                         "choose another --study")


def refuse_early(cfg: SearchConfig) -> None:
    """``check_continues`` before any work, where the study exists already."""
    import optuna

    try:
        study = optuna.load_study(study_name=cfg.study, storage=open_storage(cfg.storage))
    except KeyError:
        return
    check_continues(cfg, study.user_attrs)


def _requeue_orphans(study: Any) -> None:
    """Trials left RUNNING by a dead driver: failed, their params asked again.
    A trial a driver holds names it and carries a heartbeat (``Heartbeat``):
    a driver on this host whose process is gone is dead now; one elsewhere
    when its heartbeat is older than the grace period (Optuna's
    ``fail_stale_trials``; ``storage.ask_again`` requeues). A trial naming no
    driver (an in-memory study, a study of an older hwnas) is an orphan now."""
    import optuna

    optuna.storages.fail_stale_trials(study)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        driver = t.user_attrs.get("driver")
        if driver is None or _dead_here(driver):
            study.enqueue_trial(t.params, skip_if_exists=False)
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)


def _dead_here(driver: str) -> bool:
    """A driver ("host:pid") of this host whose process is gone: its trials are
    orphans now (a rerun after kill -9 takes them at once, without waiting for
    the grace period). Another host's driver is judged by its heartbeat."""
    import os
    import socket

    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:   # alive, another user's
        return False
    return False


class Heartbeat:
    """The trials this driver holds (asked, not told) get a heartbeat every
    ``storage.HEARTBEAT_S`` in a background thread, so that other drivers of a
    shared study (PostgreSQL) leave them alone, and notice when this one dies.
    On the way out (Ctrl-C, an error) the trials still held are failed and
    asked again at once: nobody waits for the grace period."""

    def __init__(self, study: Any) -> None:
        import os
        import socket
        import threading

        import optuna

        from hwnas.search.storage import HEARTBEAT_S

        self.study, self.held = study, {}
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        # Optuna's own heartbeat thread reaches the storage and trial id the same way
        storage = study._storage
        self.storage = storage if optuna.storages._heartbeat.is_heartbeat_enabled(storage) \
            else None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._beat, args=(HEARTBEAT_S,), daemon=True)

    def hold(self, trial: Any) -> None:
        trial.set_user_attr("driver", self.name)
        with self._lock:
            self.held[trial.number] = trial
        if self.storage is not None:
            self.storage.record_heartbeat(trial._trial_id)

    def release(self, trial: Any) -> None:
        with self._lock:
            self.held.pop(trial.number, None)

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            with self._lock:
                ids = [t._trial_id for t in self.held.values()]
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # noqa: BLE001 - told meanwhile, or the database blinked
                    pass

    def __enter__(self) -> Heartbeat:
        if self.storage is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        import optuna

        self._stop.set()
        for t in list(self.held.values()):
            try:
                self.study.enqueue_trial(t.params, skip_if_exists=False)
                self.study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            except Exception:  # noqa: BLE001 - told already; the original error matters
                pass
        self.held.clear()


def _complete(study: Any) -> int:
    import optuna

    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def _waiting(study: Any) -> int:
    import optuna

    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))


def _ask(study: Any, cfg: SearchConfig, strategy: Any, k: int) -> list[tuple[Any, Any]]:
    """``k`` (trial, architecture) pairs: first the architectures a killed
    run left (requeued), then the strategy's proposals."""
    out = []
    while len(out) < k and _waiting(study):
        trial = study.ask()
        out.append((trial, cfg.space.suggest(trial)))
    for arch in strategy.ask(k - len(out)):
        trial = strategy.trial_for(study, arch)
        got = cfg.space.suggest(trial)
        if got.id != arch.id:   # params_of and suggest disagree: a bug, never a silent swap
            raise RuntimeError(f"trial {trial.number} evaluates {got.id}, not the proposed "
                               f"{arch.id}")
        out.append((trial, got))
    return out


def judge(cfg: SearchConfig, arch: Any, predict_latency: Callable[[Any], float]
          ) -> tuple[dict[str, float], dict[str, float]]:
    """(the objective values of ``arch`` other than its quality, as predicted
    or measured before training; its constraint values: <= 0 is met). Known
    before any training, so strategies may use it to propose feasible
    architectures (``Strategy.bind``)."""
    values = tasks.get(cfg.task).judge(arch, float(predict_latency(arch)))
    latency, emission, rtf = values["latency"], values["delay"], values["rtf"]
    params, size = int(values["params"]), values["size"]
    cons = {"latency": latency - cfg.max_latency_ms if cfg.max_latency_ms else 0.0,
            "delay": emission - cfg.max_delay_ms if cfg.max_delay_ms else 0.0,
            "rtf": rtf - cfg.max_rtf if cfg.max_rtf else 0.0,
            "params": params - cfg.max_params if cfg.max_params else 0.0,
            "size": size - cfg.max_size_mb if cfg.max_size_mb else 0.0}
    return values, cons


def _constrain(cfg: SearchConfig, trial: Any, arch: Any,
               predict_latency: Callable[[Any], float]) -> Candidate | None:
    """Predicted compute, emission delay, real-time factor, parameters and size
    as Optuna constraints; the candidate to train when all are met (None:
    infeasible, not trained)."""
    v, cons = judge(cfg, arch, predict_latency)
    for key, c in cons.items():
        trial.set_constraint(key, c)
    feasible = all(c <= 0 for c in cons.values())
    for key, value in (("arch", arch.to_dict()), ("arch_id", arch.id),
                       ("latency_ms", v["latency"]), ("latency_source", cfg.latency_source),
                       ("delay_ms", v["delay"]), ("algorithmic_ms", v["algorithmic"]),
                       ("rtf", v["rtf"]), ("params", int(v["params"])), ("size_mb", v["size"]),
                       ("constraints", list(cons.values())), ("trained", feasible)):
        trial.set_user_attr(key, value)
    return Candidate(arch, v["latency"], tag=trial.number) if feasible else None


def _dedup(study: Any, cands: list[Candidate | None]
           ) -> tuple[dict[str, Candidate], dict[int, Any]]:
    """An architecture the study already trained (or this generation trains)
    is not trained again: the trial takes over that training (samplers do
    repeat). Returns (arch id -> the candidate that trains it, index -> the
    earlier trial or candidate it repeats)."""
    import optuna

    done = {t.user_attrs["arch_id"]: t for t in study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.user_attrs.get("trained") and t.user_attrs.get("rungs")}
    first: dict[str, Candidate] = {}
    repeat_of: dict[int, Any] = {}
    for i, cand in enumerate(cands):
        if cand is not None:
            earlier = done.get(cand.arch.id) or first.get(cand.arch.id)
            if earlier is None:
                first[cand.arch.id] = cand
            else:
                repeat_of[i] = earlier
    return first, repeat_of


def _tell(study: Any, cfg: SearchConfig, trial: Any, cand: Candidate | None,
          src: Any) -> tuple[Any, dict[str, float]]:
    """Record a trial's quality (its own training, or the one it repeats) and
    finish it; returns (frozen trial, objective values)."""
    task = tasks.get(cfg.task)
    cer = task.untrained
    if cand is not None:
        if isinstance(src, Candidate):
            cand.rungs, cand.stopped_at, cand.screen = src.rungs, src.stopped_at, src.screen
            if src.rungs:
                trial.set_user_attr("run_trial", src.tag)
        elif src is not None:
            cand.rungs = list(src.user_attrs["rungs"])
            cand.stopped_at = src.user_attrs["stopped_at"]
            cand.screen = list(src.user_attrs.get("screen", []))
            trial.set_user_attr("run_trial", src.user_attrs.get("run_trial", src.number))
        cer = cand.best_cer if math.isfinite(cand.best_cer) else task.untrained
        trial.set_user_attr("rungs", cand.rungs)
        trial.set_user_attr("stopped_at", cand.stopped_at)
        trial.set_user_attr("cer_source", cand.cer_source or "trained")
        if cand.screen:
            trial.set_user_attr("screen", cand.screen)
    trial.set_user_attr(quality_key(cfg), cer)
    if cand is not None and cand.best_by_lang:
        trial.set_user_attr("cer_by_lang", cand.best_by_lang)
    if cand is not None and cand.rungs and cand.rungs[-1].get("dev"):
        trial.set_user_attr("dev", cand.rungs[-1]["dev"])
    a = trial.user_attrs
    # a rung's quality is already the study's measure (e.g. pooled, mean or worst language)
    values = {**{q: cer for q in task.quality}, "latency": a["latency_ms"],
              "delay": a["delay_ms"], "rtf": a["rtf"], "params": float(a["params"])}
    return study.tell(trial, [values[o] for o in cfg.objectives]), values


def run_search(cfg: SearchConfig, predict_latency: Callable[[Any], float],
               runner: Runner,
               on_rung: Callable[[int, Candidate, int], None] | None = None,
               on_trial: Callable[[Any], None] | None = None,
               strategy: Any = None, executor: Any = None,
               screen: Callable[[list[Candidate]], list[Candidate]] | None = None) -> Any:
    """Run (or continue) the study until it holds ``cfg.trials`` finished trials
    or ``cfg.time_budget_s`` has passed (checked between generations).
    ``on_rung(trial_number, candidate, rung)`` sees each trained rung while
    the candidate's training state is alive (e.g. to save its weights).
    ``strategy`` proposes (default: ``cfg.sampler`` from the registry); each
    generation is ask, constraints, dedup, halving, tell. ``runner`` is a
    trainer callable or ``RungUnits`` (``hwnas.training.halving``), run
    through ``executor`` (default: in this process). ``screen`` scores a
    generation's candidates cheaply first (``Candidate.screen``, e.g. with
    weights inherited from a supernet) and returns the finalists that train
    stand-alone; the others keep their screened CER, labelled with its source."""
    import warnings

    import optuna

    strategy = strategy or make_strategy(cfg)
    study = open_study(cfg, strategy.sampler())
    # the study is asked and told here, not through Study.optimize: Optuna warns that
    # its heartbeat is meant for optimize, and that fail_stale_trials is experimental
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning,
                            message=".*fail_stale_trials")
    _requeue_orphans(study)
    judged: dict[str, tuple[dict[str, float], bool]] = {}

    def feasible_as_predicted(arch: Any) -> tuple[dict[str, float], bool]:
        if arch.id not in judged:   # strategies judge many candidates, often twice
            values, cons = judge(cfg, arch, predict_latency)
            judged[arch.id] = values, all(c <= 0 for c in cons.values())
        return judged[arch.id]

    # a measured latency costs a measurement on the device: strategies, which judge
    # many candidates they never propose, learn feasibility from told trials instead
    strategy.bind(study, feasible_as_predicted if cfg.latency_source == "predicted" else None)
    if not study.trials:   # a new study: the baselines go first, then a warm start's
        study.set_user_attr("baselines", {b.arch.id: b.to_dict() for b in cfg.baselines})
        for arch in ([b.arch for b in cfg.baselines] + list(cfg.warm_start))[:cfg.trials]:
            study.enqueue_trial(cfg.space.params_of(arch), skip_if_exists=True)
    strategy.resume(study.get_trials(deepcopy=False,
                                     states=(optuna.trial.TrialState.COMPLETE,)))
    t0 = time.monotonic()
    with Heartbeat(study) as beat:
        _generations(study, cfg, strategy, predict_latency, runner, beat, t0, on_rung, on_trial,
                     executor, screen)
    return study


def _generations(study: Any, cfg: SearchConfig, strategy: Any,
                 predict_latency: Callable[[Any], float], runner: Runner,
                 beat: Heartbeat, t0: float, on_rung: Any, on_trial: Any, executor: Any,
                 screen: Any) -> None:
    while _complete(study) < cfg.trials:
        if cfg.time_budget_s is not None and time.monotonic() - t0 >= cfg.time_budget_s:
            break
        _requeue_orphans(study)   # another driver that died meanwhile
        # what waits (baselines, a warm start, a killed generation) goes in one generation
        asked = _ask(study, cfg, strategy, min(max(cfg.batch, _waiting(study)),
                                               cfg.trials - _complete(study)))
        for trial, _ in asked:
            beat.hold(trial)
        cands = [_constrain(cfg, trial, arch, predict_latency) for trial, arch in asked]
        baselines = study.user_attrs.get("baselines") or {}
        for trial, arch in asked:
            if arch.id in baselines:
                trial.set_user_attr("baseline", baselines[arch.id]["name"])
        first, repeat_of = _dedup(study, cands)
        finalists = list(first.values())
        if finalists and screen is not None:   # baselines train stand-alone, unscreened:
            # the answer is always set beside them
            kept = [c for c in finalists if c.arch.id in baselines]
            rest = [c for c in finalists if c.arch.id not in baselines]
            finalists = kept + (screen(rest) if rest else [])
        if finalists:
            successive_halving(finalists, runner, cfg.rungs, cfg.eta,
                               on_result=(lambda c, r: on_rung(c.tag, c, r)) if on_rung else None,
                               executor=executor)
        for i, ((trial, arch), cand) in enumerate(zip(asked, cands)):
            frozen, values = _tell(study, cfg, trial, cand, repeat_of.get(i))
            beat.release(trial)
            strategy.tell(arch, values, cand is not None)
            if on_trial:
                on_trial(frozen)


BROKEN = "broken:"   # study attribute broken:<run trial> = why that trial's run is unusable


def broken(study: Any) -> dict[int, str]:
    """Trials whose trained run could not be read (set aside): run trial -> why.
    They count as failed: no answer, report or baseline uses them."""
    return {int(k[len(BROKEN):]): v for k, v in study.user_attrs.items()
            if k.startswith(BROKEN) and k[len(BROKEN):].isdigit()}


def _trained_feasible(study: Any) -> list[Any]:
    """Finished trials trained stand-alone that meet every constraint as
    predicted, less those whose run was found broken."""
    import optuna

    bad = broken(study)
    return [t for t in study.get_trials(deepcopy=False,
                                        states=(optuna.trial.TrialState.COMPLETE,))
            if t.user_attrs.get("trained") and t.user_attrs.get("run_trial", t.number) not in bad
            and all(c <= 0 for c in t.user_attrs["constraints"])
            and t.user_attrs.get("cer_source", "trained") == "trained"]


def _row(t: Any, key: str) -> dict[str, Any]:
    a = t.user_attrs
    return {"trial": t.number, "run_trial": a.get("run_trial", t.number), "quality_key": key,
            key: a.get(key),
            **{k: a.get(k) for k in ("arch_id", "cer", "cer_by_lang", "latency_ms",
                                     "latency_source", "delay_ms", "algorithmic_ms", "rtf",
                                     "params", "size_mb", "arch", "rungs", "baseline", "dev")
               if k in a or k not in ("cer", "dev")}}


def _key(study: Any) -> str:
    return study.user_attrs.get("quality_key", "cer")


def pareto(study: Any) -> list[dict[str, Any]]:
    """Feasible Pareto-optimal trials among those trained stand-alone, lowest
    CER first (a CER inherited from a supernet never makes the answer)."""
    import numpy as np

    from hwnas.training.halving import nondominated_fronts

    done = _trained_feasible(study)
    best = ([done[i] for i in nondominated_fronts(np.array([t.values for t in done]))[0]]
            if done else [])
    rows, seen = [], set()
    for t in sorted(best, key=lambda t: t.number):
        if t.user_attrs["arch_id"] not in seen:  # a repeated architecture once
            seen.add(t.user_attrs["arch_id"])
            rows.append(_row(t, _key(study)))
    return sorted(rows, key=lambda r: (quality_of(r), r["latency_ms"]))


def best_baseline(study: Any) -> dict[str, Any] | None:
    """The feasible baseline trial of lowest CER (ties: faster), as a row."""
    from hwnas.search.baselines import best

    return best([_row(t, _key(study)) for t in _trained_feasible(study)
                 if t.user_attrs.get("baseline")])


def took(rung: dict[str, Any], unit: str) -> float:
    """The training a rung's record says it took, in the study's ``unit`` (CPU s
    or steps): a floor of updates may stretch a rung past its budget; records
    made before rungs kept it have their budget."""
    return float(rung.get("steps" if unit == "steps" else "cpu_s", rung["budget_s"]))


def spent(study: Any) -> float:
    """The stand-alone training the study's trials spent (CPU s or steps): each
    trained run's last rung as it ran, once however many trials repeat it."""
    unit = study.user_attrs.get("rung_unit", "CPU s")
    runs = {t.user_attrs.get("run_trial", t.number): t.user_attrs["rungs"][-1]
            for t in study.get_trials(deepcopy=False) if t.user_attrs.get("rungs")}
    return float(sum(took(r, unit) for r in runs.values()))


def select_for_target(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The lowest-CER architecture meeting every constraint (ties: faster);
    one verified as met comes before a borderline one."""
    rows = sorted(rows, key=lambda r: (r.get("verdict") == "borderline", quality_of(r),
                                       r["latency_ms"]))
    return rows[0] if rows else None
