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


@dataclass(frozen=True, kw_only=True)
class Rung:
    """What every task's rung of training holds: train ``arch`` (its dict) up
    to ``budget`` in total (``unit``: "cpu_seconds" -- device seconds on an
    accelerator -- or "steps") in ``run_dir``, continuing the snapshot there
    when ``resume`` (a later rung); ``extra`` goes into its result.json. A
    rung's state is a file, not live model or optimiser objects."""

    arch: dict[str, Any]
    workspace: str
    budget: float
    unit: str
    seed: int
    run_dir: str
    resume: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def budget_option(self) -> dict[str, float | int]:
        """The budget as a trainer's keyword (whole steps)."""
        return {self.unit: int(self.budget) if self.unit == "steps" else self.budget}

    #: the trainer's options: its device and precision (nn.fit.train_device,
    #: resolve_precision), and for the recogniser its evaluation and floors
    train_options: dict[str, Any] = field(default_factory=dict)
    gpus: float = 1.0             # of a GPU, where it trains on one (small models share)

    def needs(self) -> dict[str, Any]:
        """One CPU; a rung training on a GPU also asks for its share of one
        (Ray's num_gpus: 1, 0.5 or 0.25, --gpus-per-trial)."""
        gpu = str(self.train_options.get("device") or "cpu").startswith("cuda")
        return {"num_cpus": 1, **({"num_gpus": self.gpus} if gpu else {})}


@dataclass(frozen=True, kw_only=True)
class TrainRung(Rung):
    """A recogniser's rung, on a corpus (by description): writes the run
    (weights, tokenizer, feature statistics, result.json) and returns the dev
    CER by each quality measure and the snapshot's path."""

    corpus: dict[str, Any]
    snapshot_every_s: float = float("inf")   # a rung is short: a killed one starts again

    def run(self, ctx: Any) -> dict[str, Any]:
        from hwnas.asr import ArchConfig
        from hwnas.asr.train import (
            TrainConfig,
            load_snapshot,
            save_run,
            set_aside_run,
            train,
        )
        from hwnas.training.prepare import corpus_of

        arch = ArchConfig.from_dict(self.arch)
        corpus = corpus_of(ctx, self.corpus, self.workspace)
        sp = corpus.splits(arch.frontend, arch.n_filters)
        tok = corpus.tokenizer
        run_dir = Path(self.run_dir)
        snap = run_dir / "checkpoint.pt"
        cfg = TrainConfig(seed=self.seed, snapshot=snap, snapshot_every_s=self.snapshot_every_s,
                          **self.budget_option(), **self.train_options)
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
                **({"by_lang": by_lang} if by_lang else {}),
                **gpu_fields(res.device)}


def gpu_fields(record: dict[str, Any]) -> dict[str, Any]:
    """What a trial's rung record keeps of its run's GPU use (nn.gpu_use):
    peak memory in MB and the card's mean utilisation in percent."""
    keys = {"gpu_memory_peak_mb": "gpu_mb", "gpu_util_mean_pct": "gpu_util_pct"}
    return {short: record[k] for k, short in keys.items() if record.get(k) is not None}


#: dev sentences a TTS trial's intelligibility (the "cer" objective) is scored on
INTELLIGIBILITY_UTTS = 30


@dataclass(frozen=True, kw_only=True)
class TTSTrainRung(Rung):
    """A TTS model's rung, on the built-in data. Returns the dev quality:
    ``mcd`` (dB), and ``cer`` (the recogniser's CER on the synthesised speech)
    where the data names a recogniser."""

    data: dict[str, Any]          # TTSData's fields but the workspace

    def run(self, ctx: Any) -> dict[str, Any]:
        import json

        from hwnas.paths import write_atomic
        from hwnas.tts.arch import TTSArch
        from hwnas.tts.run import set_aside_run, train_run

        out = Path(self.run_dir)
        if not self.resume and out.is_dir() and any(out.iterdir()):
            set_aside_run(out)   # a fresh first rung never overwrites a trained run
        res = train_run(Path(self.workspace), TTSArch.from_dict(self.arch), out,
                        lang=self.data["lang"], size=self.data["size"], seed=self.seed,
                        **self.budget_option(), **self.train_options)
        dev = dict(res["dev"])
        quality = {"mcd": float(dev["mcd_db"])}
        if self.data.get("asr_run"):
            from hwnas.tasks.intelligibility import score

            heard = score(out, Path(self.data["asr_run"]), INTELLIGIBILITY_UTTS)
            quality["cer"] = dev["cer"] = float(heard["model"]["cer"])
            dev["cer_ceiling"] = float(heard["espeak"]["cer"])
        write_atomic(out / "result.json", json.dumps({**res, "dev": dev, **self.extra},
                                                     indent=2, sort_keys=True) + "\n")
        return {"quality": quality, "snapshot": str(out / "snapshot.pt"),
                "steps": int(res["steps"]), "cpu_seconds": float(res["cpu_seconds"]),
                "dev": dev, **gpu_fields(res)}
