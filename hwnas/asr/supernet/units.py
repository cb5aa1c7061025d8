"""Scoring an architecture with a supernet's weights as a unit of work
(``hwnas.execution``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScoreSubnet:
    """Dev CER of ``arch`` with weights inherited from the supernet saved in
    ``supernet`` (a folder), after ``finetune_s`` CPU-seconds of fine-tuning
    (0: as inherited), on the first ``dev_utts`` dev utterances (None: all),
    on ``train_options``' device and precision (the search's --train-device,
    --precision). Returns :func:`hwnas.asr.supernet.score.score`'s dict."""

    arch: dict[str, Any]
    supernet: str
    corpus: dict[str, Any]
    workspace: str
    finetune_s: float = 0.0
    dev_utts: int | None = None
    seed: int = 0
    train_options: dict[str, Any] = field(default_factory=dict)   # device, precision
    gpus: float = 1.0             # of a GPU, where it runs on one (--gpus-per-trial)

    def run(self, ctx: Any) -> dict[str, Any]:
        from hwnas.asr import ArchConfig
        from hwnas.asr.supernet.score import score
        from hwnas.asr.supernet.workspace import supernet_of
        from hwnas.training.prepare import corpus_of

        arch = ArchConfig.from_dict(self.arch)
        corpus = corpus_of(ctx, self.corpus, self.workspace)
        return score(supernet_of(ctx, self.supernet), arch,
                     corpus.splits(arch.frontend, arch.n_filters), corpus.tokenizer,
                     finetune_cpu=self.finetune_s, seed=self.seed, dev_utts=self.dev_utts,
                     **self.train_options)

    def needs(self) -> dict[str, Any]:
        gpu = str(self.train_options.get("device") or "cpu").startswith("cuda")
        return {"num_cpus": 1, **({"num_gpus": self.gpus} if gpu else {})}
