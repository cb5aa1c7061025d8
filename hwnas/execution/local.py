"""The default executor: each unit runs in this process when it is submitted.

Sequential on purpose: measurements must not share the machine with other
work, and training uses one thread (the benchmarks' rules). Its
:class:`WorkerContext` is the driver's, so the driver can lend it an open
adapter or a corpus whose features it already computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from ._base import Executor, Unit, WorkerContext


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, ctx: WorkerContext | None = None) -> None:
        self.ctx = ctx or WorkerContext()

    def submit(self, unit: Unit) -> Future:
        f: Future = Future()
        try:
            f.set_result(unit.run(self.ctx))
        except BaseException as e:  # noqa: BLE001 - handed to whoever asks the future
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise   # a Ctrl-C stops the driver now, not at the next result()
            f.set_exception(e)
        return f

    def map(self, units: Iterable[Unit]) -> Iterator[Any]:
        """One unit at a time, each result before the next unit starts (the
        driver stores a measurement before the next one is taken)."""
        for u in units:
            yield u.run(self.ctx)
