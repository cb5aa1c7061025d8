"""The TTS task: a FastSpeech 2-like acoustic model's decisions and
architecture, its targets from eSpeak NG (phonemes, durations, mels), the
PyTorch model with its fixed-shape device graph, training and quality."""

from hwnas.tts.arch import TTSArch, default_space, preset

__all__ = ["TTSArch", "default_space", "preset"]
