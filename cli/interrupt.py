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


def _default_in_child() -> None:
    # a forked worker must die on SIGTERM (Pool.terminate, PR_SET_PDEATHSIG),
    # not run a Python handler it may never reach while blocked in C
    if signal.getsignal(signal.SIGTERM) is _terminate:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


_forks_reset = False


def on_sigterm_interrupt() -> Any:
    """Make SIGTERM raise ``Terminated`` in the main thread; returns the handler
    it replaced (None off the main thread). Processes forked meanwhile get the
    default action back."""
    import os
    import threading

    global _forks_reset
    if threading.current_thread() is not threading.main_thread():
        return None
    if not _forks_reset:
        os.register_at_fork(after_in_child=_default_in_child)
        _forks_reset = True
    return signal.signal(signal.SIGTERM, _terminate)
