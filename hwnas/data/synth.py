"""eSpeak NG speech synthesis through ctypes.

The library and its voice data come from the ``espeakng-loader`` wheel, so no
system package is needed. Two things make eSpeak's output vary for the same
request, and both are pinned: it keeps state between utterances (so each
utterance is synthesised in a freshly forked child, ~20 ms), and it seeds its
random generator (breath and flutter of some voices) from the clock when
initialised (re-seeded right after). The same request then gives
byte-identical audio in any process, with any number of workers, at any time
(tests/test_data.py).
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4}
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)
_INITIALIZE_PHONEME_EVENTS = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7


class _Event(ctypes.Structure):
    """speak_lib.h's espeak_EVENT (``id`` holds a phoneme's mnemonic for
    phoneme events; ``sample`` counts samples at eSpeak's own rate)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


@dataclass(frozen=True)
class Voice:
    """One synthesis request's voice: ``name`` like ``en-us`` or ``es``,
    ``variant`` like ``m3`` / ``f2`` (empty: the default), rate in words per
    minute, pitch 0-100."""

    name: str
    variant: str = ""
    rate: int = 170
    pitch: int = 50

    @property
    def spec(self) -> str:
        return f"{self.name}+{self.variant}" if self.variant else self.name


class SynthError(RuntimeError):
    pass


def _library() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError:
        raise SynthError("speech synthesis needs espeakng-loader: pip install "
                         "espeakng-loader") from None
    data = Path(espeakng_loader.get_data_path())
    return str(espeakng_loader.get_library_path()), str(data.parent)


def _synth_here(text: str, voice: Voice, phonemes: bool = False
                ) -> tuple[np.ndarray, int, list[tuple[str, int]]]:
    """Synthesise in this process: int16 samples at eSpeak's rate, the rate,
    and (with ``phonemes``) each phoneme's name and first sample."""
    lib_path, data_parent = _library()
    lib = ctypes.CDLL(lib_path)
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent.encode(),
                                 _INITIALIZE_PHONEME_EVENTS if phonemes else 0)
    if rate <= 0:
        raise SynthError(f"espeak_Initialize failed ({rate}) with data in {data_parent}")
    # espeak_Initialize seeds its random generator (voice breath, flutter) and
    # C's rand() from the clock: re-seed both, or the audio depends on the
    # second it was made in
    lib.espeak_ng_SetRandSeed(ctypes.c_long(1))
    ctypes.CDLL("libc.so.6").srand(1)
    chunks: list[bytes] = []
    marks: list[tuple[str, int]] = []

    def on_audio(wav: ctypes.POINTER(ctypes.c_short), n: int, events: int) -> int:
        if n > 0 and wav:
            chunks.append(ctypes.string_at(wav, 2 * n))
        if phonemes and events:
            ev = ctypes.cast(events, ctypes.POINTER(_Event))
            i = 0
            while ev[i].type != _EVENT_LIST_TERMINATED:
                if ev[i].type == _EVENT_PHONEME:
                    marks.append((ev[i].id.decode("utf-8", "replace"), int(ev[i].sample)))
                i += 1
        return 0

    cb = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(cb)
    if lib.espeak_SetVoiceByName(voice.spec.encode()) != 0:
        raise SynthError(f"eSpeak NG has no voice {voice.spec!r}")
    lib.espeak_SetParameter(_PARAM["rate"], int(voice.rate), 0)
    lib.espeak_SetParameter(_PARAM["pitch"], int(voice.pitch), 0)
    data = text.encode("utf-8") + b"\0"
    err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    if err != 0:
        raise SynthError(f"espeak_Synth failed ({err})")
    lib.espeak_Synchronize()
    return np.frombuffer(b"".join(chunks), dtype=np.int16).copy(), rate, marks


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited resampling by FFT (whole utterance; exact length)."""
    if src == dst:
        return x.astype(np.float32)
    n = int(round(len(x) * dst / src))
    spec = np.fft.rfft(x.astype(np.float64))
    keep = min(len(spec), n // 2 + 1)
    out = np.fft.irfft(spec[:keep], n) * (n / len(x))
    return out.astype(np.float32)


def _forked(text: str, voice: Voice, phonemes: bool
            ) -> tuple[np.ndarray, int, list[tuple[str, int]]]:
    """:func:`_synth_here` in a forked child, so that eSpeak's state never
    carries from one request to the next."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: synthesise, write, exit without running parent's handlers
        os.close(r)
        code = 0
        try:
            samples, rate, marks = _synth_here(text, voice, phonemes)
            tail = json.dumps(marks).encode()
            payload = (struct.pack("<iII", rate, len(samples), len(tail)) + samples.tobytes()
                       + tail)
        except Exception as e:  # reported to the parent as text
            payload = struct.pack("<iII", -1, 0, 0) + str(e).encode()
            code = 1
        with os.fdopen(w, "wb") as f:
            f.write(payload)
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        payload = f.read()
    os.waitpid(pid, 0)
    if len(payload) < 12:
        raise SynthError(f"synthesis of {text[:40]!r} died without output")
    rate, n, m = struct.unpack("<iII", payload[:12])
    if rate < 0:
        raise SynthError(payload[12:].decode(errors="replace"))
    pcm = np.frombuffer(payload[12:12 + 2 * n], dtype=np.int16)
    marks = [(str(a), int(b)) for a, b in json.loads(payload[12 + 2 * n:12 + 2 * n + m] or b"[]")]
    return pcm, rate, marks


def synthesize(text: str, voice: Voice) -> np.ndarray:
    """Float32 waveform in [-1, 1] at 16 kHz; synthesised in a forked child so
    the same request always gives the same samples."""
    pcm, rate, _ = _forked(text, voice, False)
    return resample(pcm, rate, SAMPLE_RATE) / 32768.0


def synthesize_timed(text: str, voice: Voice) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """:func:`synthesize` plus eSpeak's own phoneme timing: each phoneme's
    mnemonic and the second it starts at, from its phoneme events."""
    pcm, rate, marks = _forked(text, voice, True)
    return (resample(pcm, rate, SAMPLE_RATE) / 32768.0,
            [(name, sample / rate) for name, sample in marks])
