"""The search's screen with supernets (``hwnas search --cer-source supernet``):
successive halving over inherited -> fine-tuned -> trained stand-alone.

Every feasible candidate of a generation is scored with inherited weights
(seconds); the best 1/eta^2 by non-dominated rank on (CER, latency) are
fine-tuned from those weights for a few CPU-seconds and scored again; the best
1/eta of those go on to stand-alone training from scratch (the search's
rungs), which alone can make the answer. Each score is kept on its candidate
with its source.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hwnas.asr.supernet.units import ScoreSubnet
from hwnas.training.halving import Candidate, select


class SupernetScreen:
    """``screen(candidates) -> finalists`` for ``run_search``. Scores are units
    of work (:class:`ScoreSubnet`) on the search's executor, so a cluster
    scores a generation in parallel; each worker reads a supernet once.

    ``folders`` maps a family to its supernet's folder; ``prepare(frontend,
    n_filters)`` computes a stem's features before the units that need them;
    ``options`` (device, precision, gpus) say where the scoring runs."""

    def __init__(self, folders: dict[str, Any], executor: Any, corpus: dict[str, Any],
                 workspace: str, prepare: Callable[[str, int], Any] = lambda fe, n: None,
                 eta: int = 3, finetune_s: float = 20.0, seed: int = 0,
                 on_score: Callable[[Candidate, dict[str, Any]], None] | None = None,
                 dev_utts: int | None = None, options: dict[str, Any] | None = None) -> None:
        self.folders, self.executor, self.prepare = folders, executor, prepare
        self.corpus, self.workspace = corpus, str(workspace)
        self.eta, self.finetune_s, self.seed, self.on_score = eta, finetune_s, seed, on_score
        self.dev_utts = dev_utts   # inherited scores on the first dev utterances only
        self.scored = 0
        opts = dict(options or {})
        self.gpus = float(opts.pop("gpus", 1.0))
        self.options = {k: v for k, v in opts.items() if k in ("device", "precision")}

    def _unit(self, cand: Candidate, finetune: float) -> ScoreSubnet:
        folder = self.folders.get(cand.arch.encoder)
        if folder is None:
            raise ValueError(f"no supernet for the {cand.arch.encoder} family")
        self.prepare(cand.arch.frontend, cand.arch.n_filters)
        return ScoreSubnet(arch=cand.arch.to_dict(), supernet=str(folder), corpus=self.corpus,
                           workspace=self.workspace, finetune_s=finetune, seed=self.seed,
                           dev_utts=None if finetune else self.dev_utts,
                           train_options=self.options, gpus=self.gpus)

    def _score(self, cands: list[Candidate], finetune: float) -> None:
        units = [self._unit(c, finetune) for c in cands]
        for cand, r in zip(cands, self.executor.map(units)):
            cand.screen.append({"source": r["source"], "cer": float(r["cer"]),
                                "cpu_s": r["cpu_s"], "steps": r["steps"], "utts": r["utts"]})
            self.scored += 1
            if self.on_score:
                self.on_score(cand, r)

    def _best(self, cands: list[Candidate], keep: int) -> list[Candidate]:
        pts = np.array([[c.screen[-1]["cer"], c.latency_ms] for c in cands])
        return [cands[i] for i in sorted(select(pts, keep))]

    def __call__(self, cands: list[Candidate]) -> list[Candidate]:
        self._score(cands, 0.0)
        if self.finetune_s > 0:
            cands = self._best(cands, max(1, math.ceil(len(cands) / self.eta ** 2)))
            self._score(cands, self.finetune_s)
        return self._best(cands, max(1, math.ceil(len(cands) / self.eta)))
