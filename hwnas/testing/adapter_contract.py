"""The adapter contract: what every device adapter must do, as pytest tests
run against one ``backend`` fixture -- an adapter and an artifact it can
load (as optuna ships one storage suite for every storage). hwnas's own
suite runs it over every built-in adapter (tests/test_adapter_contract.py).

The author of a new adapter runs it against theirs, from their own project::

    HWNAS_CONTRACT_BACKEND=my_adapter:backend pytest --pyargs hwnas.testing.adapter_contract

where ``my_adapter.backend(tmp_path, request)`` returns a :class:`Backend`
(``onnx_artifact(tmp_path)`` makes a small streaming model to load). A
backend whose hardware is missing still runs the tests that need no device,
and must say in one line why it cannot measure (``check()``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hwnas.adapters import Adapter, Measurement, Plan, adapter_class, registry

#: mechanics, not noise: a 5-run measurement on a shared CI core may be noisy
PLAN = Plan(warmup_runs=2, min_runs=5, min_seconds=0.05, retries=0, max_ci=float("inf"),
            max_drift=1.0)


@dataclass
class Backend:
    adapter: Adapter
    artifact: Any      # what prepare() loads (None where the device is missing)


def onnx_artifact(tmp_path: Path) -> Any:
    """A one-layer streaming Conformer chunk graph exported to ONNX."""
    from hwnas.export import export
    from hwnas.tasks import preset

    arch = preset("conformer_xs").replace(num_layers=1)
    return export(arch, "onnx", Path(tmp_path) / "onnx", check=False)


@pytest.fixture
def backend(tmp_path, request):
    """The backend $HWNAS_CONTRACT_BACKEND ("module:function") names."""
    target = os.environ.get("HWNAS_CONTRACT_BACKEND")
    if not target:
        pytest.skip("set HWNAS_CONTRACT_BACKEND=module:function (a function(tmp_path, "
                    "request) returning hwnas.testing.adapter_contract.Backend)")
    from hwnas.plugins import load

    b = load(target)(tmp_path, request)
    yield b
    b.adapter.close()


def _usable(b: Backend) -> None:
    why = b.adapter.check()
    if why is not None or b.artifact is None:
        pytest.skip(f"cannot measure here: {why}")


# --- what every adapter declares ------------------------------------------------------
def test_it_is_registered_under_its_name(backend):
    a = backend.adapter
    assert a.name in registry() and adapter_class(a.name) is type(a)


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
        m = a.measure(handle, PLAN, arch_id="x", graph=art.graph, model_bytes=art.size_bytes,
                      inputs=art.inputs)
    finally:
        a.release(handle)
    assert isinstance(m, Measurement)
    lat = m.latency
    # a tool that prints only aggregates gives no p50 or p90; nothing is estimated for it
    centre = lat.get("p50_ms", lat["mean_ms"])
    assert centre > 0 and lat.get("p90_ms", centre) >= centre
    assert lat["n"] >= PLAN.min_runs
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
