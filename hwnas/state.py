"""Checked reading of the JSON state hwnas writes and later reads back.

Each kind of file declares its shape once (``Shape``): the fields it must
have, the fields it may have, and their types. ``read_json`` returns the
object only when it fits, else raises ``StateError``: one line naming the
file and what is wrong, for the command to print -- never a traceback from
deep inside whatever used the value. Writers declare nothing extra: a file
that its own reader refuses is a bug the tests catch.

Recovery stays with the callers (set aside, say so, never delete).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NUMBER = (int, float)


class StateError(ValueError):
    """A stored file that does not have its declared shape (one line)."""


@dataclass(frozen=True)
class Shape:
    """``required`` and ``optional`` map field -> type or tuple of types
    (``None`` in the tuple: the field may be null; ``NUMBER`` for int or
    float, finite)."""

    name: str                                   # what the file is, for the message
    required: dict[str, Any] = field(default_factory=dict)
    optional: dict[str, Any] = field(default_factory=dict)

    def check(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise StateError(f"{where}: not a {self.name} (a JSON object was expected, found "
                             f"{_kind(value)})")
        missing = [k for k in self.required if k not in value]
        if missing:
            raise StateError(f"{where}: not a {self.name} (missing {', '.join(missing)})")
        for k, want in {**self.required, **self.optional}.items():
            if k in value and not _fits(value[k], want):
                raise StateError(f"{where}: {self.name} field {k!r} should be "
                                 f"{_names(want)}, found {_kind(value[k])}")
        return value


def _fits(v: Any, want: Any) -> bool:
    kinds = want if isinstance(want, tuple) else (want,)
    if v is None:
        return None in kinds
    if isinstance(v, bool):   # JSON true/false are not numbers here
        return bool in kinds
    if isinstance(v, (int, float)) and (int in kinds or float in kinds):
        return (float in kinds or isinstance(v, int)) and (
            isinstance(v, int) or math.isfinite(v))
    return any(k is not None and isinstance(v, k) for k in kinds)


def _names(want: Any) -> str:
    kinds = want if isinstance(want, tuple) else (want,)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list", dict: "an object", None: "null"}
    return " or ".join(dict.fromkeys(names.get(k, getattr(k, "__name__", str(k)))
                                     for k in kinds))


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def read_json(path: Path, shape: Shape) -> dict[str, Any]:
    """``path`` parsed and checked against ``shape``, or one StateError line."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise StateError(f"{path}: not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StateError(f"{path}: unreadable ({type(e).__name__})") from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        why = e.msg if isinstance(e, json.JSONDecodeError) else type(e).__name__
        raise StateError(f"{path}: invalid JSON ({why})") from None
    return shape.check(value, str(path))


def write_json(path: Path, value: dict[str, Any], shape: Shape) -> None:
    """Write ``value`` atomically after checking it against ``shape``: a
    writer that breaks its own declaration fails here, with the same line a
    reader would give, instead of leaving a file its reader refuses."""
    from hwnas.paths import write_atomic

    shape.check(value, str(path))
    write_atomic(Path(path), json.dumps(value, indent=2, sort_keys=True) + "\n")
