"""The built-in corpus as feature sets, built and cached on first use."""

from __future__ import annotations

from pathlib import Path

from hwnas.data.corpus import build, corpus_dir, words
from hwnas.data.loaders import load_builtin
from hwnas.training.features import FeatureSet, compute

SPLITS = ("train", "dev", "test-clean", "test-noisy")


def ensure_corpus(workspace: Path, langs: list[str], size: str, corpus_seed: int) -> Path:
    """The corpus folder, after building the languages it lacks (unknown ones refused)."""
    for lang in langs:
        words(lang)  # validates
    root = corpus_dir(workspace, size, corpus_seed)
    missing = [lang for lang in langs if not (root / lang / "test-noisy.jsonl").is_file()]
    if missing:
        build(workspace, missing, size, corpus_seed, workers=2)
    return root


def builtin_features(workspace: Path, langs: list[str], size: str, corpus_seed: int,
                     frontend: str, n_filters: int) -> dict[tuple[str, str], FeatureSet]:
    """(lang, split) -> features; builds missing languages of the corpus first."""
    root = ensure_corpus(workspace, langs, size, corpus_seed)
    cache = Path(workspace) / "cache" / "features"
    return {(lang, split): compute(load_builtin(root, lang, split), frontend, n_filters, cache)
            for lang in langs for split in SPLITS}
