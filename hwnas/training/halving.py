"""Multi-objective successive halving.

Optuna's pruners do not support multi-objective studies, so the search uses
this instead: every candidate trains for the first rung's budget; the ones
non-dominated on (CER so far, latency) -- fronts taken in order, the last
one cut by crowding distance as in NSGA-II -- go on to the next, longer rung
(continuing from where they stopped); the rest stop early. Each candidate
keeps the result of every rung it ran.

The trainer is a callable ``run(arch, budget_s, state) -> (cer, state)``
that trains ``arch`` up to ``budget_s`` seconds in total, continuing from
``state`` (None at the first rung), so the evaluator knows nothing about
models or data -- or, to run the trainings through an executor (another
process, a cluster), a :class:`RungUnits` that describes each as a unit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from hwnas.space.space import Arch

#: first rung >= 2 CPU-minutes: at 1 minute a BLSTM still emits only blanks
#: and the ranking is wrong (measured; see the data/training notes)
DEFAULT_RUNGS = (120.0, 360.0, 1080.0)

#: how far a rung with a floor of updates may stretch its CPU time: a model
#: too slow to take its floor in twice the rung's time is judged there
STRETCH = 2.0


def floor_options(budget_s: float, floor: int) -> dict[str, Any]:
    """Training options that make a CPU-time rung of ``budget_s`` last at least
    ``floor`` updates, up to STRETCH times as long. At equal seconds, models
    that are slow per update are still early in their curve when small fast
    ones have flattened, so an equal-seconds rung ranks by who learns first,
    not who ends best (bench/rung_fidelity.py measures both)."""
    return {"min_steps": int(floor), "max_cpu_seconds": STRETCH * budget_s} if floor else {}


@dataclass
class Candidate:
    arch: Arch
    latency_ms: float
    rungs: list[dict[str, Any]] = field(default_factory=list)  # rung, budget_s, cer
    state: Any = None
    stopped_at: int | None = None  # rung after which it stopped (None: ran them all)
    tag: Any = None                # the caller's handle (e.g. its trial number)
    #: cheaper scores before any training (source, cer, cpu_s), e.g. inherited
    #: from a supernet; a candidate screened out keeps only these
    screen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cer(self) -> float:
        return self.rungs[-1]["cer"] if self.rungs else float("inf")

    @property
    def best_by_lang(self) -> dict[str, float] | None:
        """Dev CER per language of the last rung (multilingual corpora)."""
        return self.rungs[-1].get("by_lang") if self.rungs else None

    @property
    def cer_source(self) -> str | None:
        """Where ``best_cer`` comes from: trained (stand-alone), or a screen's source."""
        return "trained" if self.rungs else (self.screen[-1]["source"] if self.screen else None)

    @property
    def best_cer(self) -> float:
        """The CER of the most faithful score it has: trained, else screened."""
        return self.cer if self.rungs else (self.screen[-1]["cer"] if self.screen
                                            else float("inf"))


