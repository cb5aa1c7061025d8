"""hwnas: hardware-aware neural architecture search for speech recognition."""

__version__ = "0.1.0"
