from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hwnas.testing.adb_device import LoopbackDevice
from tests.helpers import small

# the cluster scenarios run inside a loopback-only network namespace, started by
# tests/test_lab.py; collected directly only there
collect_ignore = [] if os.environ.get("HWNAS_LAB_TESTS") else ["cluster"]

# One thread: the 2-core CI machine gives erratic timings and stalls with more.
torch.set_num_threads(1)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session", autouse=True)
def _export_cache(tmp_path_factory) -> None:
    """One TFLite conversion per distinct graph for the whole run (the cluster
    scenarios' own run inherits it): the same tiny architectures are converted
    in many tests, ~18 s each. Tests of the converter itself unset it."""
    from hwnas.export.tflite import CACHE_ENV

    os.environ.setdefault(CACHE_ENV, str(tmp_path_factory.getbasetemp() / "export-cache"))


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


@pytest.fixture
def adb_server(phone, tmp_path):
    """Google's adb server on a free port (its own HOME: its own key), with the
    loopback ``phone`` attached by `adb connect`. Yields (adb, env, serial):
    ``env`` points adb clients (ours too) at this server."""
    import subprocess

    from hwnas.testing.lab import free_port
    from tests.helpers import google_adb

    adb = google_adb()
    if adb is None:
        pytest.skip("Google's adb client is not installed (apt-get install adb)")
    env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(free_port()),
           "HOME": str(tmp_path / "adb-home")}
    (tmp_path / "adb-home" / ".android").mkdir(parents=True)
    serial = f"127.0.0.1:{phone.port}"

    def adb_(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([adb, *args], env=env, capture_output=True, text=True,
                              timeout=60)

    adb_("start-server")
    try:
        assert f"connected to {serial}" in adb_("connect", serial).stdout
        yield adb_, env, serial
    finally:
        adb_("kill-server")


@pytest.fixture(scope="session")
def tflite_model(tmp_path_factory):
    """One small streaming Conformer converted to .tflite (shared: conversion is slow)."""
    from hwnas.export import export

    arch = small("conformer", "ctc", "mhsa", "logmel", streaming=True, num_layers=1)
    return export(arch, "tflite", tmp_path_factory.mktemp("export"))
