"""TTSArch, the one definition of a TTS acoustic model, and the TTS search
space it is a point of."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from hwnas.space import SearchSpace
from hwnas.space.record import ArchRecord
from hwnas.tts.decisions import default_decisions

#: the device graph reads a bucket of this many phonemes and writes this many
#: 10 ms mel frames (5 s of audio; eSpeak speaks about 7 frames a phoneme).
#: Neither may equal a width (x1, x2 or x4): onnx2tf infers a 3-D tensor's
#: layout from its shape, and normalises a (1, 64, 64) tensor over the wrong axis
PHONEME_BUCKET = 61
FRAME_BUCKET = 500
FRAME_MS = 10
N_MELS = 80


@dataclass(frozen=True)
class TTSArch(ArchRecord):
    """A point of the TTS space; fields that do not apply are ``None``.
    ``task`` tells a TTS architecture's JSON from a speech recogniser's."""

    ID_PREFIX = "tts-"

    enc_layers: int
    enc_hidden: int
    enc_block: str
    dec_layers: int
    dec_hidden: int
    dec_block: str
    var_hidden: int
    var_kernel: int
    enc_heads: int | None = None
    enc_kernel: int | None = None
    dec_heads: int | None = None
    dec_kernel: int | None = None
    n_phonemes: int = 96     # phoneme inventory incl. pad and unknown; set by the data
    n_mels: int = N_MELS
    task: str = "tts"

    @property
    def graph(self) -> str:
        return "utterance"

    @classmethod
    def space(cls) -> SearchSpace:
        return default_space()


BOUNDS: dict[str, tuple[int, int | None]] = {
    "enc_layers": (1, 32), "enc_hidden": (1, 2048), "enc_heads": (1, 64), "enc_kernel": (1, 63),
    "dec_layers": (1, 32), "dec_hidden": (1, 2048), "dec_heads": (1, 64), "dec_kernel": (1, 63),
    "var_hidden": (1, 2048), "var_kernel": (1, 31), "n_phonemes": (3, 10_000),
    "n_mels": (8, 256)}


@lru_cache(maxsize=1)
def default_space() -> SearchSpace:
    """The built-in TTS search space."""
    return SearchSpace(default_decisions(), TTSArch, BOUNDS)


#: a FastSpeech 2-like reference (its paper: 4+4 FFT blocks of 256 with 2
#: heads, duration predictor 256 wide, kernel 3): the baseline to beat
PRESETS: dict[str, dict[str, Any]] = {
    "fastspeech2": dict(enc_layers=4, enc_hidden=256, enc_block="transformer", enc_heads=2,
                        dec_layers=4, dec_hidden=256, dec_block="transformer", dec_heads=2,
                        var_hidden=256, var_kernel=3),
    "lightspeech_like": dict(enc_layers=4, enc_hidden=128, enc_block="sepconv", enc_kernel=5,
                             dec_layers=3, dec_hidden=128, dec_block="sepconv", dec_kernel=17,
                             var_hidden=64, var_kernel=3),
}


def preset(name: str, **fixed: Any) -> TTSArch:
    if name not in PRESETS:
        raise ValueError(f"unknown TTS preset {name!r}; one of {', '.join(PRESETS)}")
    return TTSArch.from_dict({**PRESETS[name], **fixed})
