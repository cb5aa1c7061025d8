"""The final phase of a search: its finalists -- the feasible Pareto set and
the best baseline -- each trained to one final budget and compared there.

Rungs rank architectures by how fast they learn; what ships is how well one
ends. So the answer is decided between finalists given equal training: each
continues its last rung's snapshot (the learning-rate schedule does not
depend on the budget, so this is the run a fresh start to the final budget
would make) or, without one, starts afresh, in ``<study dir>/final/<arch
id>/`` (the trial's own run stays as the search left it). A killed final
phase resumes from snapshots written every CPU-minute.

By default the final phase gets a third of the search's training: half as
much again as the trials spent (``FinalBudget.share``), shared equally
between the finalists, and never less than the longest rung.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SHARE = 1 / 3
#: the final runs' folder in the study's folder, one sub-folder per architecture
FINAL_DIR = "final"


@dataclass(frozen=True)
class FinalBudget:
    """Either ``share``, the fraction of the whole training (search and final
    phase) the final phase gets, or ``each``, the budget every finalist trains
    to (in the rung unit). ``share`` 0 turns the final phase off."""

    share: float | None = DEFAULT_SHARE
    each: float | None = None

    @classmethod
    def parse(cls, text: str, unit: str, duration: Callable[[str], float]) -> FinalBudget:
        """``--final-budget``: a share of the whole training ("1/3", "0.25",
        "25%"; 0 for none), or what each finalist trains to: a time
        (``duration`` reads it) or, with a step budget, steps."""
        import math
        import re

        t = text.strip()
        m = re.fullmatch(r"(\d+)\s*/\s*(\d+)", t)
        if m:
            if int(m.group(2)) == 0:
                raise ValueError(f"--final-budget {text!r}: division by zero")
            return cls(share=int(m.group(1)) / int(m.group(2)))
        try:
            share = float(t[:-1]) / 100 if t.endswith("%") else float(t)
        except ValueError:
            share = None
        if share is not None and (share < 1 or not math.isfinite(share) or t.endswith("%")):
            return cls(share=share)
        if unit == "steps":
            if share is None or share != int(share):
                raise ValueError(f"--final-budget {text!r}: with --cer-steps give the steps "
                                 "each finalist trains to, or a share such as 1/3")
            return cls(share=None, each=share)
        try:
            return cls(share=None, each=duration(t))
        except ValueError:
            raise ValueError(f"--final-budget {text!r}: give a share (1/3, 25%), a time each "
                             "finalist trains to (10m) or 0") from None

    @property
    def off(self) -> bool:
        return self.each is None and not self.share

    def per_finalist(self, spent: float, done: Sequence[float], longest_rung: float) -> float:
        """The budget each finalist trains to: ``each``; or what makes the
        final phase's own training ``share`` of the whole, given the search
        ``spent`` and the finalists' training so far (``done``)."""
        if self.each is not None:
            return self.each
        extra = spent * self.share / (1 - self.share)
        # whole seconds (or steps): a budget users read and type again
        return float(round(max(longest_rung, max(done, default=0.0),
                               (extra + sum(done)) / len(done))))

    def describe(self, unit: str) -> str:
        if self.each is not None:
            return f"{self.each:g} {unit} per finalist"
        return f"{self.share:.0%} of the search's training"


def final_dir(study_dir: Path, arch_id: str) -> Path:
    return Path(study_dir) / FINAL_DIR / arch_id


def _spent_in(snapshot: Path, unit: str) -> float | None:
    """The training a snapshot holds (CPU s or steps); None if unreadable."""
    import torch

    try:
        d = torch.load(snapshot, map_location="cpu", weights_only=True)
        return float(d["step"] if unit == "steps" else d["cpu"])
    except Exception:  # noqa: BLE001 - unreadable: the finalist trains afresh instead
        return None


