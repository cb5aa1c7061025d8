"""What an exception says, as one line for a one-line message."""

from __future__ import annotations


def first_line(e: BaseException, limit: int = 160) -> str:
    """The exception's first non-empty line, cut to ``limit``; its type's name
    when it says nothing (``EOFError()``, an empty file)."""
    for line in str(e).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(e).__name__
