"""Installed packages extend hwnas through entry points: an adapter, a search
strategy, an executor and a task, each found by name where the built-in ones
are, from a distribution that is only on sys.path (as ``pip install`` leaves
one)."""

from __future__ import annotations

import pytest

from hwnas import plugins

PLUGIN = '''
from hwnas.adapters.cpu import CPUAdapter
from hwnas.execution import LocalExecutor
from hwnas.strategies.optuna import Random


class FakeAdapter(CPUAdapter):
    """This CPU under another name."""


class Lucky(Random):
    """Random sampling, from a plugin."""


def inline(**options):
    return LocalExecutor(**options)
'''

ENTRY_POINTS = """[hwnas.adapters]
fake = hwnas_fake:FakeAdapter
cpu = hwnas_fake:FakeAdapter

[hwnas.strategies]
lucky = hwnas_fake:Lucky

[hwnas.executors]
inline = hwnas_fake:inline

[hwnas.tasks]
toy = tests.test_tasks:ToyTask
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    from hwnas import tasks

    dist = tmp_path / "hwnas_fake-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hwnas-fake\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (tmp_path / "hwnas_fake.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))
    monkeypatch.setattr(tasks, "_LOADED", dict(tasks._LOADED))
    plugins.forget()
    yield tmp_path
    plugins.forget()


def test_entry_points_add_to_every_registry(installed):
    from hwnas import execution, strategies, tasks
    from hwnas.adapters import adapter_class
    from hwnas.adapters.cpu import CPUAdapter
    from hwnas.adapters.devicefile import load_device
    from hwnas.asr import default_space

    fake = adapter_class("fake")
    assert fake.__name__ == "FakeAdapter" and issubclass(fake, CPUAdapter)
    assert adapter_class("cpu") is CPUAdapter   # a plugin never replaces a built-in name
    (installed / "devices").mkdir()
    (installed / "devices" / "dsp.toml").write_text('adapter = "fake"\n')
    assert load_device("dsp", installed).adapter == "fake"

    assert "lucky" in strategies.names() and strategies.summary("lucky") == \
        "Random sampling, from a plugin."
    assert type(strategies.make("lucky", default_space(), seed=1)).__name__ == "Lucky"
    assert type(execution.make("inline")).__name__ == "LocalExecutor"
    assert "inline" in execution.names()
    assert "toy" in tasks.names() and tasks.get("toy").name == "toy"


def test_without_the_package_the_names_are_unknown_in_one_line():
    from hwnas import execution, strategies
    from hwnas.adapters import adapter_class

    plugins.forget()
    for make, name in ((adapter_class, "fake"), (lambda n: execution.make(n), "inline"),
                       (lambda n: strategies.make(n, None), "lucky")):
        with pytest.raises(ValueError, match=f"unknown \\w+ '{name}'"):
            make(name)


ADAPTER = '''
from hwnas.adapters.cpu import CPUAdapter
from hwnas.testing.adapter_contract import Backend, onnx_artifact


class PinnedCPU(CPUAdapter):
    """This CPU's ONNX Runtime, under its own adapter name."""
    name = "pinned"


def backend(tmp_path, request):
    return Backend(PinnedCPU("pinned", PinnedCPU.validate_options({})), onnx_artifact(tmp_path))
'''


@pytest.mark.slow
def test_an_outside_adapter_passes_the_shipped_contract_with_pytest_pyargs(tmp_path):
    """What docs/devices-and-lab.md tells an adapter's author to run."""
    import os
    import subprocess
    import sys

    dist = tmp_path / "pinned_cpu-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pinned-cpu\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[hwnas.adapters]\npinned = my_adapter:PinnedCPU\n")
    (tmp_path / "my_adapter.py").write_text(ADAPTER)
    env = {**os.environ, "HWNAS_CONTRACT_BACKEND": "my_adapter:backend",
           "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.getcwd()}", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--pyargs", "hwnas.testing.adapter_contract"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "7 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
