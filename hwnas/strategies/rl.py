"""A REINFORCE controller over the decision graph (Zoph & Le 2017; the reward
of MnasNet, Tan et al. 2019).

The policy is autoregressive: decision i's logits are a bias plus a linear
function of the one-hot values of every earlier decision (a NADE-style
policy; an LSTM controller is the same idea with more parameters than a
200-trial search can fit). Only the choices a decision allows in its context
can be drawn, and a decision that does not apply is skipped.

Reward, maximised: ``(1 - CER) * (m / T) ** w`` where m is the predicted
speed (the first of latency, delay, rtf that the study constrains, limit T).
``soft``: w = -0.07 on both sides of T; ``hard``: w = 0 under T and -1
beyond it. An untrained (infeasible) trial has CER 1, so reward 0. Updates
are one REINFORCE step per result against an exponential moving-average
baseline, with an entropy bonus that keeps the policy from collapsing early.

The policy is saved in the study's attributes (``rl_policy``, JSON) at every
``ask``; a resumed search loads it and replays only the results told after
it, so it continues the same policy.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from hwnas.space.record import ArchRecord
from hwnas.strategies._base import Strategy

LEARNING_RATE = 0.5
ENTROPY = 0.02
BASELINE_DECAY = 0.9


class Reinforce(Strategy):
    name = "rl"
    weight: tuple[float, float] = (-0.07, -0.07)   # w under and beyond the target

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.decisions = self.space.decisions
        sizes = [len(d.choices) + 1 for d in self.decisions]   # + "does not apply"
        self.offsets = [int(x) for x in np.cumsum([0, *sizes])]
        self.bias = [np.zeros(len(d.choices)) for d in self.decisions]
        self.w = [np.zeros((len(d.choices), self.offsets[i]))
                  for i, d in enumerate(self.decisions)]
        self.baseline: float | None = None
        self.told = 0
        #: a quality other than a CER (0 best, 1 worst) is rewarded on its own scale:
        #: exp(-quality / the first trained quality)
        self.scale: float | None = None

    # -- the policy ------------------------------------------------------------------
    def _slot(self, i: int, value: Any) -> int:
        d = self.decisions[i]
        return self.offsets[i] + (d.choices.index(value) if value in d.choices
                                  else len(d.choices))

    def _walk(self, pick: Any) -> dict[str, Any]:
        """Take the decisions in order; ``pick(i, allowed indices, probs)``
        returns the index chosen for an applicable decision."""
        ctx: dict[str, Any] = {}
        h = np.zeros(self.offsets[-1])
        for i, d in enumerate(self.decisions):
            if not d.applies(ctx):
                ctx[d.name] = None
            else:
                allowed = [k for k, c in enumerate(d.choices) if d.allowed(c, ctx)]
                z = self.bias[i][allowed] + self.w[i][allowed] @ h[:self.offsets[i]]
                p = np.exp(z - z.max())
                k = pick(i, allowed, p / p.sum(), h[:self.offsets[i]])
                ctx[d.name] = d.choices[k]
            h[self._slot(i, ctx[d.name])] = 1.0
        return ctx

    def ask(self, n: int) -> list[ArchRecord]:
        self._save()
        rng = random.Random(f"{self.seed}:{self.told}")

        def draw(_: int, allowed: list[int], p: Any, __: Any) -> int:
            return allowed[min(int(np.searchsorted(np.cumsum(p), rng.random())),
                               len(allowed) - 1)]

        return [self.space.arch_type(**self._walk(draw), **self.space.defaults)
                for _ in range(n)]

    # -- learning --------------------------------------------------------------------
    def reward(self, values: dict[str, float]) -> float:
        cer_like = self.study is None or self.study.user_attrs.get("quality_key", "cer") == "cer"
        q = values["cer"]
        quality = max(0.0, 1.0 - q) if cer_like else math.exp(-q / (self.scale or 1.0))
        target = self._target()
        if target is None:
            return quality
        key, limit = target
        m = values.get(key, math.nan)
        if not (math.isfinite(m) and m > 0):
            return quality
        w = self.weight[0] if m <= limit else self.weight[1]
        return quality * (m / limit) ** w

    def _target(self) -> tuple[str, float] | None:
        return self.speed_target()

    def tell(self, arch: ArchRecord, values: dict[str, float], feasible: bool) -> None:
        q = values.get("cer", math.nan)
        if feasible and self.scale is None and math.isfinite(q) and q > 0:
            self.scale = q   # the first trained quality (an untrained one is a marker)
        r = self.reward(values)
        base = r if self.baseline is None else self.baseline
        advantage = r - base
        self.baseline = BASELINE_DECAY * base + (1 - BASELINE_DECAY) * r
        chosen = arch.to_dict()

        def step(i: int, allowed: list[int], p: Any, h: Any) -> int:
            value = chosen[self.decisions[i].name]
            k = self.decisions[i].choices.index(value) \
                if value in self.decisions[i].choices else -1
            if k not in allowed:       # outside this space (a narrowed resume): no step
                return allowed[0] if k == -1 else k
            onehot = np.array([1.0 if a == k else 0.0 for a in allowed])
            logp = np.log(np.maximum(p, 1e-12))
            entropy = -float(p @ logp)
            g = advantage * (onehot - p) - ENTROPY * p * (logp + entropy)
            self.bias[i][allowed] += LEARNING_RATE * g
            self.w[i][allowed] += LEARNING_RATE * np.outer(g, h)
            return k

        self._walk(step)
        self.told += 1

    # -- persistence ------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"strategy": self.name, "told": self.told, "baseline": self.baseline,
                "scale": self.scale,
                "decisions": [d.name for d in self.decisions],
                "bias": [b.tolist() for b in self.bias], "w": [w.tolist() for w in self.w]}

    def _save(self) -> None:
        if self.study is not None:
            self.study.set_user_attr("rl_policy", self._state())

    def resume(self, trials: Any) -> None:
        saved = self.study.user_attrs.get("rl_policy") if self.study else None
        ordered = [t for t in sorted(trials, key=lambda t: t.number)
                   if "arch" in t.user_attrs and t.values is not None]
        if saved and saved.get("strategy") == self.name \
                and saved["decisions"] == [d.name for d in self.decisions] \
                and saved["told"] <= len(ordered) \
                and all(len(b) == len(s) for b, s in zip(self.bias, saved["bias"])):
            self.bias = [np.array(b, dtype=float) for b in saved["bias"]]
            self.w = [np.array(w, dtype=float).reshape(len(b), self.offsets[i])
                      for i, (w, b) in enumerate(zip(saved["w"], saved["bias"]))]
            self.baseline, self.told = saved["baseline"], saved["told"]
            self.scale = saved.get("scale")
            ordered = ordered[self.told:]
        super().resume(ordered)


class ReinforceHard(Reinforce):
    name = "rl-hard"
    weight = (0.0, -1.0)
