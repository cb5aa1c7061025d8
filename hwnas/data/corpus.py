"""The built-in corpus: deterministic synthetic speech in several languages.

Sentences of 3-8 words are drawn from a word list per language
(``hwnas/data/words/<lang>.txt``) and spoken by eSpeak NG with a random
accent, voice variant, speaking rate and pitch; training and dev utterances
get coloured noise (white to brown) at 10-30 dB SNR most of the time. Each
language has four splits: ``train``, ``dev`` and two test conditions,
``test-clean`` (no noise) and ``test-noisy`` (0-10 dB SNR). Dev and test
sentences never occur in train.

Every utterance's text, voice and noise come from its own random stream,
seeded by (seed, language, split, index): the same seed gives the same
corpus byte for byte, however many workers build it and however often the
build is interrupted and resumed (finished audio files are kept).

Layout of ``<workspace>/data/builtin-<size>-s<seed>/``::

    manifest.json            langs, sizes, seed, splits with utterance counts
    <lang>/<split>.jsonl     one utterance per line: id, text, audio, voice, ...
    <lang>/<split>/<id>.wav  16 kHz mono 16-bit PCM
"""

from __future__ import annotations

import json
import os
import random
import wave
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.data.synth import SAMPLE_RATE, Voice, synthesize
from hwnas.paths import write_atomic
from hwnas.state import NUMBER, Shape, StateError, read_json, write_json

CORPUS_VERSION = 1
#: the corpus's manifest.json and the records of its split lists (<lang>/<split>.jsonl)
MANIFEST = Shape("built-in corpus manifest",
                 required={"kind": str, "size": str, "seed": int, "langs": list, "splits": dict},
                 optional={"version": int, "sample_rate": int, "synthesiser": str})
RECORD = Shape("utterance record", required={"id": str, "audio": str, "text": str},
               optional={"lang": str, "split": str, "seconds": NUMBER})
SPLITS = ("train", "dev", "test-clean", "test-noisy")
#: utterances per language: train, dev, and each test condition
SIZES = {"tiny": (200, 40, 40), "small": (2000, 200, 200), "medium": (10000, 500, 500)}
ACCENTS = {"en": ("en", "en-us", "en-029", "en-gb-scotland", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-gb-x-rp", "en-us-nyc"),
           "es": ("es", "es-419"), "de": ("de",),
           # non-Latin scripts: Cyrillic, Greek, Devanagari
           "ru": ("ru",), "el": ("el",), "hi": ("hi",)}
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
            "adam", "Andy", "annie", "belinda", "benjamin", "boris", "caleb", "david", "ed",
            "edward", "iven", "john", "linda", "max", "michel", "norbert", "grandma", "aunty")
WORDS_DIR = Path(__file__).resolve().parent / "words"


@cache
def words(lang: str) -> tuple[str, ...]:
    path = WORDS_DIR / f"{lang}.txt"
    if lang not in ACCENTS or not path.is_file():
        raise ValueError(f"no built-in language {lang!r}; built in: {', '.join(ACCENTS)}")
    seen: dict[str, None] = {}
    for w in path.read_text(encoding="utf-8").split():
        seen.setdefault(w.lower(), None)
    return tuple(seen)


@dataclass(frozen=True)
class Utterance:
    id: str
    lang: str
    split: str
    text: str
    voice: str
    variant: str
    rate: int
    pitch: int
    snr_db: float | None     # None: clean
    noise_colour: float      # spectral slope: 0 white, 1 pink, 2 brown
    lead_s: float            # silence before the speech
    noise_seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sentence(rng: random.Random, vocab: tuple[str, ...]) -> str:
    return " ".join(rng.choice(vocab) for _ in range(rng.randint(3, 8)))


