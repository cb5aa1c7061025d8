"""What a search strategy is: it proposes architectures and learns from results.

The loop (``hwnas.search.study.run_search``) owns the Optuna study. A
strategy's proposals enter it as fixed-parameter trials
(``SearchSpace.params_of``), so storage, the dashboard, resume and the report
do not care who proposed a trial. A strategy keeps no state that the study
does not hold: on resume, ``resume`` replays the study's finished trials
through ``tell``.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from hwnas.space import SearchSpace
from hwnas.space.record import ArchRecord

#: the speed objectives and the constraint that limits each
SPEED = (("latency", "max_latency_ms"), ("delay", "max_delay_ms"), ("rtf", "max_rtf"))

#: ``judge(arch) -> (predicted values by objective name except "cer", feasible)``
Judge = Callable[[ArchRecord], tuple[dict[str, float], bool]]


class Strategy(ABC):
    """``ask(n)`` proposes, ``tell(arch, values, feasible)`` learns."""

    #: decisions the strategy reasons about by name (a space without them is refused)
    decisions: tuple[str, ...] = ()

    #: what ``hwnas search --sampler`` calls it (the registry's key)
    name = ""

    def __init__(self, space: SearchSpace, seed: int = 0, objectives: Sequence[str] = ("cer",),
                 population: int = 8) -> None:
        self.space, self.seed, self.objectives = space, seed, tuple(objectives)
        self.population = population
        self.study: Any = None
        self.judge: Judge | None = None

    @abstractmethod
    def ask(self, n: int) -> list[ArchRecord]:
        """``n`` architectures to evaluate next (repeats are allowed: the loop
        does not train an architecture twice)."""

    def tell(self, arch: ArchRecord, values: dict[str, float], feasible: bool  # noqa: B027
             ) -> None:
        """The result of a proposal: objective values by name (``cer``,
        ``latency``, ``params``), and whether it met the constraints."""

    # -- how proposals meet the study ----------------------------------------------
    def sampler(self) -> Any:
        """The Optuna sampler the study is opened with. Fixed-parameter trials
        never consult it; it only names a deterministic default."""
        import optuna

        return optuna.samplers.RandomSampler(seed=self.seed)

    def bind(self, study: Any, judge: Judge | None = None) -> None:
        """The study this strategy proposes into (before the first ``ask``), and
        the search's ``judge``: an architecture's predicted objective values
        other than CER, and whether it meets the constraints as predicted."""
        self.study, self.judge = study, judge

    def speed_target(self) -> tuple[str, float] | None:
        """(speed objective, its limit) the study constrains, preferring one
        that is also an objective; None without a speed constraint."""
        limits = (self.study.user_attrs.get("constraints") or {}) if self.study else {}
        keyed = [(k, limits.get(lim)) for k, lim in SPEED if limits.get(lim)]
        preferred = [kv for kv in keyed if kv[0] in self.objectives]
        return (preferred or keyed or [None])[0]

    def feasible(self, arch: ArchRecord) -> bool:
        """Whether ``arch`` meets the constraints as predicted (True without a judge)."""
        return self.judge is None or self.judge(arch)[1]

    def feasible_samples(self, rng: random.Random, n: int, exclude: set[str],
                         tries: int | None = None) -> list[ArchRecord]:
        """Up to ``n`` distinct random architectures that meet the constraints as
        predicted and are not in ``exclude`` (ids), from at most ``tries``
        samples (default 50 per architecture asked for)."""
        out: dict[str, ArchRecord] = {}
        for _ in range(50 * n if tries is None else tries):
            if len(out) >= n:
                break
            a = self.space.sample(rng)
            if a.id not in exclude and a.id not in out and self.feasible(a):
                out[a.id] = a
        return list(out.values())

    def trial_for(self, study: Any, arch: ArchRecord) -> Any:
        """A study trial that evaluates ``arch``: a fixed-parameter trial."""
        study.enqueue_trial(self.space.params_of(arch), skip_if_exists=False)
        return study.ask()

    def resume(self, trials: Sequence[Any]) -> None:
        """Rebuild the state from the study's finished trials (number order)."""
        # the trained quality's field (a study made before tasks holds a CER)
        key = (self.study.user_attrs.get("quality_key", "cer") if self.study is not None
               else "cer")
        for t in sorted(trials, key=lambda t: t.number):
            a = t.user_attrs
            if "arch" not in a or t.values is None:
                continue
            values = {"cer": a.get(key, math.nan), "latency": a.get("latency_ms", math.nan),
                      "delay": a.get("delay_ms", math.nan), "rtf": a.get("rtf", math.nan),
                      "params": float(a.get("params", math.nan))}
            self.tell(self.space.arch_type.from_dict(a["arch"]), values,
                      all(c <= 0 for c in a.get("constraints", [0.0])))
