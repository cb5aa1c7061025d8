"""Feature frames for training, cached on disk.

Features are computed once per (dataset, front-end, filters) with the same
:class:`hwnas.nn.frontend.FeatureExtractor` the exported models are fed
with, and cached as a raw float16 file of the frames beside an .npz index
(ids, texts, offsets); a cache that fails its checks is set aside and
computed again.
Global mean/variance normalisation statistics come from the training set and
travel with the trained model (a fixed affine step in the DSP stage).
An utterance whose audio cannot be read is skipped and reported.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.data.loaders import CorpusError, Dataset, load_audio
from hwnas.errors import first_line
from hwnas.nn.frontend import N_FFT, FeatureExtractor
from hwnas.paths import file_sha256, set_aside

log = logging.getLogger(__name__)
FEATURE_VERSION = 2  # 2: frames cached as a raw float16 file, memory-mapped


@dataclass
class FeatureSet:
    name: str
    ids: list[str]
    texts: list[str]
    frames: np.ndarray           # (sum T, F) float16; memory-mapped when cached
    offsets: np.ndarray          # (N + 1,) int64
    problems: list[tuple[str, str]] = field(default_factory=list)
    # (label, utterances) of the sets it concatenates, in order: the languages of a
    # multilingual dev set, so that error rates can be reported per language
    parts: list[tuple[str, int]] = field(default_factory=list)
    _stats: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False,
                                                         compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def feats(self, i: int) -> np.ndarray:
        return self.frames[self.offsets[i]: self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature mean and std, computed once (every rung and trial of a
        search trains on the same set)."""
        if self._stats is None:  # in slices: a large corpus is never copied whole
            total = np.zeros(self.frames.shape[1])
            squares = np.zeros(self.frames.shape[1])
            for i in range(0, len(self.frames), 1 << 20):
                x = self.frames[i: i + (1 << 20)].astype(np.float64)
                total += x.sum(axis=0)
                squares += (x * x).sum(axis=0)
            mean = total / len(self.frames)
            std = np.sqrt(np.maximum(squares / len(self.frames) - mean * mean, 0.0))
            self._stats = (mean.astype(np.float32), (std + 1e-5).astype(np.float32))
        return self._stats


def _key(ds: Dataset, frontend: str, n_filters: int) -> str:
    h = hashlib.sha256()
    h.update(f"{FEATURE_VERSION}:{ds.name}:{frontend}:{n_filters}".encode())
    for it in ds.items:  # size and mtime: audio replaced in place is read again
        try:
            st = os.stat(it.audio)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "missing"
        h.update(f"{it.id}|{it.audio}|{stamp}|{it.start}|{it.end}|{it.text}\n".encode())
    return h.hexdigest()[:16]


def compute(ds: Dataset, frontend: str, n_filters: int, cache_dir: Path | None = None,
            on_item: Callable[[int, int], None] | None = None) -> FeatureSet:
    """Features of every readable utterance; ``on_item(done, total)`` reports
    progress while computing.

    With ``cache_dir`` they are cached by content: the frames as a raw float16
    file written as they are computed and memory-mapped when read (a corpus
    larger than memory trains from the page cache), beside an .npz of ids,
    texts and offsets that is written last, so a cache cut short is never
    read."""
    if cache_dir is None:
        return _extract(ds, frontend, n_filters, None, on_item)
    from hwnas.paths import held

    key = _key(ds, frontend, n_filters)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    # commands sharing a workspace compute a set once: the second waits, then reads it
    with held(Path(cache_dir) / f".{key}.lock", f"the features of {ds.name} ({key})"):
        return _cached(ds, frontend, n_filters, Path(cache_dir), key, on_item)


def _cached(ds: Dataset, frontend: str, n_filters: int, cache_dir: Path, key: str,
            on_item: Callable[[int, int], None] | None) -> FeatureSet:
    meta, raw = cache_dir / f"{key}.npz", cache_dir / f"{key}.f16"
    if meta.is_file() and raw.is_file():
        try:
            return _read_cache(ds.name, meta, raw)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            # derived data, so recomputed; but kept, like everything on disk
            kept = [set_aside(f, Path(cache_dir) / "set-aside") for f in (meta, raw)]
            log.warning("feature cache %s is unreadable (%s): set aside as %s; computing "
                        "it again", meta.with_suffix(""), first_line(e, 120),
                        ", ".join(k.name for k in kept))
    meta.parent.mkdir(parents=True, exist_ok=True)
    tmp = raw.with_name(f".{raw.name}.tmp")
    with tmp.open("wb") as sink:
        fs = _extract(ds, frontend, n_filters, sink, on_item)
    os.replace(tmp, raw)
    tmp_meta = meta.with_name(f".{meta.stem}.tmp.npz")
    np.savez(tmp_meta, ids=np.array(fs.ids), texts=np.array(fs.texts),
             offsets=fs.offsets, width=np.array(fs.frames.shape[1]),
             problems=np.array(fs.problems, dtype=str).reshape(-1, 2),
             sha256=np.array(file_sha256(raw)))
    os.replace(tmp_meta, meta)
    return _read_cache(ds.name, meta, raw)


