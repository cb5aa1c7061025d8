"""The units of work: export, measure, train a rung, score a subnet.

Each is a frozen dataclass of plain values (architectures as dicts, paths as
strings), so it pickles to another process or host, and a ``run(ctx)``
that does the work there and returns plain results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._base import device_resource


@dataclass(frozen=True)
class Export:
    """Host work: an architecture converted to a device format in ``out_dir``.
    Returns (the profile row so far, the artifact: a plain dataclass); a
    failed export is a finished row (status failed) and no artifact."""

    arch: dict[str, Any]
    fmt: str
    out_dir: str
    repeat: int = 1

    def run(self, ctx: Any) -> tuple[dict[str, Any], Any]:
        from hwnas.profiling.measure import export_row
        from hwnas.tasks import arch_from_dict

        return export_row(arch_from_dict(self.arch), self.fmt, Path(self.out_dir),
                          self.repeat)

    def needs(self) -> dict[str, Any]:
        return {"num_cpus": 1}


@dataclass(frozen=True)
class Measure:
    """Device work: an exported artifact measured on a device (by name), which
    completes the row for the driver to store. ``DeviceUnavailable``
    propagates: the device, not the architecture, failed."""

    device: str
    workspace: str | None
    row: dict[str, Any]
    artifact: Any
    plan: dict[str, Any]
    ref_nominal_ms: float | None = None

    def run(self, ctx: Any) -> dict[str, Any]:
        from hwnas.adapters import Plan
        from hwnas.profiling.measure import measure_artifact
        from hwnas.tasks import arch_from_dict

        adapter = ctx.adapter(self.device, self.workspace)
        row, _ = measure_artifact(adapter, arch_from_dict(self.row["arch"]),
                                  self.artifact, Plan(**self.plan), self.row,
                                  self.ref_nominal_ms)
        # which phone of a pool, on which host, measured it
        row["provenance"] = {**(row.get("provenance") or {}), "phone": self.device,
                             "node": node_name()}
        return row

    def needs(self) -> dict[str, Any]:
        # the device, not a CPU: a bench host's CPUs stay free of other work
        return {"num_cpus": 0, "resources": {device_resource(self.device): 1}}


@dataclass(frozen=True)
class TrainRung:
    """Train ``arch`` on a corpus (by description) up to ``budget`` in total,
    continuing the snapshot in ``run_dir`` when ``resume`` (a later rung), and
    write the run there (weights, tokenizer, feature statistics, result.json
    with ``extra``). Returns the dev CER and the snapshot's path: a rung's
    state is a file, not live model or optimiser objects."""

    arch: dict[str, Any]
    corpus: dict[str, Any]
    workspace: str
    budget: float
    unit: str                     # "cpu_seconds" | "steps"
    seed: int
    run_dir: str
    resume: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    train_options: dict[str, Any] = field(default_factory=dict)
    snapshot_every_s: float = float("inf")   # a rung is short: a killed one starts again

    def run(self, ctx: Any) -> dict[str, Any]:
        from hwnas.asr import ArchConfig
        from hwnas.training.trainer import (
            TrainConfig,
            load_snapshot,
            save_run,
            set_aside_run,
            train,
        )

        arch = ArchConfig.from_dict(self.arch)
        corpus = ctx.corpus(self.corpus, self.workspace)
        sp = corpus.splits(arch.frontend, arch.n_filters)
        tok = corpus.tokenizer
        run_dir = Path(self.run_dir)
        snap = run_dir / "checkpoint.pt"
        budget = {self.unit: int(self.budget) if self.unit == "steps" else self.budget}
        cfg = TrainConfig(seed=self.seed, snapshot=snap, snapshot_every_s=self.snapshot_every_s,
                          **budget, **self.train_options)
        if self.resume:
            state = load_snapshot(snap, arch, cfg, tok.vocab_size)
        else:
            set_aside_run(run_dir)   # a fresh first rung never overwrites a trained run
            state = None
        res = train(arch, sp.train, sp.dev, tok, cfg, resume=state)
        save_run(run_dir, res, tok, self.extra)
        by_lang = {k: float(v["cer"]) for k, v in (res.dev.get("by_lang") or {}).items()}
        return {"cer": float(res.dev["cer"]), "snapshot": str(snap), "steps": res.steps,
                "cpu_seconds": res.cpu_seconds, **({"by_lang": by_lang} if by_lang else {})}

    def needs(self) -> dict[str, Any]:
        return {"num_cpus": 1}


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

        arch = ArchConfig.from_dict(self.arch)
        corpus = ctx.corpus(self.corpus, self.workspace)
        return score(ctx.supernet(self.supernet), arch,
                     corpus.splits(arch.frontend, arch.n_filters), corpus.tokenizer,
                     finetune_cpu=self.finetune_s, seed=self.seed, dev_utts=self.dev_utts)

    def needs(self) -> dict[str, Any]:
        return {"num_cpus": 1}


def node_name() -> str:
    """The host a unit ran on: $HWNAS_LAB_NODE (set by `hwnas lab join`) or
    the host name."""
    import os
    import socket

    return os.environ.get("HWNAS_LAB_NODE") or socket.gethostname()
