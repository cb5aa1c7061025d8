"""The ASR task: the speech architecture and its decisions, presets, the
PyTorch models, the analytic cost model, losses and decoding."""

from hwnas.asr.arch import ArchConfig, default_space
from hwnas.asr.presets import preset, preset_description, preset_names

__all__ = ["ArchConfig", "default_space", "preset", "preset_description", "preset_names"]
