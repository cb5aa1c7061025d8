"""The budgeted loop every hwnas training runs (a stand-alone ASR model, a
supernet, a TTS model): steps until a budget of CPU time on this process
(evaluations not charged) or of steps is spent, with a snapshot every
``snapshot_every_s`` CPU seconds, on Ctrl-C (then re-raised) and at the end.
A run resumed from a snapshot continues its clock and step count, so it takes
exactly the steps of a run that was never stopped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def next_batch(st: dict[str, Any], new_epoch: Callable[[], list]) -> Any:
    """The next batch of the epoch in progress (``st["batches"]``, ``st["pos"]``,
    kept in snapshots), after ``new_epoch()`` where the last one ended."""
    if st["batches"] is None or st["pos"] >= len(st["batches"]):
        st["batches"], st["pos"] = new_epoch(), 0
    st["pos"] += 1
    return st["batches"][st["pos"] - 1]


class Clock:
    """CPU seconds charged to a run: this process's CPU time since the run
    began, plus what it had spent before a resume, less evaluations."""

    def __init__(self, spent: float = 0.0) -> None:
        self._t0 = time.process_time() - spent
        self._free = 0.0

    def __call__(self) -> float:
        return time.process_time() - self._t0 - self._free

    @contextmanager
    def uncharged(self) -> Iterator[None]:
        """Work inside (a dev evaluation) does not count against the budget."""
        e0 = time.process_time()
        try:
            yield
        finally:
            self._free += time.process_time() - e0


def run_budget(cfg: Any, clock: Clock, st: dict[str, Any], one_step: Callable[[], None],
               after: Callable[[int], None], save: Callable[[], None] | None) -> None:
    """Call ``one_step()`` and count it in ``st["step"]`` until ``cfg``'s
    budget (``cfg.steps``, else ``cfg.cpu_seconds``, stretched to
    ``cfg.min_steps`` updates up to ``cfg.max_cpu_seconds`` where set) is spent; ``after(step)``
    follows each step (progress, evaluation). ``save()`` writes a snapshot
    every ``cfg.snapshot_every_s`` CPU seconds and on Ctrl-C; the caller
    writes the last one once it has scored the run."""
    floor = getattr(cfg, "min_steps", 0)
    ceiling = getattr(cfg, "max_cpu_seconds", None) or float("inf")

    def done() -> bool:
        if cfg.steps is not None:
            return st["step"] >= cfg.steps
        t = clock()
        # a CPU-time budget with a floor of updates: a slow model trains on past
        # the budget until it has taken them, but never past the ceiling
        return t >= cfg.cpu_seconds and (st["step"] >= floor or t >= ceiling)

    last = clock()
    try:
        while not done():
            one_step()
            st["step"] += 1
            after(st["step"])
            if save is not None and clock() - last >= cfg.snapshot_every_s:
                save()
                last = clock()
    except KeyboardInterrupt:
        if save is not None:
            save()
        raise
