"""Readers for real corpora and for the built-in one, all into the same
:class:`Dataset` of :class:`Item` (id, audio file, optional segment, text).

Layouts:
  librispeech  <root>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt with
               lines "<utt-id> TEXT", audio <utt-id>.flac beside it
  commonvoice  <root>/<split>.tsv (columns path, sentence, ...) and clips under
               <root>/clips/ (mp3 or any format libsndfile reads)
  kaldi        a data directory: wav.scp ("<rec-id> <file>"), text
               ("<utt-id> words"), optional segments ("<utt-id> <rec-id>
               <start> <end>" in seconds)
  builtin      a corpus built by ``hwnas data build`` (<lang>/<split>.jsonl)

Problems (a missing transcript, a missing or unreadable audio file, a pipe
command in wav.scp) are collected with the path and the reason; with
``strict=True`` the first one raises instead. Audio is checked when it is
read (:func:`load_audio`), and feature extraction skips and reports a file
that fails there -- never a crash in the middle of an epoch.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
LAYOUTS = ("librispeech", "commonvoice", "kaldi", "builtin")


@dataclass(frozen=True)
class Item:
    id: str
    audio: str                  # file path
    text: str
    start: float | None = None  # seconds (Kaldi segments)
    end: float | None = None


@dataclass
class Dataset:
    name: str
    items: list[Item] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def __len__(self) -> int:
        return len(self.items)


class CorpusError(ValueError):
    pass


def problem_text(path: str, reason: str) -> str:
    """One line for a skipped utterance (the reason may already name the file)."""
    return reason if reason.startswith(path) else f"{path}: {reason}"


def _problem(ds: Dataset, path: Path | str, reason: str, strict: bool) -> None:
    if strict:
        raise CorpusError(f"{path}: {reason}")
    ds.problems.append((str(path), reason))


def load_librispeech(root: Path, strict: bool = False) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"LibriSpeech folder not found: {root}")
    ds = Dataset(f"librispeech:{root.name}")
    transcribed: set[Path] = set()
    for trans in sorted(root.rglob("*.trans.txt")):
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            uid, _, text = line.partition(" ")
            audio = trans.parent / f"{uid}.flac"
            transcribed.add(audio)
            if not text.strip():
                _problem(ds, f"{trans}:{n}", f"empty transcript for {uid}", strict)
            elif not audio.is_file():
                _problem(ds, audio, "audio file missing", strict)
            else:
                ds.items.append(Item(uid, str(audio), text.strip()))
    for audio in sorted(root.rglob("*.flac")):
        if audio not in transcribed:
            _problem(ds, audio, "no transcript line for this file", strict)
    if not ds.items and not ds.problems:
        raise CorpusError(f"no *.trans.txt under {root}: not a LibriSpeech layout")
    return ds


def load_commonvoice(root: Path, split: str = "test", strict: bool = False) -> Dataset:
    root = Path(root)
    tsv = root / f"{split}.tsv"
    if not tsv.is_file():
        raise CorpusError(f"Common Voice split file not found: {tsv}")
    ds = Dataset(f"commonvoice:{root.name}/{split}")
    with tsv.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"path", "sentence"} - set(reader.fieldnames or [])
        if missing:
            raise CorpusError(f"{tsv}: missing column(s) {', '.join(sorted(missing))}")
        for n, row in enumerate(reader, 2):
            clip = root / "clips" / (row["path"] or "")
            text = (row["sentence"] or "").strip()
            if not row["path"]:
                _problem(ds, f"{tsv}:{n}", "no clip path", strict)
            elif not text:
                _problem(ds, f"{tsv}:{n}", f"empty sentence for {row['path']}", strict)
            elif not clip.is_file():
                _problem(ds, clip, "audio file missing", strict)
            else:
                ds.items.append(Item(Path(row["path"]).stem, str(clip), text))
    return ds


def _kv(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            k, _, v = line.strip().partition(" ")
            out[k] = v.strip()
    return out


def load_kaldi(data_dir: Path, strict: bool = False) -> Dataset:
    d = Path(data_dir)
    for name in ("wav.scp", "text"):
        if not (d / name).is_file():
            raise CorpusError(f"{d / name} not found: not a Kaldi data directory")
    ds = Dataset(f"kaldi:{d.name}")
    wavs, texts = _kv(d / "wav.scp"), _kv(d / "text")

    def audio_of(rec: str) -> str | None:
        spec = wavs.get(rec)
        if spec is None:
            _problem(ds, d / "wav.scp", f"no entry for recording {rec}", strict)
            return None
        if spec.endswith("|"):
            _problem(ds, d / "wav.scp", f"{rec}: pipe commands are not run; convert the "
                                        "audio to files first", strict)
            return None
        p = Path(spec)
        p = p if p.is_absolute() else d / p
        if not p.is_file():
            _problem(ds, p, "audio file missing", strict)
            return None
        return str(p)

    if (d / "segments").is_file():
        for line in (d / "segments").read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                _problem(ds, d / "segments", f"bad line {line!r}", strict)
                continue
            uid, rec, start, end = parts[0], parts[1], float(parts[2]), float(parts[3])
            if uid not in texts:
                _problem(ds, d / "text", f"no transcript for {uid}", strict)
                continue
            audio = audio_of(rec)
            if audio:
                ds.items.append(Item(uid, audio, texts[uid], start, end))
    else:
        for uid in wavs:
            if uid not in texts:
                _problem(ds, d / "text", f"no transcript for {uid}", strict)
                continue
            audio = audio_of(uid)
            if audio:
                ds.items.append(Item(uid, audio, texts[uid]))
    return ds


USER_LAYOUTS = ("librispeech", "commonvoice", "kaldi")


def load_spec(spec: str, strict: bool = False) -> Dataset:
    """A user corpus named on the command line: ``librispeech:DIR``,
    ``commonvoice:DIR/SPLIT.tsv`` or ``kaldi:DATA_DIR``."""
    layout, sep, path = spec.partition(":")
    if not sep or layout not in USER_LAYOUTS or not path:
        raise CorpusError(f"corpus {spec!r}: give LAYOUT:PATH, LAYOUT one of "
                          f"{', '.join(USER_LAYOUTS)} (e.g. librispeech:/data/LibriSpeech/"
                          "dev-clean, commonvoice:/data/cv/en/test.tsv, kaldi:data/train)")
    p = Path(path).expanduser()
    if layout == "librispeech":
        return load_librispeech(p, strict)
    if layout == "kaldi":
        return load_kaldi(p, strict)
    if p.suffix != ".tsv":
        raise CorpusError(f"corpus {spec!r}: commonvoice names a split's .tsv file "
                          "(e.g. commonvoice:/data/cv/en/train.tsv)")
    return load_commonvoice(p.parent, p.stem, strict)


def load_builtin(root: Path, lang: str, split: str) -> Dataset:
    root = Path(root)
    lst = root / lang / f"{split}.jsonl"
    if not lst.is_file():
        raise CorpusError(f"{lst} not found; build it with `hwnas data build --langs {lang}`")
    from hwnas.data.corpus import read_list
    from hwnas.state import StateError

    ds = Dataset(f"builtin:{lang}/{split}")
    try:
        records = read_list(lst)
    except StateError as e:
        raise CorpusError(str(e)) from None
    ds.items.extend(Item(u["id"], str(root / u["audio"]), u["text"]) for u in records)
    return ds


def load_audio(item: Item) -> np.ndarray:
    """Float32 mono at 16 kHz (mixed down and resampled as needed); raises
    CorpusError naming the file when it cannot be read."""
    try:
        import soundfile as sf
    except ImportError:
        raise CorpusError("reading corpus audio needs soundfile: pip install soundfile") \
            from None
    try:
        info = sf.info(item.audio)
        start = int((item.start or 0.0) * info.samplerate)
        stop = int(item.end * info.samplerate) if item.end is not None else None
        x, sr = sf.read(item.audio, start=start, stop=stop, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as e:
        raise CorpusError(f"{item.audio}: cannot read audio ({e})") from None
    if x.shape[0] == 0:
        raise CorpusError(f"{item.audio}: no samples")
    x = x.mean(axis=1)
    if sr != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sr), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)
    return x.astype(np.float32)
