"""Units in worker processes on this host (``forkserver``: no lock or thread
state inherited from the driver).

What it is for: isolation (a converter that crashes or leaks takes a worker
down, not the search) and proof that a unit carries everything it needs --
each crosses a process boundary pickled, and the worker opens its own
devices and corpora, as a worker on another host would. Each worker runs
torch on one thread; ``workers`` > 1 only pays where the host has the cores
(and never for measurements, which must have the machine to themselves).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from ._base import Executor, Unit, WorkerContext

_ctx: WorkerContext | None = None


def _start_worker(gpus: tuple[int, ...] = (), taken: Any = None) -> None:
    global _ctx
    if gpus:   # one GPU per worker, before torch sees any: it is that worker's cuda:0
        import os

        with taken.get_lock():
            index, taken.value = taken.value, taken.value + 1
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpus[index % len(gpus)])
    import torch

    from hwnas.paths import die_with_parent

    die_with_parent()   # a driver that dies leaves no worker behind
    torch.set_num_threads(1)
    _ctx = WorkerContext()


def _run(unit: Unit) -> Any:
    assert _ctx is not None
    return unit.run(_ctx)


class ProcessExecutor(Executor):
    name = "process"

    def __init__(self, workers: int = 1, gpus: tuple[int, ...] = ()) -> None:
        """``gpus``: one worker per GPU index given, each seeing only its own
        (CUDA_VISIBLE_DEVICES), so units train on ``cuda:0`` each on their own
        card; ``workers`` is then the number of GPUs."""
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        mp = multiprocessing.get_context("forkserver")
        self.gpus = tuple(gpus)
        self._pool = ProcessPoolExecutor(len(self.gpus) or workers, mp,
                                         initializer=_start_worker,
                                         initargs=(self.gpus, mp.Value("i", 0)))

    def submit(self, unit: Unit) -> Future:
        return self._pool.submit(_run, unit)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
