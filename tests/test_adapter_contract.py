"""The adapter contract (``hwnas.testing.adapter_contract``, shipped for
other packages' adapters) run over every built-in adapter that can be set up
here, one fixture per backend (as optuna runs one storage suite over every
storage). A backend whose hardware is missing here (CUDA, the Edge TPU behind
the replaying compiler) still runs the tests that need no device, and must
say in one line why it cannot measure.

Adding an adapter means adding a backend to ``BACKENDS``; the tests stay."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hwnas.testing.adapter_contract import (  # noqa: F401 - the tests pytest collects here
    Backend,
    test_a_host_adapter_has_a_reference_workload,
    test_check_is_none_or_one_line,
    test_describes_its_runtime,
    test_it_is_registered_under_its_name,
    test_it_runs_what_it_declares,
    test_measures_by_the_plan_and_records_provenance,
    test_unknown_or_ill_typed_options_are_one_line,
)
from tests.helpers import EDGETPU_FIXTURES, android_options, fake_compiler, small


def _onnx(tmp_path: Path) -> Any:
    from hwnas.export import export

    return export(small("conformer", "ctc", "mhsa", "logmel", streaming=True, num_layers=1),
                  "onnx", tmp_path / "onnx", check=False)


def _cpu(runtime: str, reference: str = ""):
    from hwnas.adapters.cpu import CPUAdapter

    return CPUAdapter(f"cpu-{runtime}", CPUAdapter.validate_options(
        {"runtime": runtime, "reference": reference}))


def cpu_onnxruntime(tmp_path, request):
    # the host's own CPU with its reference workload, as the shipped device file has it
    return Backend(_cpu("onnxruntime", "conformer_xs"), _onnx(tmp_path))


def cpu_torch(tmp_path, request):
    from hwnas.profiling.measure import export_for

    arch = small("lstm", "rnnt", None, "logmel", streaming=True, num_layers=1)
    return Backend(_cpu("torch"), export_for(arch, "torch", tmp_path))


def cpu_litert(tmp_path, request):
    return Backend(_cpu("litert"), request.getfixturevalue("tflite_model"))


def android_loopback(tmp_path, request):
    from hwnas.adapters.android import AndroidAdapter

    phone, tool = request.getfixturevalue("phone"), request.getfixturevalue("tool")
    return Backend(AndroidAdapter("loop", android_options(phone, tmp_path, tool)),
                   request.getfixturevalue("tflite_model"))


def cuda_here(tmp_path, request):
    from hwnas.adapters.cuda import CUDAAdapter

    return Backend(CUDAAdapter("gpu", CUDAAdapter.validate_options({})), _onnx(tmp_path))


def edgetpu_replayed_compiler(tmp_path, request):
    from hwnas.adapters.edgetpu import EdgeTPUAdapter

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_compiler(bin_dir, EDGETPU_FIXTURES / "partial.log")
    request.getfixturevalue("monkeypatch").setenv(
        "PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return Backend(EdgeTPUAdapter("tpu", EdgeTPUAdapter.validate_options({})), None)


BACKENDS = [cpu_onnxruntime, cpu_torch, cpu_litert, android_loopback, cuda_here,
            edgetpu_replayed_compiler]


@pytest.fixture(params=BACKENDS, ids=[b.__name__ for b in BACKENDS])
def backend(request, tmp_path):
    b = request.param(tmp_path, request)
    yield b
    b.adapter.close()