def _read_cache(name: str, meta: Path, raw: Path) -> FeatureSet:
    """A cached set, checked against itself (a ValueError names what is wrong)."""
    with np.load(meta, allow_pickle=False) as z:
        ids, texts, offsets = list(z["ids"]), list(z["texts"]), np.asarray(z["offsets"])
        width, problems = int(z["width"]), [tuple(p) for p in z["problems"]]
        said = str(z["sha256"]) if "sha256" in z.files else None   # older caches: none
    if (offsets.ndim != 1 or len(offsets) != len(ids) + 1 or len(texts) != len(ids)
            or offsets[0] != 0 or np.any(np.diff(offsets) < 0) or width < 1):
        raise ValueError("its index does not describe a feature set")
    size, held = int(offsets[-1]) * width * 2, raw.stat().st_size
    if held != size:
        raise ValueError(f"{raw.name} holds {held} bytes, its index says {size}")
    if said is not None and said != file_sha256(raw):
        # raw float16 has no check of its own: a flipped bit would train on NaN
        raise ValueError(f"{raw.name} does not match the checksum its index recorded")
    frames = np.memmap(raw, dtype=np.float16, mode="r", shape=(int(offsets[-1]), width)) \
        if size else np.zeros((0, width), dtype=np.float16)
    return FeatureSet(name, ids, texts, frames, offsets, problems)


def _extract(ds: Dataset, frontend: str, n_filters: int, sink: Any,
             on_item: Callable[[int, int], None] | None) -> FeatureSet:
    """Features of ``ds``; with ``sink`` (a binary file) the frames go there
    as they are computed and the returned set holds none of them."""
    fx = FeatureExtractor(frontend, n_filters)
    ids, texts, parts, lengths, problems = [], [], [], [], list(ds.problems)
    width = 0
    with torch.no_grad():
        for n, it in enumerate(ds.items, 1):
            if on_item:
                on_item(n, len(ds.items))
            try:
                wave = load_audio(it)
                if len(wave) < N_FFT:
                    raise CorpusError(f"{it.audio}: shorter than one 25 ms frame")
            except CorpusError as e:
                problems.append((it.audio, str(e)))
                continue
            f = fx(torch.from_numpy(wave))[0].numpy().astype(np.float16)
            width = f.shape[1]
            if sink is None:
                parts.append(f)
            else:
                sink.write(np.ascontiguousarray(f).tobytes())
            lengths.append(len(f))
            ids.append(it.id)
            texts.append(it.text)
    if not ids:
        raise CorpusError(f"{ds.name}: no readable utterance ({len(problems)} problems)")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    frames = np.concatenate(parts) if sink is None else np.empty((0, width), np.float16)
    return FeatureSet(ds.name, ids, texts, frames, offsets, problems)


def spec_augment(x: torch.Tensor, rng: np.random.Generator, freq_masks: int = 2,
                 freq_width: int = 8, time_masks: int = 2, time_ratio: float = 0.05
                 ) -> torch.Tensor:
    """SpecAugment (Park et al., 2019) without time warping, on (B, T, F) in place."""
    B, T, F = x.shape
    for b in range(B):
        for _ in range(freq_masks):
            w = int(rng.integers(0, freq_width + 1))
            f0 = int(rng.integers(0, max(1, F - w)))
            x[b, :, f0:f0 + w] = 0.0
        for _ in range(time_masks):
            w = int(rng.integers(0, max(1, int(time_ratio * T)) + 1))
            t0 = int(rng.integers(0, max(1, T - w)))
            x[b, t0:t0 + w] = 0.0
    return x


def concat(sets: list[FeatureSet], name: str, labels: list[str] | None = None) -> FeatureSet:
    """One feature set from several (e.g. the train splits of several languages);
    ``labels`` name the parts (kept in ``parts``)."""
    if len(sets) == 1:
        return sets[0]
    frames = np.concatenate([s.frames for s in sets])
    lengths = np.concatenate([s.lengths() for s in sets])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    parts = list(zip(labels, [len(s) for s in sets])) if labels else []
    return FeatureSet(name, [i for s in sets for i in s.ids], [t for s in sets for t in s.texts],
                      frames, offsets, [p for s in sets for p in s.problems], parts)