def plan_split(lang: str, split: str, n: int, seed: int,
               avoid: frozenset[str] = frozenset()) -> list[Utterance]:
    """The utterances of one split, each from its own random stream."""
    vocab = words(lang)
    out = []
    for i in range(n):
        rng = random.Random(f"{seed}:{lang}:{split}:{i}")
        text = _sentence(rng, vocab)
        while text in avoid:
            text = _sentence(rng, vocab)
        if split == "test-clean":
            snr = None
        elif split == "test-noisy":
            snr = round(rng.uniform(0.0, 10.0), 2)
        else:
            snr = round(rng.uniform(10.0, 30.0), 2) if rng.random() < 0.8 else None
        out.append(Utterance(
            id=f"{lang}-{split}-{i:06d}", lang=lang, split=split, text=text,
            voice=rng.choice(ACCENTS[lang]), variant=rng.choice(VARIANTS),
            rate=rng.randint(120, 220), pitch=rng.randint(20, 80), snr_db=snr,
            noise_colour=round(rng.uniform(0.0, 2.0), 3), lead_s=round(rng.uniform(0.0, 0.3), 3),
            noise_seed=rng.getrandbits(32)))
    return out


def plan_corpus(langs: Iterable[str], size: str, seed: int) -> dict[tuple[str, str],
                                                                     list[Utterance]]:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; one of {', '.join(SIZES)}")
    n_train, n_dev, n_test = SIZES[size]
    plan = {}
    for lang in langs:
        words(lang)  # validates the language
        train = plan_split(lang, "train", n_train, seed)
        seen = frozenset(u.text for u in train)
        plan[(lang, "train")] = train
        for split, n in (("dev", n_dev), ("test-clean", n_test), ("test-noisy", n_test)):
            plan[(lang, split)] = plan_split(lang, split, n, seed, seen)
    return plan


