"""Regularised (aging) evolution (Real et al., 2019), made multi-objective.

The population is the ``population`` most recent results: each new result
pushes out the oldest, whatever its fitness (the aging that regularises).
A parent is the winner of a tournament of ``TOURNAMENT`` random members:
feasible beats infeasible, then a lower non-domination rank on the
objectives, then a larger crowding distance (NSGA-II's order). A child is a
mutation of a winner or, with probability ``CROSSOVER``, the crossover of two
winners, mutated. Until the population is full, children are random samples.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from hwnas.space.record import ArchRecord
from hwnas.strategies._base import Strategy
from hwnas.strategies._pareto import crowding, ranks

TOURNAMENT = 3
CROSSOVER = 0.3


class Evolution(Strategy):
    name = "evolution"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.members: deque[tuple[ArchRecord, tuple[float, ...], bool]] = \
            deque(maxlen=self.population)
        self.told = 0

    def tell(self, arch: ArchRecord, values: dict[str, float], feasible: bool) -> None:
        self.members.append((arch, tuple(values[o] for o in self.objectives), feasible))
        self.told += 1

    def _rng(self) -> random.Random:
        # seeded by how much has been told: a resumed search proposes what an
        # uninterrupted one would have
        return random.Random(f"{self.seed}:{self.told}")

    def _fitness(self) -> list[tuple[int, int, float]]:
        """Per member, smaller is fitter: (infeasible, rank, -crowding), where
        rank and crowding are taken among members of the same feasibility."""
        out: list[tuple[int, int, float]] = [(0, 0, 0.0)] * len(self.members)
        for ok in (True, False):
            idx = [i for i, m in enumerate(self.members) if m[2] == ok]
            pts = [self.members[i][1] for i in idx]
            rk = ranks(pts)
            for i, r, c in zip(idx, rk, crowding(pts, rk)):
                out[i] = (0 if ok else 1, r, -c)
        return out

    def ask(self, n: int) -> list[ArchRecord]:
        rng = self._rng()
        if len(self.members) < self.population:
            return [self.space.sample(rng) for _ in range(n)]
        fit = self._fitness()

        def winner() -> ArchRecord:
            idx = rng.sample(range(len(self.members)), min(TOURNAMENT, len(self.members)))
            return self.members[min(idx, key=lambda i: fit[i])][0]

        out = []
        for _ in range(n):
            child = self.space.crossover(winner(), winner(), rng) \
                if rng.random() < CROSSOVER else winner()
            out.append(self.space.mutate(child, rng))
        return out
