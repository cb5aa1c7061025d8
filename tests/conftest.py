from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hwnas.testing.adb_device import LoopbackDevice
from tests.helpers import small

# One thread: the 2-core CI machine gives erratic timings and stalls with more.
torch.set_num_threads(1)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# --- shared by the Android tests and the adapter contract suite ---------------------
@pytest.fixture
def phone(tmp_path):
    dev = LoopbackDevice(tmp_path / "phone").start()
    yield dev
    dev.stop()


@pytest.fixture
def tool(tmp_path) -> Path:
    p = tmp_path / "host" / "benchmark_model"
    p.parent.mkdir()
    p.write_text("#!/bin/sh\n# stands in for benchmark_model: the loopback device runs its own\n")
    return p


@pytest.fixture(scope="session")
def tflite_model(tmp_path_factory):
    """One small streaming Conformer converted to .tflite (shared: conversion is slow)."""
    from hwnas.export import export

    arch = small("conformer", "ctc", "mhsa", "logmel", streaming=True, num_layers=1)
    return export(arch, "tflite", tmp_path_factory.mktemp("export"))
