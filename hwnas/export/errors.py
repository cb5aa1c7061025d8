from __future__ import annotations


class ExportError(RuntimeError):
    """An architecture could not be exported to a format; the message says why."""
