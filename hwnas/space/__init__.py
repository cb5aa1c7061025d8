"""The task-agnostic search space: a decision graph that counts, samples,
mutates, crosses over, suggests and encodes the architectures of any task."""

from hwnas.space.decisions import Decision
from hwnas.space.space import SearchSpace

__all__ = ["Decision", "SearchSpace"]
