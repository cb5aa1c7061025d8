"""Corpora as feature sets: the built-in one (built and cached on first use)
or the user's own files, behind one interface (``splits(frontend, n_filters)``)
that training, the search and the benchmarks share."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.data.corpus import SPLITS, build, corpus_dir, usable, words
from hwnas.data.loaders import CorpusError, Dataset, load_builtin, load_spec, problem_text
from hwnas.data.tokens import CharTokenizer, normalise
from hwnas.training.features import FeatureSet, compute, concat


def ensure_corpus(workspace: Path, langs: list[str], size: str, corpus_seed: int) -> Path:
    """The corpus folder, after building the languages it lacks (unknown ones refused)."""
    for lang in langs:
        words(lang)  # validates
    root = corpus_dir(workspace, size, corpus_seed)
    missing = [lang for lang in langs if not usable(root, lang)]
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


@dataclass
class Splits:
    """What training and scoring need, for one front-end."""
    train: FeatureSet
    dev: FeatureSet
    tests: dict[str, tuple[FeatureSet, list[str]]]  # name -> (features, lexicon)
    problems: dict[str, list[tuple[str, str]]]      # split -> (path, reason) skipped


class _Corpus:
    """Splits computed once per (front-end, filters); subclasses say how."""
    tokenizer: CharTokenizer
    description: dict

    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], Splits] = {}

    def splits(self, frontend: str, n_filters: int,
               on_item: Callable[[str, int, int], None] | None = None) -> Splits:
        """``on_item(split, done, total)`` reports feature extraction as it goes."""
        key = (frontend, n_filters)
        if key not in self._cache:
            self._cache[key] = self._splits(frontend, n_filters, on_item)
        return self._cache[key]

    def has_splits(self, frontend: str, n_filters: int) -> bool:
        return (frontend, n_filters) in self._cache

    def prepare(self) -> None:
        """Make the audio exist (the built-in corpus is synthesised once)."""

    def _splits(self, frontend: str, n_filters: int,
                on_item: Callable[[str, int, int], None] | None) -> Splits:
        raise NotImplementedError


CHARSETS = ("langs", "all")


class BuiltinCorpus(_Corpus):
    """The built-in synthetic corpus: train/dev of every language pooled, a
    clean and a noisy test set per language, each scored with its word list.
    Built (once) when splits are first asked for."""

    def __init__(self, workspace: Path, langs: list[str], size: str = "small",
                 seed: int = 0, charset: str = "langs") -> None:
        super().__init__()
        from hwnas.data.corpus import ACCENTS

        if not langs:
            raise ValueError("give at least one language")
        for lang in langs:
            words(lang)  # an unknown language is refused now, not at the first trial
        if charset not in CHARSETS:
            raise ValueError(f"unknown character set {charset!r}; one of {', '.join(CHARSETS)}")
        self.workspace, self.langs, self.size, self.seed = Path(workspace), langs, size, seed
        # "langs": the letters of the languages trained on (one language: its own set);
        # "all": one multilingual set of every built-in language, so that output
        # layers line up across runs on different languages
        self.tokenizer = CharTokenizer.for_languages(langs if charset == "langs" else ACCENTS)
        self.description = {"kind": "builtin", "langs": langs, "size": size, "seed": seed}
        if charset != "langs":   # the default is left out: older runs' descriptions hold
            self.description["charset"] = charset

    def prepare(self) -> None:
        ensure_corpus(self.workspace, self.langs, self.size, self.seed)

    def _splits(self, frontend: str, n_filters: int,
                on_item: Callable[[str, int, int], None] | None) -> Splits:
        s = builtin_features(self.workspace, self.langs, self.size, self.seed, frontend,
                             n_filters)
        train = concat([s[(lang, "train")] for lang in self.langs], "train")
        return Splits(train, concat([s[(lang, "dev")] for lang in self.langs], "dev",
                                    self.langs),
                      {f"{lang}/{split}": (s[(lang, split)], list(words(lang)))
                       for lang in self.langs for split in ("test-clean", "test-noisy")},
                      {"train": list(train.problems)} if train.problems else {})


def corpus_text(description: dict) -> str:
    """A corpus description (``Corpus.description``) in words, for messages and cards."""
    c = description
    if c.get("kind") == "builtin":
        return f"the built-in corpus ({','.join(c['langs'])}, {c['size']}, seed {c['seed']})"
    if c.get("kind") == "user" or "train" in c:
        return f"--train {c.get('train')} --dev {c.get('dev')}"
    return ", ".join(f"{k} {v}" for k, v in c.items())   # another task's data


def named_specs(tests: list[str], reserved: tuple[tuple[str, str], ...] = ()
                ) -> list[tuple[str, str]]:
    """``[NAME=]SPEC`` arguments as (name, spec) after ``reserved``; a test set
    without a name is called by its spec."""
    named = list(reserved)
    for t in tests:
        name, eq, spec = t.partition("=")
        named.append((name, spec) if eq and ":" not in name else (t, t))
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"test set names must be distinct from each other"
                         f"{' and from train/dev' if reserved else ''}: "
                         f"{', '.join(names[len(reserved):])} (name them: --test NAME=SPEC)")
    return named


class UserCorpus(_Corpus):
    """The user's own files (``librispeech:DIR``, ``commonvoice:SPLIT.tsv``,
    ``kaldi:DIR``): characters of the training transcripts as tokens, their
    words as the lexicon. Bad utterances are skipped and listed in
    ``Splits.problems`` -- or, with ``strict``, refused before any training."""

    def __init__(self, workspace: Path, train: str, dev: str, tests: list[str] | None = None,
                 strict: bool = False) -> None:
        super().__init__()
        if not dev:
            raise ValueError("--train needs --dev SPEC (the held-out set the learning curve "
                             "and the CER are measured on)")
        named = named_specs(tests or [], reserved=(("train", train), ("dev", dev)))
        self.cache, self.strict = Path(workspace) / "cache" / "features", strict
        self.datasets = {name: load_spec(spec, strict) for name, spec in named}
        texts = [it.text for it in self.datasets["train"].items]
        self.tokenizer = CharTokenizer.from_texts(texts)
        self.lexicon = sorted({w for t in texts for w in normalise(t).split()})
        self.description = {"kind": "user", **dict(named)}

    def _splits(self, frontend: str, n_filters: int,
                on_item: Callable[[str, int, int], None] | None) -> Splits:
        sets, problems = features_of(self.datasets, frontend, n_filters, self.cache,
                                     self.strict, on_item)
        tests = {n: (fs, self.lexicon) for n, fs in sets.items() if n not in ("train", "dev")}
        return Splits(sets["train"], sets["dev"], tests, problems)


def features_of(datasets: dict[str, Dataset], frontend: str, n_filters: int, cache: Path,
                strict: bool = False, on_item: Callable[[str, int, int], None] | None = None
                ) -> tuple[dict[str, FeatureSet], dict[str, list[tuple[str, str]]]]:
    """Features of named datasets and, per name, the utterances skipped
    (with ``strict``, the first one raises instead)."""
    sets, problems = {}, {}
    for name, ds in datasets.items():
        cb = (lambda n, total, name=name: on_item(name, n, total)) if on_item else None
        fs = sets[name] = compute(ds, frontend, n_filters, cache, cb)
        if fs.problems:
            if strict:
                raise CorpusError(f"{problem_text(*fs.problems[0])} (--strict)")
            problems[name] = list(fs.problems)
    return sets, problems


def recorded_corpus(run: Path, ws: Path) -> BuiltinCorpus | UserCorpus:
    """The corpus a saved run trained on, from its result.json."""
    from hwnas.state import StateError, read_json
    from hwnas.training.runs import RESULT

    try:
        summary = read_json(Path(run) / "result.json", RESULT)
    except StateError as e:
        raise ValueError(f"{run}: not a complete training run ({e})") from None
    c = summary.get("corpus")
    if isinstance(c, str) and "langs" in summary:  # a run written before corpus descriptions
        m = re.fullmatch(r"builtin-(\w+)-s(\d+)", Path(c).name)
        if m:
            return BuiltinCorpus(Path(c).parents[1], summary["langs"], m[1], int(m[2]))
    if isinstance(c, dict) and c.get("kind") in ("builtin", "user"):
        return corpus_from_description(c, ws)
    raise ValueError(f"{run} does not record the corpus it trained on; name test sets "
                     "with --test")


def corpus_from_description(c: dict, ws: Path) -> BuiltinCorpus | UserCorpus:
    """The corpus a ``Corpus.description`` names (how a unit of work names its
    corpus to a worker)."""
    if c.get("kind") == "builtin":
        return BuiltinCorpus(ws, c["langs"], c["size"], c["seed"], c.get("charset", "langs"))
    if c.get("kind") == "user":
        tests = [v if k == v else f"{k}={v}" for k, v in c.items()
                 if k not in ("kind", "train", "dev")]
        return UserCorpus(ws, c["train"], c["dev"], tests)
    raise ValueError(f"unknown corpus kind in {c!r}")


def open_corpus(workspace: Path, *, langs: str = "en", size: str = "small",
                corpus_seed: int = 0, train: str | None = None, dev: str | None = None,
                test: list[str] | None = None, strict: bool = False, charset: str = "langs"
                ) -> BuiltinCorpus | UserCorpus:
    """The built-in corpus (built on first use) in ``langs`` (comma-separated),
    or the user's own ``train``/``dev``/``test`` specs."""
    from hwnas.data.corpus import SIZES

    if train:
        return UserCorpus(workspace, train, dev, test, strict=strict)
    if dev or test:
        raise ValueError("--dev/--test go with --train (your own corpus); without --train "
                         "the built-in corpus's splits are used")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; one of {', '.join(SIZES)}")
    return BuiltinCorpus(workspace, [x.strip() for x in langs.split(",") if x.strip()], size,
                         corpus_seed, charset)


def _key(description: dict) -> tuple[str, str]:
    import json

    return ("corpus", json.dumps(description, sort_keys=True))


def corpus_of(ctx: Any, description: dict, workspace: str | Path) -> Any:
    """A worker's corpus of ``description``, opened once (``WorkerContext``)."""
    return ctx.opened(_key(description),
                      lambda: corpus_from_description(description, Path(workspace)))


def share_corpus(ctx: Any, corpus: Any) -> None:
    """The driver's opened corpus for its local units (features computed once)."""
    ctx.share(_key(corpus.description), corpus)
