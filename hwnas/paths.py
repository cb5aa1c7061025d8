"""Where shipped data and the user's workspace live.

Shipped data (device files, profiles, predictors) is read from the source tree
in a clone or editable install, and from ``hwnas/shipped/`` in a wheel. A
user's own measurements and predictors go to the workspace: ``--workspace``,
else ``$HWNAS_WORKSPACE``, else the current folder -- never site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent
DATA_KINDS = ("devices", "profiles", "predictors")


def read_text(path: Path | str) -> str:
    """A user's file as text, refusing anything that is not a regular file
    before opening it: a FIFO, socket or device would block or never end.
    Raises FileNotFoundError where it is missing, OSError otherwise."""
    import stat

    p = Path(path)
    mode = p.stat().st_mode   # FileNotFoundError where missing
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a folder" if stat.S_ISDIR(mode) else "a device file")
        raise OSError(f"{p} is {kind}, not a regular file")
    return p.read_text()


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, fsync it, rename it over
    ``path``: readers see the old or the new file, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes, read in 4 MB blocks (never the whole file in
    memory; 0.08-0.09 s per 100 MB on this machine)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def stamped(folder: Path, name: str = "") -> Path:
    """A path in ``folder`` named by the UTC time (then ``-name``) that does not
    exist yet: where recovery puts what it sets aside."""
    import datetime as _dt

    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    tail = f"-{name}" if name else ""
    dest, n = Path(folder) / f"{stamp}{tail}", 1
    while dest.exists():
        n += 1
        dest = Path(folder) / f"{stamp}-{n}{tail}"
    return dest


def set_aside(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` under a UTC time stamp, never over another
    file: how recovery keeps what it cannot use (nothing measured or trained is
    deleted). Returns where it went."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    dest = stamped(folder, Path(path).name)
    Path(path).replace(dest)
    return dest


def shipped_dir(kind: str) -> Path:
    if kind not in DATA_KINDS:
        raise ValueError(f"unknown data kind {kind!r}")
    wheel = _PKG / "shipped" / kind
    if wheel.is_dir():
        return wheel
    return _PKG.parent / kind  # clone / editable install


def find_data(kind: str, name: str, workspace: Path | None, marker: str) -> Path | None:
    """``<workspace>/<kind>/<name>`` if it holds ``marker``, else the shipped
    folder of that name if it does, else None: a user's own profile or
    predictor takes precedence over the shipped one."""
    roots = ([Path(workspace) / kind / name] if workspace else []) + [shipped_dir(kind) / name]
    return next((r for r in roots if (r / marker).is_file()), None)


def workspace(explicit: str | os.PathLike[str] | None = None) -> Path:
    root = Path(explicit or os.environ.get("HWNAS_WORKSPACE") or Path.cwd())
    where = root.resolve()
    if where == _PKG or _PKG in where.parents:
        raise ValueError(f"workspace {root} is inside the hwnas package; choose another folder")
    return root


def die_with_parent() -> None:
    """For a worker process: the kernel sends it SIGTERM when its parent dies
    (Linux), so a command that fails or is killed leaves no worker behind."""
    import ctypes
    import signal
    import sys

    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # not a handler inherited from the parent
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


class held:
    """``with held(lock_file, what):`` -- shared workspace state built once: the
    first command takes an exclusive lock on ``lock_file`` (flock: released by
    the kernel if the command dies), a second waits for it, says so, and then
    finds the work done. Re-entrant within a thread (a nested hold of the same
    file would otherwise wait on itself)."""

    _mine = __import__("threading").local()

    def __init__(self, lock_file: Path, what: str) -> None:
        self.path, self.what, self._f = Path(lock_file), what, None

    def __enter__(self) -> held:
        import fcntl
        import logging

        mine = self._mine.__dict__.setdefault("paths", set())
        key = os.path.abspath(self.path)
        if key in mine:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a")   # noqa: SIM115 - held until __exit__
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logging.getLogger("hwnas").warning(
                f"waiting for another command that is building {self.what} ({self.path})")
            fcntl.flock(self._f, fcntl.LOCK_EX)
        mine.add(key)
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self._f is not None:
            self._mine.paths.discard(os.path.abspath(self.path))
            fcntl.flock(self._f, fcntl.LOCK_UN)
            self._f.close()
            self._f = None
