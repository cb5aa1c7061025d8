"""The decision graph of a search space (any task).

An architecture is a path through an ordered list of decisions. A decision may
apply only in some contexts (``heads`` only for attention encoders) and may
allow only some of its choices in a context (``heads`` must divide
``d_model``). Both predicates read earlier decisions only, and each decision
names the fields it reads, so counting can merge paths whose remaining
futures are identical (dynamic programming over the graph).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Context = Mapping[str, Any]


def _always(_: Context) -> bool:
    return True


def _any(_: Any, __: Context) -> bool:
    return True


@dataclass(frozen=True)
class Decision:
    """One node of the decision graph.

    ``applies(ctx)`` says whether the decision is taken at all in this context
    (a field that does not apply is ``None`` in the architecture);
    ``allowed(value, ctx)`` filters its choices; ``reads`` names the fields of
    ``ctx`` the two predicates look at; ``rule`` explains them in words.
    """

    name: str
    choices: tuple[Any, ...]
    help: str
    applies: Callable[[Context], bool] = _always
    allowed: Callable[[Any, Context], bool] = _any
    reads: tuple[str, ...] = ()
    rule: str = ""
    numeric: bool = field(default=False)

    def options(self, ctx: Context) -> tuple[Any, ...]:
        """The choices allowed in ``ctx`` (empty when the decision does not apply)."""
        if not self.applies(ctx):
            return ()
        return tuple(c for c in self.choices if self.allowed(c, ctx))