def coloured_noise(n: int, slope: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f^slope, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (slope / 2), n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def render(u: Utterance) -> np.ndarray:
    """The utterance's waveform: speech after ``lead_s`` of silence (plus 0.2 s
    after), noise mixed at ``snr_db``, peak-limited to [-1, 1]."""
    speech = synthesize(u.text, Voice(u.voice, u.variant, u.rate, u.pitch))
    lead, tail = int(u.lead_s * SAMPLE_RATE), int(0.2 * SAMPLE_RATE)
    x = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
    if u.snr_db is not None:
        rng = np.random.default_rng(u.noise_seed)
        p_speech = float(np.mean(speech.astype(np.float64) ** 2)) + 1e-12
        noise = coloured_noise(len(x), u.noise_colour, rng)
        x = x + noise * np.sqrt(p_speech / 10 ** (u.snr_db / 10))
    peak = float(np.abs(x).max())
    if peak > 0.99:
        x = x * (0.99 / peak)
    return x.astype(np.float32)


def write_wav(path: Path, x: np.ndarray) -> None:
    """16-bit PCM, written to a temp file and renamed (no half-written audio)."""
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    tmp = path.with_name(f".{path.name}.tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    os.replace(tmp, path)


def read_wav(path: Path) -> np.ndarray:
    """Float32 mono samples of a 16-bit PCM WAV file at 16 kHz."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() != SAMPLE_RATE:
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM, got "
                             f"{w.getframerate()} Hz, {w.getnchannels()} channel(s), "
                             f"{8 * w.getsampwidth()}-bit")
        data = w.readframes(w.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def _render_to(args: tuple[Utterance, str]) -> tuple[str, int]:
    u, path = args
    x = render(u)
    write_wav(Path(path), x)
    return u.id, len(x)


def run_all(fn: Callable[[Any], Any], todo: list[Any], total: int, workers: int,
            on_progress: Callable[[int, int], None] | None, chunksize: int = 8) -> None:
    """``fn`` over ``todo`` (what is missing of ``total`` items), in ``workers``
    forked processes, with ``on_progress(done, total)`` as items finish."""
    done = total - len(todo)
    if on_progress:
        on_progress(done, total)
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp

        from hwnas.paths import die_with_parent

        with mp.get_context("fork").Pool(workers, initializer=die_with_parent) as pool:
            for _ in pool.imap_unordered(fn, todo, chunksize=chunksize):
                done += 1
                if on_progress:
                    on_progress(done, total)
        return
    for item in todo:
        fn(item)
        done += 1
        if on_progress:
            on_progress(done, total)


def corpus_dir(workspace: Path, size: str, seed: int) -> Path:
    return Path(workspace) / "data" / f"builtin-{size}-s{seed}"


def build(workspace: Path, langs: list[str], size: str = "small", seed: int = 0,
          workers: int = 2, on_progress: Callable[[int, int], None] | None = None) -> Path:
    """Synthesise what is missing and write the split lists and the manifest.
    Languages already built under the same size and seed are reused."""
    from hwnas.paths import held

    root = corpus_dir(workspace, size, seed)
    # two commands starting on a fresh workspace: one builds, the other waits
    with held(root.parent / f".{root.name}.lock", f"the built-in corpus {root.name}"):
        return _build(root, langs, size, seed, workers, on_progress)


def _build(root: Path, langs: list[str], size: str, seed: int, workers: int,
           on_progress: Callable[[int, int], None] | None) -> Path:
    plan = plan_corpus(langs, size, seed)
    todo = []
    for (lang, split), utts in plan.items():
        (root / lang / split).mkdir(parents=True, exist_ok=True)
        for u in utts:
            path = root / lang / split / f"{u.id}.wav"
            if not path.is_file():
                todo.append((u, str(path)))
    total = sum(len(v) for v in plan.values())
    run_all(_render_to, todo, total, workers, on_progress)
    manifest = _manifest(root, size, seed)
    for (lang, split), utts in plan.items():
        lines = []
        for u in utts:
            path = root / lang / split / f"{u.id}.wav"
            frames = (path.stat().st_size - 44) // 2
            lines.append(json.dumps({**u.to_dict(), "audio": f"{lang}/{split}/{u.id}.wav",
                                     "seconds": round(frames / SAMPLE_RATE, 3)},
                                    ensure_ascii=False))
        write_atomic(root / lang / f"{split}.jsonl", "\n".join(lines) + "\n")
        manifest["splits"][f"{lang}/{split}"] = len(utts)
    on_disk = {p.parent.name for p in root.glob("*/test-noisy.jsonl")}
    manifest["langs"] = sorted(set(manifest["langs"]) | set(langs) | on_disk)
    write_json(root / "manifest.json", manifest, MANIFEST)
    return root


def read_list(path: Path) -> list[dict[str, Any]]:
    """A split list's utterance records, each checked (StateError: one line
    naming the file and line)."""
    from hwnas.paths import read_text

    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as e:
        raise StateError(f"{path}: unreadable ({e})") from None
    records = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError:
                raise StateError(f"{path} line {i}: not JSON") from None
            records.append(RECORD.check(value, f"{path} line {i}"))
    if not records:
        raise StateError(f"{path}: no utterances")
    return records


def usable(root: Path, lang: str) -> bool:
    """Whether ``lang``'s split lists are there and readable; unreadable ones
    are set aside (with a note) so that a build writes them again from the
    corpus's plan."""
    import logging

    from hwnas.paths import set_aside

    ok = True
    for split in SPLITS:
        path = root / lang / f"{split}.jsonl"
        if not path.exists():
            ok = False
            continue
        try:
            read_list(path)
        except StateError as e:
            kept = set_aside(path, root / "set-aside") if not path.is_dir() else None
            logging.getLogger("hwnas").warning(
                f"{e}; set aside{f' as {kept}' if kept else ''}, the list is written again")
            ok = False
    return ok


def _manifest(root: Path, size: str, seed: int) -> dict[str, Any]:
    """The corpus's manifest so far (a build may add languages to it); one
    that cannot be read is set aside and made again."""
    import logging

    from hwnas.paths import set_aside

    path = root / "manifest.json"
    if path.exists():
        try:
            return read_json(path, MANIFEST)
        except StateError as e:
            kept = set_aside(path, root / "set-aside") if path.is_file() else None
            logging.getLogger("hwnas").warning(f"{e}; set aside{f' as {kept}' if kept else ''}")
            if path.is_dir():
                raise
    return {"kind": "builtin", "version": CORPUS_VERSION, "size": size, "seed": seed,
            "sample_rate": SAMPLE_RATE, "langs": [], "splits": {},
            "synthesiser": _synth_version()}


def _synth_version() -> str:
    try:
        from importlib.metadata import version

        return f"espeakng-loader {version('espeakng-loader')}"
    except Exception:
        return "espeakng-loader"
