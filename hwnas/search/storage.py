"""Where a study lives: its Optuna storage, and the workspace folders of its
default SQLite file and of its trained runs, exports and reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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



def open_storage(url: str | None) -> Any:
    """Optuna's storage for ``url`` (None: in memory), or one ValueError line
    naming the URL and what is wrong with it (a bad scheme, a database that
    cannot be reached, a file that is not a study database)."""
    import optuna

    if url is None:
        return None
    try:
        return optuna.storages.RDBStorage(url)
    except ImportError as e:
        raise ValueError(f"storage {url}: a driver is missing ({e})") from None
    except Exception as e:  # noqa: BLE001 - SQLAlchemy's errors, whatever the backend
        kind = type(e).__name__
        if kind == "NoSuchModuleError" or kind == "ArgumentError":
            why = "not a database URL (e.g. sqlite:///path/study.db, " \
                  "postgresql+psycopg://user@host/db)"
        elif kind in ("OperationalError", "DatabaseError"):
            why = ("cannot open it: " + str(getattr(e, "orig", e)).splitlines()[0][:160])
        else:
            why = str(e).splitlines()[0][:160] or kind
        raise ValueError(f"storage {url}: {why}") from None
