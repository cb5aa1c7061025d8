"""Where a study lives: its Optuna storage, and the workspace folders of its
default SQLite file and of its trained runs, exports and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.errors import first_line


def study_paths(workspace: Path, study: str) -> tuple[Path, Path]:
    """(the default SQLite file, the folder of trained runs, exports and reports)
    of a study in a workspace."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", study or "") or ".." in study:
        raise ValueError(f"study name {study!r} must be a name (letters, digits, '-', '_', "
                         "'.'), not a path; put a study elsewhere with --storage URL")
    root = Path(workspace) / "runs" / "search"
    return root / f"{study}.db", root / study


def trial_dir(study_dir: Path, number: int, arch_id: str) -> Path:
    return Path(study_dir) / "trials" / f"{number:05d}-{arch_id}"


def run_of(row: dict[str, Any], study_dir: Path) -> Path:
    """The trained run an answer row stands for: its final-phase run where it
    has one, else the run of the trial that trained it."""
    if row.get("run_dir"):
        return Path(row["run_dir"])
    return trial_dir(study_dir, row.get("run_trial", row["trial"]), row["arch_id"])



#: a driver records a heartbeat for the trials it holds this often; a trial whose
#: heartbeat is older than GRACE_S belongs to a dead driver (Optuna's heartbeat)
HEARTBEAT_S = 10
GRACE_S = 60


def ask_again(study: Any, trial: Any) -> None:
    """A stale trial (its driver died) is failed by Optuna; its architecture
    is asked again (the next generation takes it first)."""
    study.enqueue_trial(trial.params, skip_if_exists=False)


def open_storage(url: str | None) -> Any:
    """Optuna's storage for ``url`` (None: in memory), or one ValueError line
    naming the URL and what is wrong with it (a bad scheme, a database that
    cannot be reached, a file that is not a study database)."""
    import optuna

    if url is None:
        return None
    if url.startswith(JOURNAL):
        return _journal(url)
    _refuse_foreign_sqlite(url)
    try:
        import warnings

        with warnings.catch_warnings():   # heartbeats are "experimental" to Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beats = {"heartbeat_interval": HEARTBEAT_S, "grace_period": GRACE_S}
            try:
                return optuna.storages.RDBStorage(url, **beats,
                                                  heartbeat_stale_trial_callback=ask_again)
            except TypeError:   # Optuna < 4.9 named it failed_trial_callback
                return optuna.storages.RDBStorage(url, **beats, failed_trial_callback=ask_again)
    except ImportError as e:
        raise ValueError(f"storage {url}: a driver is missing ({e})") from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy's errors, whatever the backend
        kind = type(e).__name__
        if kind == "NoSuchModuleError" or kind == "ArgumentError":
            why = "not a database URL (e.g. sqlite:///path/study.db, " \
                  "postgresql+psycopg://user@host/db)"
        elif kind in ("OperationalError", "DatabaseError"):
            why = ("cannot open it: " + first_line(getattr(e, "orig", e)))
        else:
            why = first_line(e)
        raise ValueError(f"storage {url}: {why}") from None


JOURNAL = "journal:"


def _journal(url: str) -> Any:
    """Optuna's journal file (``journal:PATH``). An ask costs the same whatever
    the number of trials in flight, where SQLite re-reads them all (171 ms per
    ask with 100 in flight, 1.5 s with 700: bench/study_ask.py). It keeps no
    heartbeats, so it serves the drivers of one host (a dead driver is told by
    its process id), not a lab's shared study."""
    import json

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(url[len(JOURNAL):])
    if not url[len(JOURNAL):] or path.is_dir():
        raise ValueError(f"storage {url}: give a file, e.g. journal:runs/search/study.log")
    if not path.parent.is_dir():   # the rule for SQLite too: nothing is created above it
        raise ValueError(f"storage {url}: the folder {path.parent} does not exist")
    if path.exists() and not path.is_file():
        raise ValueError(f"storage {url}: {path} is not a regular file")
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as f:
            for n, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    break      # a record cut by a crash: Optuna skips it
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = None
                if not isinstance(rec, dict) or not isinstance(rec.get("op_code"), int):
                    what = "is not an Optuna journal" if n == 1 else \
                        f"has a foreign line {n} (not an Optuna journal record)"
                    raise ValueError(f"storage {url}: {path} {what}; give a new file or a "
                                     f"journal")
    return JournalStorage(JournalFileBackend(str(path)))


def _refuse_foreign_sqlite(url: str) -> None:
    """Optuna adds its tables to any SQLite file it is given: refuse a database
    that already holds other tables instead of writing into someone's data."""
    import sqlite3

    if not url.startswith("sqlite:///"):
        return
    path = Path(url[len("sqlite:///"):].split("?")[0])
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master "
                                                "WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise ValueError(f"storage {url}: cannot open it: {e}") from None
    if tables and not {"studies", "version_info"} <= tables:
        shown = ", ".join(sorted(tables)[:5]) + (" ..." if len(tables) > 5 else "")
        raise ValueError(f"storage {url}: {path} is a database of something else (tables: "
                         f"{shown}); give a new file or a study database")


def failure(e: BaseException) -> str | None:
    """One line for an error the study's storage raised while in use (a
    database damaged under a running command, a server gone), else None."""
    import sys

    kinds = []
    if "optuna" in sys.modules:
        kinds.append(sys.modules["optuna"].exceptions.StorageInternalError)
    if "sqlalchemy.exc" in sys.modules:
        kinds.append(sys.modules["sqlalchemy.exc"].SQLAlchemyError)
    if not kinds or not isinstance(e, tuple(kinds)):
        return None
    cause = e.__cause__ or e.__context__ or e
    cause = getattr(cause, "orig", None) or cause   # the driver's own words
    return f"the study's storage failed: {first_line(cause)}"
