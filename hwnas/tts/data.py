"""TTS targets from the built-in corpus's sentences: phonemes, their
durations and mel spectrograms, all from one eSpeak NG synthesis.

A TTS corpus is one speaker, so each language is spoken by one fixed voice
(its first accent, default variant, rate 170, pitch 50) with no noise; the
sentences are the ASR corpus's (the same seed gives the same text, and dev
sentences never occur in train). eSpeak's phoneme events give each
phoneme's mnemonic and first sample as it speaks, so durations are the
synthesiser's own, not a forced alignment. Mel frames come from the ASR
front-end (:class:`~hwnas.nn.frontend.FeatureExtractor`, log-mel, 80
filters, 25 ms window, 10 ms hop): one feature implementation for both tasks.

Layout of ``<workspace>/data/tts-<lang>-<size>-s<seed>/``::

    phonemes.json          the inventory (index 0 pad, 1 unknown), from train
    <split>/<id>.npz       phoneme names, durations (frames), mel, text
    <split>/<id>.wav       the eSpeak audio (dev: the intelligibility ceiling)

Each utterance is written once (atomically), so a build resumes where it stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hwnas.data.corpus import ACCENTS, plan_split, run_all, write_wav
from hwnas.data.synth import SAMPLE_RATE, Voice, synthesize_timed
from hwnas.paths import write_atomic
from hwnas.state import Shape

SIZES = {"tiny": (120, 20), "small": (1200, 100), "medium": (4000, 200)}
PAD, UNK = 0, 1
HOP_MS = 10.0
WINDOW_MS = 25.0


def voice_for(lang: str) -> Voice:
    if lang not in ACCENTS:
        raise ValueError(f"no built-in language {lang!r}; built in: {', '.join(ACCENTS)}")
    return Voice(ACCENTS[lang][0])


def durations(starts_s: list[float], n_frames: int) -> np.ndarray:
    """Frames per phoneme from the phonemes' start times: frame t (centred at
    10 t + 12.5 ms) belongs to the last phoneme started by its centre; the
    first phoneme also takes any frames before it. The result sums to
    ``n_frames`` exactly (a phoneme shorter than a frame may get 0)."""
    if not starts_s:
        raise ValueError("no phonemes")
    centre0 = WINDOW_MS / 2
    bounds = [0] + [min(n_frames, max(0, math.ceil((s * 1000 - centre0) / HOP_MS)))
                    for s in starts_s[1:]] + [n_frames]
    b = np.maximum.accumulate(np.array(bounds, dtype=np.int64))
    return np.diff(b)


@dataclass
class Utterance:
    id: str
    text: str
    phonemes: list[str]
    durations: np.ndarray   # (N,) frames
    mel: np.ndarray         # (T, n_mels) log-mel


def _mel(wave: np.ndarray) -> np.ndarray:
    from hwnas.nn.frontend import FeatureExtractor

    return FeatureExtractor("logmel", 80)(torch.from_numpy(wave).float())[0].numpy()


def make(uid: str, text: str, voice: Voice) -> tuple[Utterance, np.ndarray]:
    wave, marks = synthesize_timed(text, voice)
    mel = _mel(wave)
    names = [m[0] for m in marks]
    dur = durations([m[1] for m in marks], mel.shape[0])
    return Utterance(uid, text, names, dur, mel.astype(np.float32)), wave


def _write(u: Utterance, wave: np.ndarray, folder: Path) -> None:
    tmp = folder / f".{u.id}.npz.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, phonemes=np.array(u.phonemes), durations=u.durations, mel=u.mel,
                 text=np.array(u.text))
    tmp.replace(folder / f"{u.id}.npz")
    write_wav(folder / f"{u.id}.wav", wave)


def _read(path: Path) -> Utterance:
    """One utterance's file; ValueError naming it where it cannot be read."""
    try:
        with np.load(path) as z:
            u = Utterance(path.stem, str(z["text"]), [str(p) for p in z["phonemes"]],
                          z["durations"].astype(np.int64), z["mel"])
    except Exception as e:  # noqa: BLE001 - a torn or foreign file fails in many ways
        raise ValueError(f"{path}: unreadable TTS utterance ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); build the data "
                         "again with `hwnas tts data`") from None
    if u.mel.ndim != 2 or len(u.durations) != len(u.phonemes):
        raise ValueError(f"{path}: not a TTS utterance (mel or durations of the wrong shape)")
    return u


