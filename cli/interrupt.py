"""Ctrl-C and SIGTERM: one handling for both, told apart by the exit status."""

from __future__ import annotations

import signal
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, Ray, `kill`): handled where Ctrl-C is -- training
    saves its snapshot, a profile keeps its rows -- then exit 143."""


def interrupted_status(e: KeyboardInterrupt) -> int:
    return 143 if isinstance(e, Terminated) else 130


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def on_sigterm_interrupt() -> Any:
    """Make SIGTERM raise ``Terminated`` in the main thread; returns the handler
    it replaced (None off the main thread)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _terminate)
