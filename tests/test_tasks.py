"""The task seam: a third task is one module's worth of code plus one registry
line, and the shared machinery -- reading architectures, export, the
profiler, the profile store -- serves it unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from hwnas import tasks
from hwnas.nn.spec import TensorSpec
from hwnas.space import SearchSpace
from hwnas.space.decisions import Decision
from hwnas.space.record import ArchRecord
from tests.helpers import FAST


# --- a toy task: a stack of linear layers over 100 frames of 40 features -------------------
@dataclass(frozen=True)
class Toy(ArchRecord):
    ID_PREFIX = "toy-"
    width: int
    depth: int
    task: str = "toy"

    @property
    def graph(self) -> str:
        return "utterance"

    @classmethod
    def space(cls) -> SearchSpace:
        return SPACE


SPACE = SearchSpace([Decision("width", (16, 32, 64), "layer width", numeric=True),
                     Decision("depth", (1, 2, 3), "layers", numeric=True)],
                    Toy, {"width": (1, 4096), "depth": (1, 16)})


class ToyModel(torch.nn.Module):
    def __init__(self, arch: Toy) -> None:
        super().__init__()
        self.arch = arch
        dims = [40] + [arch.width] * arch.depth
        self.layers = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(a, b),
                                                                torch.nn.ReLU())
                                            for a, b in zip(dims, dims[1:])])
        self.inputs = [TensorSpec("feats", (1, 100, 40))]
        self.outputs = ["hidden"]
        self.feedback: dict[int, int] = {}

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.layers(feats),)

    def example_inputs(self, seed: int = 0) -> list[torch.Tensor]:
        return [torch.randn(1, 100, 40, generator=torch.Generator().manual_seed(seed))]

    def sample_inputs(self, n: int, seed: int) -> list[list[np.ndarray]]:
        return [[x.numpy() for x in self.example_inputs(seed * 1000 + i)] for i in range(n)]


class ToyTask(tasks.Task):
    name = "toy"

    def arch_from_dict(self, data: dict[str, Any]) -> Toy:
        return Toy.from_dict(data)

    def default_space(self) -> SearchSpace:
        return SPACE

    def build_model(self, arch: Toy) -> ToyModel:
        return ToyModel(arch)

    def device_graph(self, model: ToyModel) -> ToyModel:
        return model.eval()

    def stats(self, arch: Toy) -> dict[str, Any]:
        params = sum(p.numel() for p in ToyModel(arch).parameters())
        return {"params": params, "flops": 2 * 100 * params}

    def audio_ms(self, arch: Toy) -> float:
        return 1000.0

    def row_fields(self, arch: Toy) -> dict[str, Any]:
        return {"encoder": f"toy:{arch.depth}x{arch.width}", "decoder": "toy",
                "streaming": False}

    # what a search of it needs: its objectives, what is known before training,
    # one rung of "training" as a unit of work, and a check of a trained run
    quality = ("error",)
    objectives = {"error": "toy error", "latency": "compute ms (measured)",
                  "params": "parameters"}
    latency = "measured"

    def judge(self, arch: Toy, latency_ms: float) -> dict[str, float]:
        params = float(self.stats(arch)["params"])
        return {"latency": latency_ms, "algorithmic": 0.0, "delay": latency_ms,
                "rtf": latency_ms / 1000.0, "params": params, "size": params * 4 / 1e6}

    def rung_unit(self, data: Any, arch: dict[str, Any], **kw: Any) -> ToyRung:
        return ToyRung(arch, kw["budget"], kw["run_dir"])

    def check_run(self, run_dir: Any) -> None:
        import json
        from pathlib import Path

        try:
            json.loads((Path(run_dir) / "result.json").read_text())["arch"]
        except (OSError, ValueError, KeyError) as e:
            raise ValueError(f"{run_dir}: not a toy run ({e})") from None


@dataclass(frozen=True)
class ToyRung:
    """A toy's "training": an error that falls with width, depth and budget."""

    arch: dict[str, Any]
    budget: float
    run_dir: str

    def run(self, ctx: Any) -> dict[str, Any]:
        import json
        from pathlib import Path

        error = 1.0 / (self.arch["width"] * self.arch["depth"] * self.budget)
        out = Path(self.run_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps({"arch": self.arch, "error": error}))
        (out / "state.json").write_text("{}")   # what a later rung would continue
        return {"quality": {"error": error}, "snapshot": str(out / "state.json"),
                "steps": int(self.budget), "cpu_seconds": 0.0}

    def needs(self) -> dict[str, Any]:
        return {"num_cpus": 1}


