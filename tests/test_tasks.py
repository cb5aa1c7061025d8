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