def nondominated_fronts(points: np.ndarray) -> list[list[int]]:
    """Fronts of a (N, M) array of objectives to minimise (fast non-dominated sort)."""
    n = len(points)
    dominated_by = [[] for _ in range(n)]
    count = np.zeros(n, dtype=int)
    for i in range(n):
        for j in range(n):
            if i != j and np.all(points[i] <= points[j]) and np.any(points[i] < points[j]):
                dominated_by[i].append(j)
            elif i != j and np.all(points[j] <= points[i]) and np.any(points[j] < points[i]):
                count[i] += 1
    fronts, current = [], [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    return fronts


def crowding(points: np.ndarray) -> np.ndarray:
    n, m = points.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(points[:, k], kind="stable")
        span = points[order[-1], k] - points[order[0], k] or 1.0
        d[order[0]] = d[order[-1]] = np.inf
        d[order[1:-1]] += (points[order[2:], k] - points[order[:-2], k]) / span
    return d


def select(points: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` best by front, then crowding distance, then the
    first objective (CER)."""
    chosen: list[int] = []
    for front in nondominated_fronts(points):
        if len(chosen) + len(front) <= k:
            chosen += front
            continue
        cd = crowding(points[front])
        # equally crowded (e.g. both ends of the front): the lower CER first --
        # training longer refines CER, while latency does not change with it
        order = sorted(range(len(front)), key=lambda i: (-cd[i], points[front[i], 0],
                                                         front[i]))
        chosen += [front[i] for i in order[: k - len(chosen)]]
        break
    return chosen


@dataclass
class _Call:
    """A trainer callable as a unit of work (in-process only: it holds the callable)."""
    fn: Callable[[Arch, float, Any], tuple[float, Any]]
    arch: Arch
    budget: float
    state: Any

    def run(self, ctx: Any) -> tuple[float, Any]:
        return self.fn(self.arch, self.budget, self.state)


@dataclass
class _CallRungs:
    """``RungUnits`` over a plain trainer callable: its state stays in memory."""
    fn: Callable[[Arch, float, Any], tuple[float, Any]]

    def unit(self, cand: Candidate, budget: float, rung: int) -> _Call:
        return _Call(self.fn, cand.arch, budget, cand.state)

    def result(self, cand: Candidate, out: tuple[float, Any]) -> tuple[float, Any]:
        return out

    def details(self, out: Any) -> dict[str, Any]:
        return {}

    def release(self, cand: Candidate) -> None:
        pass


class RungUnits(Protocol):
    """How a rung's training becomes units an executor can run elsewhere:
    ``unit(candidate, budget, rung)`` describes the work, ``result(candidate,
    out)`` turns what the unit returned into ``(cer, state)``."""

    def unit(self, cand: Candidate, budget: float, rung: int) -> Any: ...

    def result(self, cand: Candidate, out: Any) -> tuple[float, Any]: ...

    def details(self, out: Any) -> dict[str, Any]:
        """What a rung's record keeps beside its CER (e.g. ``by_lang``)."""
        ...

    def release(self, cand: Candidate) -> None:
        """The candidate trains no more: let go of its state."""


def successive_halving(candidates: Sequence[Candidate],
                       run: Callable[[Arch, float, Any], tuple[float, Any]] | RungUnits,
                       rungs: Sequence[float] = DEFAULT_RUNGS, eta: int = 3,
                       on_result: Callable[[Candidate, int], None] | None = None,
                       executor: Any = None) -> list[Candidate]:
    """Run the rungs; returns the candidates (all of them, with their rungs).
    A rung's trainings go out through ``executor`` (default: in this process)
    as units, all of a rung at once; results are taken in candidate order."""
    from hwnas.execution import LocalExecutor

    if eta < 2:
        raise ValueError("eta must be >= 2")
    if not rungs or any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise ValueError("rung budgets must be increasing")
    executor = executor or LocalExecutor()
    rungs_of = _CallRungs(run) if callable(run) else run
    alive = list(range(len(candidates)))
    for r, budget in enumerate(rungs):
        outs = executor.map(rungs_of.unit(candidates[i], budget, r) for i in alive)
        for i, out in zip(alive, outs):
            c = candidates[i]
            cer, c.state = rungs_of.result(c, out)
            details = getattr(rungs_of, "details", None)
            c.rungs.append({"rung": r, "budget_s": budget, "cer": float(cer),
                            **(details(out) if details else {})})
            if on_result:
                on_result(c, r)
        if r == len(rungs) - 1:
            break
        keep = max(1, len(alive) // eta)
        pts = np.array([[candidates[i].cer, candidates[i].latency_ms] for i in alive])
        survivors = [alive[j] for j in select(pts, keep)]
        for i in alive:
            if i not in survivors:
                candidates[i].stopped_at = r
        alive = sorted(survivors)
    for c in candidates:
        if c.state is not None:
            rungs_of.release(c)
        c.state = None  # models are not kept past the search step
    return list(candidates)
