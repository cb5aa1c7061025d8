"""Regularised (aging) evolution, multi-objective (Real et al. 2019, with
Pareto ranks for fitness): a population of the most recent ``population``
results; each child is a mutation of a tournament winner, or, with
probability ``CROSSOVER``, the crossover of two winners, then mutated.
Tournaments prefer feasible results, then a lower non-domination rank on
the objectives, then lower CER. Until the population is full, children are
random samples.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from hwnas.asr import ArchConfig
from hwnas.strategies._base import Strategy

TOURNAMENT = 3
CROSSOVER = 0.3


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and a != b


class Evolution(Strategy):
    name = "evolution"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.members: deque[tuple[ArchConfig, tuple[float, ...], bool]] = \
            deque(maxlen=self.population)
        self.told = 0

    def tell(self, arch: ArchConfig, values: dict[str, float], feasible: bool) -> None:
        self.members.append((arch, tuple(values[o] for o in self.objectives), feasible))
        self.told += 1

    def _rng(self) -> random.Random:
        # seeded by how much has been told: a resumed search proposes what an
        # uninterrupted one would have
        return random.Random(f"{self.seed}:{self.told}")

    def _fitness(self) -> list[tuple[int, int, float]]:
        pts = [(m[1], m[2]) for m in self.members]
        return [(0 if ok else 1, sum(_dominates(q, v) for q, okq in pts if okq == ok), v[0])
                for v, ok in pts]

    def ask(self, n: int) -> list[ArchConfig]:
        rng = self._rng()
        if len(self.members) < self.population:
            return [self.space.sample(rng) for _ in range(n)]
        fit = self._fitness()

        def winner() -> ArchConfig:
            idx = rng.sample(range(len(self.members)), min(TOURNAMENT, len(self.members)))
            return self.members[min(idx, key=lambda i: fit[i])][0]

        out = []
        for _ in range(n):
            child = self.space.crossover(winner(), winner(), rng) \
                if rng.random() < CROSSOVER else winner()
            out.append(self.space.mutate(child, rng))
        return out
