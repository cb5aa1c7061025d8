"""Optuna's samplers as strategies: NSGA-II (the default), TPE, GP, random.

They propose through the study itself (``study.ask`` + ``SearchSpace.suggest``)
and learn from what the loop tells the study, so ``tell`` has nothing to do
and the state lives entirely in the study.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from hwnas.space.record import ArchRecord
from hwnas.strategies._base import Strategy


class OptunaStrategy(Strategy):
    def bind(self, study: Any, judge: Any = None) -> None:
        super().bind(study, judge)
        self._asked: dict[str, deque] = defaultdict(deque)

    def ask(self, n: int) -> list[ArchRecord]:
        out = []
        for _ in range(n):
            trial = self.study.ask()
            arch = self.space.suggest(trial)
            self._asked[arch.id].append(trial)
            out.append(arch)
        return out

    def trial_for(self, study: Any, arch: ArchRecord) -> Any:
        return self._asked[arch.id].popleft()   # the trial the sampler asked for it


class NSGA2(OptunaStrategy):
    name = "nsga2"

    def sampler(self) -> Any:
        """Constraints reach it through ``trial.set_constraint`` (Optuna 5)."""
        import optuna

        return optuna.samplers.NSGAIISampler(seed=self.seed, population_size=self.population)


class TPE(OptunaStrategy):
    name = "tpe"

    def sampler(self) -> Any:
        import optuna

        return optuna.samplers.TPESampler(seed=self.seed)


class GP(OptunaStrategy):
    name = "gp"

    def sampler(self) -> Any:
        import optuna

        return optuna.samplers.GPSampler(seed=self.seed)


class Random(OptunaStrategy):
    name = "random"
