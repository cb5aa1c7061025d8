"""Helpers the corruption tests share: what a folder holds, and garbage."""

from __future__ import annotations

from pathlib import Path


def stored(folder: Path) -> dict[str, bytes]:
    """name -> bytes of every file under ``folder`` (set-aside folders included)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in Path(folder).rglob("*") if p.is_file()}


def garbage(path: Path) -> None:
    Path(path).write_bytes(b"\x00\xffnot parquet, json, npz or torch\x13" * 7)


def lost(before: dict[str, bytes], after: dict[str, bytes], rewritten: set[str] = frozenset()
         ) -> list[str]:
    """Files of ``before`` whose bytes are nowhere in ``after`` (moved is fine;
    ``rewritten`` names files the command was meant to write over)."""
    return [name for name, data in before.items() if name not in rewritten
            and not any(v.startswith(data) for v in after.values())]