class ToyData:
    description = {"toy": 1}

    def prepare(self) -> None:
        pass


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))
    monkeypatch.setattr(tasks, "_LOADED", dict(tasks._LOADED))
    tasks.register("toy", ToyTask)   # the one registry line
    yield


def test_a_registered_task_is_read_built_and_counted_through_the_shared_functions(toy):
    arch = tasks.arch_from_json('{"task": "toy", "width": 32, "depth": 2}')
    assert isinstance(arch, Toy) and tasks.task_of(arch) == "toy"
    assert tasks.default_space("toy").count() == 9
    out = tasks.device_graph(tasks.build_model(arch))(*tasks.build_model(arch).example_inputs())
    assert out[0].shape == (1, 100, 32)
    assert tasks.stats(arch)["params"] == 40 * 32 + 32 + 32 * 32 + 32
    with pytest.raises(ValueError, match="this command takes ASR ones"):
        tasks.require(arch, ("asr",), "a.json")


def test_an_unknown_task_is_one_line():
    with pytest.raises(ValueError, match="unknown task 'toy'; known: asr, tts"):
        tasks.arch_from_dict({"task": "toy", "width": 32, "depth": 2})


def test_the_profiler_measures_a_registered_task_on_this_cpu(toy, tmp_path):
    """Export (ONNX, checked against PyTorch), measurement and the store: none
    of them names the toy task."""
    from hwnas.adapters.devicefile import load_device
    from hwnas.profiling.profiler import ProfileRun
    from hwnas.profiling.store import ProfileStore

    run = ProfileRun(load_device("cpu"), tmp_path, 2, 0, SPACE, plan=FAST, task="toy")
    rows = run.collect()
    assert len(rows) == 2 and all(r["status"] in ("ok", "flagged") for r in rows), rows
    assert all(r["encoder"].startswith("toy:") and r["p50_ms"] > 0 for r in rows)
    assert all(r["rtf"] == pytest.approx(r["p50_ms"] / 1000.0) for r in rows)
    store = ProfileStore(tmp_path / "profiles" / "cpu.toy", "cpu")
    assert len(store) == 2


def test_a_registered_task_is_searched_by_the_shared_search(toy, tmp_path):
    """Two trials of the one search on the toy task: proposed, measured on this
    CPU, "trained" as units of work, told, verified by a second measurement."""
    from hwnas.search.study import SearchConfig
    from hwnas.workflows.search import SearchRequest, run

    (tmp_path / "devices").mkdir()   # the cpu's adapter with a short plan: mechanics, not noise
    (tmp_path / "devices" / "cpu-quick.toml").write_text(
        'adapter = "cpu"\n[options]\nreference = ""\n[plan]\nwarmup_runs = 2\nmin_runs = 5\n'
        'min_seconds = 0.05\nretries = 0\nmax_ci = inf\nmax_drift = 10.0\n')
    search = SearchConfig(target="cpu-quick", task="toy", objectives=("error", "latency"),
                          trials=2, rungs=(4.0,), rung_unit="steps", study="toy")
    req = SearchRequest(search, workspace=tmp_path, corpus=ToyData(), export=False)
    out = run(req).summary
    assert out["trials"] == 2 and out["pareto"]
    for r in out["pareto"]:
        arch = r["arch"]
        assert r["quality_key"] == "error"
        assert r["error"] == pytest.approx(1 / (arch["width"] * arch["depth"] * 4))
        assert r["latency_source"] == "measured" and r["measurements"] == 2
        assert r["verdict"] == "measured"   # no limit to judge against
    study = run(req).study   # a rerun continues it: nothing more to do
    assert len(study.trials) == 2 and study.user_attrs["task"] == "toy"
