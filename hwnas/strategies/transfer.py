"""Transfer from vision NAS: EfficientNet's compound scaling (Tan & Le, 2019).

EfficientNet found its base network by search, then scaled depth by
alpha ** phi, width by beta ** phi and input resolution by gamma ** phi with
alpha = 1.2, beta = 1.1, gamma = 1.15 (alpha * beta**2 * gamma**2 ~ 2: phi + 1
about doubles the FLOPs). Here depth is ``num_layers``, width ``d_model`` and
resolution the filter bank (``n_filters``); each scaled value snaps to the
nearest choice the space allows.

The base is the best architecture trained so far (lowest CER, meeting the
constraints): after a short random start of ``population`` feasible samples,
or the Pareto set of another study enqueued first (``--warm-start``). phi is
searched under the constraint: every phi on a grid whose scaled network meets
the constraints as predicted is proposed, the largest first, and whenever a
scaled network becomes the best, it is the next base. Proposals are a pure
function of the results told so far, so a resumed search proposes exactly
what an uninterrupted one would.
"""

from __future__ import annotations

import random
from typing import Any

from hwnas.space.record import ArchRecord
from hwnas.strategies._base import Strategy

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
PHIS = tuple(x / 2 for x in range(8, -9, -1))   # 4, 3.5, ..., -4: largest first


def scale(space: Any, base: ArchRecord, phi: float) -> ArchRecord:
    """``base`` compound-scaled by ``phi``, snapped into ``space``."""
    d = base.to_dict()
    return space.nearest({**d, "num_layers": d["num_layers"] * ALPHA ** phi,
                          "d_model": d["d_model"] * BETA ** phi,
                          "n_filters": d["n_filters"] * GAMMA ** phi})


class CompoundScaling(Strategy):
    name = "transfer"
    decisions = ("num_layers", "d_model", "n_filters")   # depth, width, resolution

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.told: list[tuple[ArchRecord, float, bool]] = []

    def tell(self, arch: ArchRecord, values: dict[str, float], feasible: bool) -> None:
        self.told.append((arch, values.get("cer", 1.0), feasible))

    def ask(self, n: int) -> list[ArchRecord]:
        rng = random.Random(f"{self.seed}:{len(self.told)}")
        seen = {a.id for a, _, _ in self.told}
        bases = sorted(((cer, i, a) for i, (a, cer, ok) in enumerate(self.told) if ok),
                       key=lambda t: (t[0], t[1]))
        out: dict[str, ArchRecord] = {}
        if len(bases) >= min(self.population, 4) or len(self.told) >= self.population:
            for _, _, base in bases:
                for phi in PHIS:
                    a = scale(self.space, base, phi)
                    if a.id not in seen and a.id not in out and self.feasible(a):
                        out[a.id] = a
                if len(out) >= n:
                    break
        # the random start, or nothing left to scale
        for a in self.feasible_samples(rng, n - len(out), seen | set(out), tries=50 * n):
            out[a.id] = a
        got = list(out.values())[:n]
        return got + [self.space.sample(rng) for _ in range(n - len(got))]
