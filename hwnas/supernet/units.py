"""Scoring an architecture with a supernet's weights as a unit of work
(``hwnas.execution``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ScoreSubnet:
    """Dev CER of ``arch`` with weights inherited from the supernet saved in
    ``supernet`` (a folder), after ``finetune_s`` CPU-seconds of fine-tuning
    (0: as inherited), on the first ``dev_utts`` dev utterances (None: all).
    Returns :func:`hwnas.supernet.score.score`'s dict."""

    arch: dict[str, Any]
    supernet: str
    corpus: dict[str, Any]
    workspace: str
    finetune_s: float = 0.0
    dev_utts: int | None = None
    seed: int = 0

    def run(self, ctx: Any) -> dict[str, Any]:
        from hwnas.asr import ArchConfig
        from hwnas.supernet.score import score
        from hwnas.supernet.workspace import supernet_of
        from hwnas.training.prepare import corpus_of

        arch = ArchConfig.from_dict(self.arch)
        corpus = corpus_of(ctx, self.corpus, self.workspace)
        return score(supernet_of(ctx, self.supernet), arch,
                     corpus.splits(arch.frontend, arch.n_filters), corpus.tokenizer,
                     finetune_cpu=self.finetune_s, seed=self.seed, dev_utts=self.dev_utts)

    def needs(self) -> dict[str, Any]:
        return {"num_cpus": 1}
