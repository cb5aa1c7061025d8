"""What every task's architecture dataclass shares: its JSON form, a stable
id, and reading one back from what users and files say (checked against
the task's space)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, fields
from typing import Any, TypeVar

A = TypeVar("A", bound="ArchRecord")


class ArchRecord:
    """Mixin for a frozen architecture dataclass. ``ID_PREFIX`` starts its
    id; ``space()`` is the task's built-in space that ``from_dict`` checks
    against. A field with a default that ``from_dict`` is given a different
    value of, and that names the task (``task``), is refused: a file of
    another task is not silently read as this one."""

    ID_PREFIX = ""

    @classmethod
    def space(cls) -> Any:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    @property
    def id(self) -> str:
        """Stable id: hash of the canonical JSON (sorted keys, no whitespace)."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return self.ID_PREFIX + hashlib.sha256(canon.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls: type[A], data: dict[str, Any]) -> A:
        if not isinstance(data, dict):
            raise ValueError(f"an architecture must be a JSON object, got {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        data = {k: v for k, v in data.items() if k != "id"}  # derived; printed for convenience
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(map(repr, unknown))}; "
                             f"known fields: {', '.join(sorted(known))}")
        if "task" in known and data.get("task", known["task"].default) != known["task"].default:
            raise ValueError(f"task {data['task']!r} is not a {known['task'].default} "
                             "architecture")
        missing = [n for n, f in known.items() if f.default is MISSING and n not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(map(repr, missing))}")
        arch = cls(**data)
        cls.space().check(arch)
        return arch

    @classmethod
    def from_json(cls: type[A], text: str) -> A:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        return cls.from_dict(data)

    def replace(self: A, **changes: Any) -> A:
        return type(self).from_dict({**self.to_dict(), **changes})