def _finished(folder: Path, budget: float, unit: str) -> dict[str, Any] | None:
    """The final run's result where it already reached ``budget``."""
    try:
        r = json.loads((folder / "result.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(r, dict) and r.get("final_budget") == budget and r.get("unit") == unit:
        return r
    return None


def prepare(rows: Sequence[dict[str, Any]], study_dir: Path, unit: str) -> list[float]:
    """Seed each finalist's final folder with its trial's last snapshot (copied)
    unless the folder holds a run already; returns each finalist's training
    so far."""
    from hwnas.search.storage import run_of

    done = []
    for r in rows:
        folder = final_dir(study_dir, r["arch_id"])
        snap = folder / "checkpoint.pt"
        if snap.is_file():
            held = _spent_in(snap, unit)
        else:
            src = run_of(r, study_dir) / "checkpoint.pt"
            held = _spent_in(src, unit) if src.is_file() else None
            if held is not None:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = snap.with_name("checkpoint.pt.tmp")
                shutil.copyfile(src, tmp)
                tmp.replace(snap)
        done.append(held or 0.0)
    return done


def train_finalists(rows: Sequence[dict[str, Any]], study_dir: Path, budget: float, unit: str,
                    unit_for: Callable[[dict[str, Any], Path, bool], Any], executor: Any,
                    measure: Callable[[float, dict[str, float] | None], float],
                    set_aside: Callable[[Path], Any],
                    on_done: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
                    ) -> list[dict[str, Any]]:
    """Train every row's architecture to ``budget`` (``unit_for(row, folder,
    resume)`` makes the unit of work) and return the rows as they stand
    there: ``cer`` the final dev CER (as ``measure(pooled, by language)`` takes
    it), ``rung_cer`` the search's, ``run_dir``
    the final run. A folder holding more training than ``budget`` is set
    aside (``set_aside``, the task's), not overwritten."""

    out: dict[int, dict[str, Any]] = {}
    todo = []
    for i, r in enumerate(rows):
        folder = final_dir(study_dir, r["arch_id"])
        res = _finished(folder, budget, unit)
        if res is not None:
            out[i] = res
            continue
        snap = folder / "checkpoint.pt"
        held = _spent_in(snap, unit) if snap.is_file() else None
        if held is not None and held > budget:
            set_aside(folder)
            held = None
        todo.append((i, unit_for(r, folder, held is not None)))
    for (i, _), _out in zip(todo, executor.map(u for _, u in todo)):
        out[i] = json.loads((final_dir(study_dir, rows[i]["arch_id"]) / "result.json")
                            .read_text())
        if on_done:
            on_done(rows[i], out[i])
    final = []
    for i, r in enumerate(rows):
        res = out[i]
        by_lang = {k: float(v["cer"]) for k, v in (res["dev"].get("by_lang") or {}).items()}
        final.append({**r, "rung_cer": r["cer"],
                      "cer": measure(float(res["dev"]["cer"]), by_lang or None),
                      **({"cer_by_lang": by_lang} if by_lang else {}),
                      "final_budget": budget, "final_steps": res.get("steps"),
                      "run_dir": str(final_dir(study_dir, r["arch_id"]))})
    return final


SPEED = (("latency", "latency_ms", "latency_ci"), ("delay", "delay_ms", "delay_ci"),
         ("rtf", "rtf", None))


def not_slower(a: dict[str, Any], b: dict[str, Any], objectives: Sequence[str]) -> bool:
    """``a`` is at equal or lower latency / delay / RTF than ``b`` on each speed
    objective: lower p50, or intervals that overlap (equal within the noise)."""
    for name, key, ci in SPEED:
        if name not in objectives or a.get(key) is None or b.get(key) is None:
            continue
        if a[key] <= b[key]:
            continue
        if ci and a.get(ci) and b.get(ci) and a[ci][0] <= b[ci][1]:
            continue
        return False
    return True


def decide(rows: Sequence[dict[str, Any]], objectives: Sequence[str],
           select: Callable[[Sequence[dict[str, Any]]], dict[str, Any] | None]
           ) -> tuple[dict[str, Any] | None, str | None]:
    """(the answer, one line on how it stands against the best baseline).
    The answer is the best found architecture that beats the best baseline:
    lower CER at equal or lower speed objectives; where none does, the
    baseline itself, said so."""
    from hwnas.search.baselines import best

    found = [r for r in rows if not r.get("baseline")]
    b = best(list(rows))
    if b is None:
        return select(found), None
    key = b.get("quality_key", "cer")
    name = {"cer": "dev CER", "mcd": "dev MCD"}.get(key, f"dev {key}")
    speed = [n for n, _, _ in SPEED if n in objectives] or ["latency"]
    beating = [r for r in found if r[key] < b[key] and not_slower(r, b, speed)]
    if beating:
        best = select(beating)
        return best, (f"the answer beats the best baseline, {b['baseline']}: {name} "
                      f"{best[key]:.3f} against {b[key]:.3f} "
                      f"({1 - best[key] / b[key]:.0%} lower) at equal or lower "
                      f"{'/'.join(speed)}")
    near = min(found, key=lambda r: r[key]) if found else None
    return b, (f"no searched architecture beats the best baseline, {b['baseline']} ({name} "
               f"{b[key]:.3f}), at equal or lower {'/'.join(speed)}"
               + (f"; the best found has {near[key]:.3f}" if near else "")
               + ": the answer is the baseline")
