"""PyTorch builders for every architecture of the search space."""

from hwnas.asr.models.graphs import ChunkGraph, UtteranceGraph, device_graph
from hwnas.asr.models.model import SpeechModel, build, speech_model

__all__ = ["ChunkGraph", "SpeechModel", "UtteranceGraph", "build", "device_graph", "speech_model"]
