"""Differentiable search (DARTS; Liu et al., 2019), latency-aware as in
FBNet, over the task's weight-sharing supernets (the recogniser's:
``hwnas.asr.supernet.relax``).

Each proposal is one first-order DARTS run around a base architecture: its
depth, FFN ratio and convolution kernel become softmax-weighted mixtures
inside the family's supernet; weight steps on training batches alternate with
architecture steps on dev batches, whose loss adds the expected latency
(per-choice marginal costs from the target's latency predictor, through the
search's judge) and beta-decay regularisation against collapse. The derived
architecture is enqueued as a trial and trained and verified like any other.

The base is the best trained architecture so far among the families DARTS can
relax (a feasible random one before any result); the proposals of a
generation differ in their latency weight (``LATENCY_WEIGHTS``, cycled), so
they spread along the accuracy-latency front. Every run is seeded from the
seed and the number of results told, and starts from the saved supernet, so
a resumed search proposes what an uninterrupted one would.
"""

from __future__ import annotations

import math
import random
from typing import Any

from hwnas.space.record import ArchRecord
from hwnas.strategies._base import Strategy

LATENCY_WEIGHTS = (0.0, 0.5, 2.0)
STEPS = 20
RELAXABLE = ("conformer", "transformer", "contextnet", "cnn_lstm")


class Darts(Strategy):
    name = "darts"
    decisions = ("encoder",)   # relaxes a recogniser family's supernet

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.told: list[tuple[ArchRecord, float, bool]] = []
        self.nets: dict[str, Any] | None = None
        self.runs: list[dict[str, Any]] = []   # what each DARTS run found (for reports)

    def use_supernets(self, nets: dict[str, Any], splits_of: Any, tokenizer: Any,
                      relax: Any) -> None:
        """The families' supernets, ``splits_of(frontend, n_filters)`` and the
        tokenizer: what the relaxation trains and scores on; ``relax``: the
        task's differentiable search over one supernet
        (``hwnas.asr.supernet.relax.differentiable_search``)."""
        self.nets, self.splits_of, self.tok, self.relax = nets, splits_of, tokenizer, relax

    def tell(self, arch: ArchRecord, values: dict[str, float], feasible: bool) -> None:
        self.told.append((arch, values.get("cer", math.nan), feasible))

    def _base(self, rng: random.Random, seen: set[str]) -> ArchRecord:
        assert self.nets is not None
        usable = [f for f in RELAXABLE if f in self.nets]
        if not usable:
            raise ValueError("--strategy darts relaxes conformer, transformer, contextnet or "
                             "cnn_lstm architectures; the space has none of these families")
        done = sorted(((cer, i, a) for i, (a, cer, ok) in enumerate(self.told)
                       if ok and math.isfinite(cer) and cer < 1.0 and a.encoder in usable),
                      key=lambda t: (t[0], t[1]))
        if done:
            return done[0][2]
        space = self.space.with_choices({"encoder": usable})
        for _ in range(500):
            a = space.sample(rng)
            if a.id not in seen and self.feasible(a):
                return a
        return space.sample(rng)

    def ask(self, n: int) -> list[ArchRecord]:
        if self.nets is None:
            raise ValueError("--strategy darts needs the families' supernets; `hwnas search` "
                             "trains them where the workspace has none")
        g = len(self.told)
        rng = random.Random(f"{self.seed}:{g}")
        seen = {a.id for a, _, _ in self.told}
        target = self.speed_target()
        key = target[0] if target else "latency"

        def cost(arch: ArchRecord) -> float:
            return float(self.judge(arch)[0][key]) if self.judge else float(arch.num_layers)

        out: list[ArchRecord] = []
        for i in range(n):
            base = self._base(rng, seen)
            limit = target[1] if target else max(cost(base), 1e-9)
            w = LATENCY_WEIGHTS[(g + i) % len(LATENCY_WEIGHTS)]
            arch, info = self.relax(
                self.nets[base.encoder], base, self.splits_of, self.tok, cost, limit,
                steps=STEPS, latency_weight=w, seed=self.seed * 100_003 + g + i)
            # the supernet's vocabulary is the corpus's; the study's architectures keep theirs
            arch = self.space.nearest({**arch.to_dict(), "vocab_size": base.vocab_size})
            self.runs.append({"base": base.id, "derived": arch.id, **info})
            if arch.id in seen or any(a.id == arch.id for a in out) or not self.feasible(arch):
                # already evaluated, or infeasible as predicted: a feasible neighbour
                for _ in range(50):
                    cand = self.space.mutate(arch, rng)
                    if cand.id not in seen and self.feasible(cand):
                        arch = cand
                        break
            out.append(arch)
            seen.add(arch.id)
        return out
