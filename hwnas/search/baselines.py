"""Hand-designed baselines in the loop.

A search's answer means something only beside what an engineer would have
tried first. So every new study starts with its task's presets
(``Task.presets``; the recogniser's are ``hwnas.asr.presets``)
that fit its space and constraints, each brought in by the smallest change
(16 blocks to the space's deepest 8, a full-context model made streaming, the
longest chunk that meets ``--max-delay``), the change stated. A preset whose
encoder family or decoder the space lacks is left out, said so: changed
there, it would be another model. They train and
are judged like any trial; the best of them is a finalist of the final phase
(``hwnas.search.final``), and the answer says whether the search beat it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hwnas.space import SearchSpace

#: how a full-context preset is made streaming: conformer_s_streaming's choices
#: (480 ms chunks, attention over 2 chunks of left context, no look-ahead)
STREAMING_FORM = {"streaming": True, "chunk_ms": 480, "left_chunks": 2, "lookahead": 0}

#: ``judge(arch) -> (predicted values, constraint values)``, <= 0 met (``study.judge``)
Judge = Callable[[Any], tuple[dict[str, float], dict[str, float]]]

_LIMITS = {"latency": ("compute", "ms", "--max-latency"), "delay": ("emission delay", "ms",
                                                                     "--max-delay"),
           "rtf": ("real-time factor", "", "--max-rtf"), "params": ("parameters", "",
                                                                      "--max-params"),
           "size": ("fp32 size", "MB", "--max-size")}


@dataclass(frozen=True)
class Baseline:
    name: str            # the preset's
    arch: Any            # as brought into the space
    change: str          # what was changed, "" when the preset is in the space as it is

    def describe(self) -> str:
        return f"{self.name} ({self.change})" if self.change else f"{self.name} (as it is)"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "change": self.change}


def _changes(before: Any, after: Any, space: SearchSpace) -> list[str]:
    """The decisions changed (fields the data fixes, a vocabulary, are not one)."""
    a, b = before.to_dict(), after.to_dict()
    return [f"{k} {a[k]} -> {b[k]}" for k in a if k not in space.fixed
            and a[k] is not None and b[k] is not None and a[k] != b[k]]


def _broken(values: dict[str, float], cons: dict[str, float], source: str) -> str:
    out = []
    for key, c in cons.items():
        if c > 0:
            what, unit, flag = _LIMITS[key]
            out.append(f"{source} {what} {values[key]:.4g}{(' ' + unit) if unit else ''} "
                       f"breaks {flag} by {c:.3g}")
    return "; ".join(out)


def for_search(space: SearchSpace, judge: Judge, presets: dict[str, Any],
               source: str = "predicted") -> tuple[list[Baseline], list[str]]:
    """(the baselines a search in ``space`` under ``judge``'s constraints starts
    with, one line per preset of ``presets`` left out and why). Where the
    space decides streaming, a preset is made streaming or full-context to
    fit; where it decides the encoder family and decoder, a preset whose own
    the space lacks is left out."""
    from dataclasses import replace

    out: list[Baseline] = []
    notes: list[str] = []
    seen: dict[str, str] = {}
    streams = "streaming" in space.domain
    modes = space.choices("streaming") if streams else ()
    # presets the space holds as they are first: a streaming preset keeps its own name
    # where a full-context one made streaming would be the same architecture
    for name in sorted(presets, key=lambda n: streams and presets[n].streaming not in modes):
        p = presets[name]
        made: list[str] = []
        form = p
        if streams and p.streaming not in modes:
            if p.streaming:   # the fields only streaming uses go in ``nearest``
                form = replace(p, streaming=False)
                made.append("made full-context")
            elif p.encoder == "blstm":
                notes.append(f"{name}: left out: a bidirectional encoder cannot stream")
                continue
            else:
                form = replace(p, **STREAMING_FORM)
                made.append("made streaming: 480 ms chunks, 2 chunks of left context, "
                            "no look-ahead")
        # a baseline is its family and its decoder: another one would be another model
        missing = [f"{k} {getattr(p, k)}" for k in ("encoder", "decoder")
                   if k in space.domain and getattr(p, k) not in space.choices(k)]
        if missing:
            notes.append(f"{name}: left out: this space has no {' and no '.join(missing)}")
            continue
        values = form.to_dict()
        # the preset's own chunk first, then each shorter one: the smallest change that
        # meets the delay and the other limits as predicted
        chunks = ([c for c in sorted(space.choices("chunk_ms"), reverse=True)
                   if c <= form.chunk_ms] or [min(space.choices("chunk_ms"))]
                  ) if streams and form.streaming else [None]
        why = ""
        for chunk in chunks:
            arch = space.nearest({**values, "chunk_ms": chunk} if chunk else values)
            v, cons = judge(arch)
            why = _broken(v, cons, source)
            if not why:
                break
        else:
            notes.append(f"{name}: left out: {why}")
            continue
        if arch.id in seen:
            notes.append(f"{name}: the same architecture as {seen[arch.id]} in this space")
            continue
        seen[arch.id] = name
        out.append(Baseline(name, arch, "; ".join(made + _changes(form, arch, space))))
    return out, notes


def best(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The baseline row of the best quality (ties: lower latency)."""
    rows = [r for r in rows if r.get("baseline")]
    return min(rows, key=lambda r: (r[r.get("quality_key", "cer")], r["latency_ms"])
               ) if rows else None
