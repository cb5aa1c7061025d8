"""Character tokens. Id 0 is the blank (CTC/RNN-T) and doubles as start/end
for the attention decoders; then the space, then the letters of every
language in the set, sorted. Text is normalised the same way for training
and scoring: lowercase (NFC), anything but letters, combining marks (the
vowel signs and viramas of Devanagari are marks, not letters), apostrophes
and spaces becomes a space, runs of spaces collapse."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

BLANK = 0
_SPACE_RUN = re.compile(r"\s+")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text.lower())
    text = "".join(c if c.isalpha() or c == "'" or unicodedata.category(c)[0] == "M" else " "
                   for c in text)
    return _SPACE_RUN.sub(" ", text).strip()


class CharTokenizer:
    def __init__(self, chars: Sequence[str]) -> None:
        if len(set(chars)) != len(chars) or " " in chars:
            raise ValueError("tokenizer characters must be distinct and exclude the space")
        self.symbols = ["<blank>", " "] + list(chars)
        self._id = {c: i for i, c in enumerate(self.symbols)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CharTokenizer:
        chars = sorted({c for t in texts for c in normalise(t) if c != " "})
        return cls(chars)

    @classmethod
    def for_languages(cls, langs: Iterable[str]) -> CharTokenizer:
        """All letters of the built-in word lists of ``langs`` (and a-z, ')."""
        from hwnas.data.corpus import words

        chars = set("abcdefghijklmnopqrstuvwxyz'")
        for lang in langs:
            chars |= {c for w in words(lang) for c in normalise(w) if c != " "}
        return cls(sorted(chars))

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        """Token ids of the normalised text; characters outside the set are dropped."""
        return [self._id[c] for c in normalise(text) if c in self._id]

    def unknown(self, text: str) -> set[str]:
        return {c for c in normalise(text) if c not in self._id}

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.symbols[i] for i in ids if 0 < i < len(self.symbols)).strip()

    def to_json(self) -> str:
        return json.dumps({"kind": "chars", "symbols": self.symbols}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CharTokenizer:
        d = json.loads(text)
        if d.get("kind") != "chars" or d["symbols"][:2] != ["<blank>", " "]:
            raise ValueError("not a character tokenizer file")
        return cls(d["symbols"][2:])

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")


def error_rates(refs: Iterable[str], hyps: Iterable[str]) -> dict[str, float]:
    """Corpus WER and CER (jiwer), references and hypotheses normalised alike."""
    import jiwer

    r = [normalise(x) for x in refs]
    h = [normalise(x) for x in hyps]
    keep = [i for i, x in enumerate(r) if x]
    r, h = [r[i] for i in keep], [h[i] for i in keep]
    if not r:
        return {"wer": float("nan"), "cer": float("nan"), "n": 0}
    return {"wer": float(jiwer.wer(r, h)), "cer": float(jiwer.cer(r, h)), "n": len(r)}
