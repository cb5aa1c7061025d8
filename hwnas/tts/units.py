"""A TTS search's data, as the shared search takes it: the built-in data by
description. Its rung of training is ``hwnas.tasks.units.TTSTrainRung``
(it may score intelligibility with a recogniser, which lives above this task)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
