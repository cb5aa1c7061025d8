"""A TTS search's data and training, as the shared search takes them: the
built-in data by description, and one rung of training as a unit of work
(``hwnas.execution``) that writes a run folder (``hwnas.tts.run``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: dev sentences a trial's intelligibility (the "cer" objective) is scored on
INTELLIGIBILITY_UTTS = 30


@dataclass
class TTSData:
    """The built-in TTS data a search trains on (synthesised once, on first
    use); ``asr_run`` is the recogniser that scores intelligibility."""

    workspace: Path
    lang: str = "en"
    size: str = "small"
    seed: int = 0
    asr_run: str | None = None
    say: Callable[[str], None] | None = field(default=None, repr=False)   # one-time messages

    @property
    def description(self) -> dict[str, Any]:
        """What a study keeps to refuse mixing data (the recogniser is part of
        what its CERs mean)."""
        return {"kind": "tts", "lang": self.lang, "size": self.size, "seed": self.seed,
                **({"asr_run": self.asr_run} if self.asr_run else {})}

    @property
    def root(self) -> Path:
        from hwnas.tts import data

        return data.data_dir(self.workspace, self.lang, self.size, self.seed)

    def prepare(self) -> Path:
        from hwnas.tts import data

        if not (self.root / "phonemes.json").is_file() and self.say is not None:
            self.say(f"synthesising the TTS data ({sum(data.SIZES[self.size])} {self.lang} "
                f"sentences, once) into {self.root} ...")
        return data.build(self.workspace, self.lang, self.size, self.seed)

    def phonemes(self) -> int:
        from hwnas.tts import data

        return len(data.PhonemeSet.of(self.prepare()))


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
            from hwnas.tts.intelligibility import score

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
