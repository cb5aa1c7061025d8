"""Test helpers that ship with hwnas: the loopback ADB device and its
LiteRT-backed ``benchmark_model``."""
