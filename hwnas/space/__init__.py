"""The search space: one definition of a speech architecture."""

from hwnas.space.arch import ArchConfig
from hwnas.space.decisions import Decision
from hwnas.space.presets import preset, preset_description, preset_names
from hwnas.space.space import SearchSpace, default_space

__all__ = ["ArchConfig", "Decision", "SearchSpace", "default_space", "preset",
           "preset_description", "preset_names"]