def _complete(folder: Path, uid: str) -> bool:
    """Whether an utterance's two files are there and readable; what is not
    readable is set aside (with a note) to be synthesised again."""
    import logging

    from hwnas.data.corpus import read_wav
    from hwnas.paths import set_aside

    npz, wav = folder / f"{uid}.npz", folder / f"{uid}.wav"
    if not (npz.exists() or wav.exists()):
        return False
    for path, read in ((npz, _read), (wav, read_wav)):
        try:
            if path.is_dir():
                raise ValueError(f"{path}: a folder, not a file")
            read(path)
        except FileNotFoundError:
            return False
        except Exception as e:  # noqa: BLE001 - wave and zip files torn in many ways
            kept = set_aside(path, folder.parent / "set-aside")
            logging.getLogger("hwnas").warning(f"{str(e).split(';')[0]}; set aside as {kept}, "
                                               "synthesised again")
            return False
    return True


def _build_one(args: tuple[str, str, str, str]) -> str:
    uid, text, lang, folder = args
    u, wave = make(uid, text, voice_for(lang))
    _write(u, wave, Path(folder))
    return uid


#: phonemes.json of a TTS data folder
PHONEMES = Shape("TTS phoneme inventory", required={"phonemes": list},
                 optional={"lang": str, "voice": str, "size": str, "seed": int,
                           "sample_rate": int})


def data_dir(workspace: Path, lang: str, size: str, seed: int) -> Path:
    return Path(workspace) / "data" / f"tts-{lang}-{size}-s{seed}"


def build(workspace: Path, lang: str = "en", size: str = "small", seed: int = 0,
          workers: int = 2, on_progress: Callable[[int, int], None] | None = None) -> Path:
    """Synthesise what is missing; returns the data folder."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; one of {', '.join(SIZES)}")
    voice_for(lang)
    n_train, n_dev = SIZES[size]
    train = plan_split(lang, "train", n_train, seed)
    dev = plan_split(lang, "dev", n_dev, seed, frozenset(u.text for u in train))
    root = data_dir(workspace, lang, size, seed)
    from hwnas.paths import held

    with held(root.parent / f".{root.name}.lock", f"the TTS data {root.name}"):
        return _build(root, lang, size, seed, train, dev, workers, on_progress)


def _build(root: Path, lang: str, size: str, seed: int, train: list, dev: list, workers: int,
           on_progress: Callable[[int, int], None] | None) -> Path:
    n_train, n_dev = SIZES[size]
    todo = []
    for split, utts in (("train", train), ("dev", dev)):
        (root / split).mkdir(parents=True, exist_ok=True)
        todo += [(u.id, u.text, lang, str(root / split)) for u in utts
                 if not _complete(root / split, u.id)]
    run_all(_build_one, todo, n_train + n_dev, workers, on_progress, chunksize=4)
    inventory = sorted({p for u in load_split(root, "train") for p in u.phonemes})
    write_atomic(root / "phonemes.json", json.dumps(
        {"lang": lang, "voice": voice_for(lang).spec, "size": size, "seed": seed,
         "sample_rate": SAMPLE_RATE, "phonemes": ["<pad>", "<unk>", *inventory]},
        indent=1, ensure_ascii=False) + "\n")
    return root


def load_split(root: Path, split: str) -> list[Utterance]:
    folder = Path(root) / split
    paths = sorted(folder.glob("*.npz"))
    if not paths:
        raise ValueError(f"{folder}: no TTS utterances (build them with `hwnas tts data`)")
    return [_read(p) for p in paths]


@dataclass
class PhonemeSet:
    """Ids of a data folder's phoneme inventory (0 pad, 1 unknown)."""

    names: list[str]

    @classmethod
    def of(cls, root: Path) -> PhonemeSet:
        path = Path(root) / "phonemes.json"
        if not path.is_file():
            raise ValueError(f"{root}: no phonemes.json (build the data with `hwnas tts data`)")
        from hwnas.state import read_json

        names = read_json(path, PHONEMES)
        if not all(isinstance(p, str) for p in names["phonemes"]):
            raise ValueError(f"{path}: TTS phoneme inventory holds a value that is not a string")
        return cls(names["phonemes"])

    def ids(self, phonemes: list[str]) -> np.ndarray:
        index = {p: i for i, p in enumerate(self.names)}
        return np.array([index.get(p, UNK) for p in phonemes], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.names)
