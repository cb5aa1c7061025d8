"""Non-dominated sorting and crowding distance (Deb et al., NSGA-II) on a
handful of points: what the evolution's tournaments and the Bayesian
optimisation's reference front need. Optuna has both, but privately; these
are a few lines over at most a few hundred points."""

from __future__ import annotations

from collections.abc import Sequence

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """``a`` is no worse than ``b`` everywhere and better somewhere (minimising)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def ranks(points: Sequence[Point]) -> list[int]:
    """Non-domination rank of each point: 0 for the Pareto front, 1 for the
    front once that is removed, and so on."""
    left, out, r = set(range(len(points))), [0] * len(points), 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        for i in front:
            out[i] = r
        left -= front
        r += 1
    return out


def crowding(points: Sequence[Point], rank: Sequence[int]) -> list[float]:
    """Crowding distance within each rank (inf at a front's extremes): larger
    means a lonelier point, which keeps a population spread along the front."""
    out = [0.0] * len(points)
    for r in set(rank):
        idx = [i for i in range(len(points)) if rank[i] == r]
        for m in range(len(points[0]) if points else 0):
            idx.sort(key=lambda i: points[i][m])
            lo, hi = points[idx[0]][m], points[idx[-1]][m]
            out[idx[0]] = out[idx[-1]] = float("inf")
            if hi > lo:
                for a, i, b in zip(idx, idx[1:], idx[2:]):
                    out[i] += (points[b][m] - points[a][m]) / (hi - lo)
    return out
