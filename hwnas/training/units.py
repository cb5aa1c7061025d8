"""A search's training as a unit of work (``hwnas.execution``): plain values
in, a run folder and plain results out, so it runs in this process, a
worker process or on another host alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def quality(cer: float, by_lang: dict[str, float] | None) -> dict[str, float]:
    """The dev CER as each quality objective of a search measures it: pooled
    over the corpus's languages, their mean, or the worst language's."""
    cers = list((by_lang or {}).values()) or [cer]
    return {"cer": cer, "cer_mean": sum(cers) / len(cers), "cer_worst": max(cers)}


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
    gpus: float = 1.0             # of a GPU, where it trains on one (small models share)

    def run(self, ctx: Any) -> dict[str, Any]:
        from hwnas.asr import ArchConfig
        from hwnas.training.prepare import corpus_of
        from hwnas.training.trainer import (
            TrainConfig,
            load_snapshot,
            save_run,
            set_aside_run,
            train,
        )

        arch = ArchConfig.from_dict(self.arch)
        corpus = corpus_of(ctx, self.corpus, self.workspace)
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
                "cpu_seconds": res.cpu_seconds, "quality": quality(float(res.dev["cer"]),
                                                                   by_lang),
                **({"by_lang": by_lang} if by_lang else {})}

    def needs(self) -> dict[str, Any]:
        """One CPU; a trial training on a GPU also asks for its share of one
        (Ray's num_gpus: 1, 0.5 or 0.25, --gpus-per-trial)."""
        gpu = str(self.train_options.get("device", "cpu")).startswith("cuda")
        return {"num_cpus": 1, **({"num_gpus": self.gpus} if gpu else {})}


#: dev sentences a TTS trial's intelligibility (the "cer" objective) is scored on
INTELLIGIBILITY_UTTS = 30


@dataclass(frozen=True)
class TTSTrainRung:
    """Train a TTS ``arch`` on the built-in data up to ``budget`` in total in
    ``run_dir``, continuing its snapshot when ``resume`` (a later rung).
    Returns the dev quality: ``mcd`` (dB), and ``cer`` (the recogniser's CER
    on the synthesised speech) where the data names a recogniser."""

    arch: dict[str, Any]
    data: dict[str, Any]          # TTSData's fields but the workspace
    workspace: str
    budget: float
    unit: str                     # "cpu_seconds" | "steps"
    seed: int
    run_dir: str
    resume: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def run(self, ctx: Any) -> dict[str, Any]:
        import json

        from hwnas.paths import write_atomic
        from hwnas.tts.arch import TTSArch
        from hwnas.tts.run import set_aside_run, train_run

        out = Path(self.run_dir)
        if not self.resume and out.is_dir() and any(out.iterdir()):
            set_aside_run(out)   # a fresh first rung never overwrites a trained run
        budget = {self.unit: int(self.budget) if self.unit == "steps" else self.budget}
        res = train_run(Path(self.workspace), TTSArch.from_dict(self.arch), out,
                        lang=self.data["lang"], size=self.data["size"], seed=self.seed,
                        **budget)
        dev = dict(res["dev"])
        quality = {"mcd": float(dev["mcd_db"])}
        if self.data.get("asr_run"):
            from hwnas.training.intelligibility import score

            heard = score(out, Path(self.data["asr_run"]), INTELLIGIBILITY_UTTS)
            quality["cer"] = dev["cer"] = float(heard["model"]["cer"])
            dev["cer_ceiling"] = float(heard["espeak"]["cer"])
        write_atomic(out / "result.json", json.dumps({**res, "dev": dev, **self.extra},
                                                     indent=2, sort_keys=True) + "\n")
        return {"quality": quality, "snapshot": str(out / "snapshot.pt"),
                "steps": int(res["steps"]), "cpu_seconds": float(res["cpu_seconds"]),
                "dev": dev}

    def needs(self) -> dict[str, Any]:
        return {"num_cpus": 1}
