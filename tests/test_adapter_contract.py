"""The adapter contract: one body of tests run over every registered adapter
that can be set up here, one fixture per backend (as optuna runs one storage
suite over every storage). A backend whose hardware is missing here (CUDA,
the Edge TPU behind the replaying compiler) still runs the tests that need no
device, and must say in one line why it cannot measure.

Adding an adapter means adding a backend to ``BACKENDS``; the tests stay."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hwnas.adapters import REGISTRY, Adapter, Measurement, adapter_class
from tests.helpers import EDGETPU_FIXTURES, FAST, android_options, fake_compiler, small


@dataclass
class Backend:
    adapter: Adapter
    artifact: Any      # what prepare() loads (None where the device is missing)


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


def _usable(b: Backend) -> None:
    why = b.adapter.check()
    if why is not None or b.artifact is None:
        pytest.skip(f"cannot measure here: {why}")


# --- what every adapter declares ------------------------------------------------------
def test_it_is_registered_under_its_name(backend):
    a = backend.adapter
    assert a.name in REGISTRY and adapter_class(a.name) is type(a)


def test_it_runs_what_it_declares(backend):
    a = backend.adapter
    assert a.FORMATS, "an adapter declares every format it can run"
    assert a.format in a.formats and set(a.formats) <= set(a.FORMATS)


def test_unknown_or_ill_typed_options_are_one_line(backend):
    cls = type(backend.adapter)
    for bad in ({"colour": "red"}, {k: object() for k in list(cls.OPTIONS)[:1]}):
        with pytest.raises(ValueError) as e:
            cls.validate_options(bad)
        assert "\n" not in str(e.value)
    assert cls.validate_options({}).keys() == cls.OPTIONS.keys()


def test_check_is_none_or_one_line(backend):
    why = backend.adapter.check()
    assert why is None or (isinstance(why, str) and why and "\n" not in why)
    assert backend.adapter.available() == (why is None)


# --- what every usable adapter does -----------------------------------------------------
def test_measures_by_the_plan_and_records_provenance(backend):
    _usable(backend)
    a, art = backend.adapter, backend.artifact
    handle = a.prepare(art)
    try:
        m = a.measure(handle, FAST, arch_id="x", graph=art.graph, model_bytes=art.size_bytes,
                      inputs=art.inputs)
    finally:
        a.release(handle)
    assert isinstance(m, Measurement)
    lat = m.latency
    # a tool that prints only aggregates gives no p50 or p90; nothing is estimated for it
    centre = lat.get("p50_ms", lat["mean_ms"])
    assert centre > 0 and lat.get("p90_ms", centre) >= centre
    assert lat["n"] >= FAST.min_runs
    assert lat["p50_ci_lo"] <= centre <= lat["p50_ci_hi"]
    assert m.device == a.device and m.adapter == a.name and m.format == a.format
    for key in ("device", "adapter", "format", "date", "runtime"):
        assert m.provenance.get(key), key
    assert m.attempts >= 1 and isinstance(m.flags, list)


def test_describes_its_runtime(backend):
    _usable(backend)
    d = backend.adapter.describe()
    assert isinstance(d, dict) and d.get("runtime")


def test_a_host_adapter_has_a_reference_workload(backend):
    """Host CPUs time theirs beside every call (per-call times); phones time
    the shipped reference model with their tool (a summary); both say how
    well its median is known."""
    _usable(backend)
    a = backend.adapter
    got = a.reference_summary(0.2)
    if a.runs_on_host and a.options.get("reference"):
        times = a.reference_times(0.2)
        assert times and all(t > 0 for t in times)
    if a.name == "android":
        assert got is not None
    if got is not None:
        assert 0 < got["ci_lo"] <= got["ms"] <= got["ci_hi"] and got["n"] >= 1
        assert a.calibrate_reference(0.2) > 0
    else:
        assert a.calibrate_reference(0.2) is None
