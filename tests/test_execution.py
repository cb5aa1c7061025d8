"""The executor seam: units pickle, cross a process boundary and come back;
a profile and a rung ladder run through an executor as they do in process."""

from __future__ import annotations

import pickle
from dataclasses import asdict

import pytest
import torch

from hwnas.adapters.devicefile import load_device
from hwnas.asr import default_space, preset
from hwnas.data import corpus
from hwnas.execution import LocalExecutor, ProcessExecutor, make, names
from hwnas.profiling.profiler import ProfileRun
from hwnas.profiling.units import Export, Measure
from hwnas.tasks.units import TrainRung
from tests.helpers import FAST

TINY = {"kind": "builtin", "langs": ["en"], "size": "tiny", "seed": 0}


def test_units_are_plain_values_that_pickle(tmp_path):
    arch = preset("conformer_xs").to_dict()
    units = [Export(arch, "onnx", str(tmp_path)),
             Measure("cpu", None, {"arch": arch}, None, asdict(FAST)),
             TrainRung(arch=arch, corpus=TINY, workspace=str(tmp_path), budget=2,
                       unit="steps", seed=0, run_dir=str(tmp_path / "r"))]
    assert all(pickle.loads(pickle.dumps(u)) == u for u in units)
    assert names() == ["local", "process", "ray"] and isinstance(make("local"), LocalExecutor)
    with pytest.raises(ValueError, match="unknown executor 'dask'"):
        make("dask")


def test_a_profile_through_worker_processes_stores_every_row_once(tmp_path):
    archs = default_space().with_choices({"encoder": ["lstm"], "num_layers": [1],
                                          "d_model": [96]}).sample_distinct(2, 0)
    run = ProfileRun(load_device("cpu"), tmp_path, 2, 0, default_space(), plan=FAST,
                     archs=archs)
    with ProcessExecutor() as ex:
        run.executor = ex
        rows = list(run.run())
    assert [r["arch_id"] for r in rows] == [a.id for a in archs]
    assert all(r["status"] in ("ok", "flagged") and r["p50_ms"] > 0 for r in rows), rows
    assert sorted(r["key"] for r in run.store().rows()) == sorted(r["key"] for r in rows)
    run.executor = LocalExecutor()
    assert list(run.run()) == []   # resumable as before: nothing left to measure


@pytest.fixture(scope="module")
def tiny_workspace(tmp_path_factory):
    from hwnas.training.prepare import ensure_corpus

    ws = tmp_path_factory.mktemp("ws")
    mp = pytest.MonkeyPatch()
    mp.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    ensure_corpus(ws, ["en"], "tiny", 0)
    mp.undo()
    return ws


def test_a_rung_continued_from_its_snapshot_in_another_process_equals_one_run(tiny_workspace):
    """Rung state is a file: 2 steps here, then 2 more in a worker process,
    give the weights of 4 steps in one go."""
    arch = preset("conformer_xs").replace(num_layers=1, d_model=96, heads=2).to_dict()

    def unit(steps, name, resume=False):
        return TrainRung(arch=arch, corpus=TINY, workspace=str(tiny_workspace), budget=steps,
                         unit="steps", seed=0, run_dir=str(tiny_workspace / name), resume=resume,
                         train_options={"eval_every": 10**9, "eval_utts": 4})

    local = LocalExecutor()
    first = local.submit(unit(2, "a")).result()
    with ProcessExecutor() as ex:
        second = ex.submit(unit(4, "a", resume=True)).result()
    whole = local.submit(unit(4, "b")).result()
    assert first["steps"] == 2 and second["steps"] == whole["steps"] == 4
    assert second["cer"] == whole["cer"]
    wa = torch.load(tiny_workspace / "a" / "weights.pt", weights_only=True)
    wb = torch.load(tiny_workspace / "b" / "weights.pt", weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # a first rung never overwrites a trained run: the earlier one is set aside
    local.submit(unit(2, "b")).result()
    assert (tiny_workspace / "b" / "set-aside").is_dir()


def test_a_subnet_scored_in_a_worker_process_equals_one_scored_here(tiny_workspace):
    """The supernet screen's unit: the worker reads the supernet from its
    folder once, and scores as the driver would."""
    from hwnas.asr.supernet.elastic import ElasticSupernet
    from hwnas.asr.supernet.sandwich import save_supernet
    from hwnas.asr.supernet.units import ScoreSubnet
    from hwnas.training.prepare import corpus_from_description

    space = default_space().with_choices({
        "encoder": ["lstm"], "frontend": ["logmel"], "n_filters": [40],
        "subsampling": ["conv2d4"], "decoder": ["ctc"], "num_layers": [1, 2],
        "d_model": [96, 144]})
    tok = corpus_from_description(TINY, tiny_workspace).tokenizer
    folder = tiny_workspace / "supernets" / "lstm"
    save_supernet(folder / "supernet.pt", ElasticSupernet(space, "lstm", tok.vocab_size, seed=0),
                  {"cpu_seconds": 0})
    units = [ScoreSubnet(a.to_dict(), str(folder), TINY, str(tiny_workspace), dev_utts=3)
             for a in space.sample_distinct(2, 0)]
    assert all(pickle.loads(pickle.dumps(u)) == u for u in units)
    here = list(LocalExecutor().map(units))
    with ProcessExecutor() as ex:
        there = list(ex.map(units))
    assert [r["utts"] for r in there] == [3, 3]
    assert [(r["cer"], r["source"]) for r in there] == [(r["cer"], r["source"]) for r in here]


SILENT_PEER_COMMANDS = {
    "devices --cluster": ["devices", "--cluster", "--address", "ADDR"],
    "lab join": ["lab", "join", "--address", "ADDR"],
    "profile --executor ray": ["profile", "--device", "cpu", "--n", "1", "--executor", "ray",
                               "--address", "ADDR"],
}


@pytest.mark.parametrize("command", sorted(SILENT_PEER_COMMANDS))
def test_a_peer_that_accepts_and_never_answers_is_one_line_within_15_s(command, tmp_path,
                                                                        capsys):
    """A port that accepts connections and says nothing (a hung head, another
    service): Ray would wait on it forever; the command ends in one line."""
    import socket
    import time

    from cli.main import main

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        addr = f"127.0.0.1:{srv.getsockname()[1]}"
        argv = [addr if a == "ADDR" else a for a in SILENT_PEER_COMMANDS[command]]
        start = time.monotonic()
        code = main([*argv, "--workspace", str(tmp_path)])
        took = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and took < 15, (code, took)
    assert err[-1].startswith("hwnas: error:") and "did not answer" in err[-1], err


def test_joining_an_unroutable_address_is_one_line_within_15_s(tmp_path, capsys):
    import time

    from cli.main import main

    start = time.monotonic()
    code = main(["lab", "join", "--address", "10.255.255.1:6379", "--workspace", str(tmp_path)])
    took = time.monotonic() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and took < 15, (code, took)
    # nothing there, or (behind a proxy that answers every address) something that is not Ray
    assert err[-1].startswith(("hwnas: error: no Ray cluster at 10.255.255.1:6379",
                               "hwnas: error: 10.255.255.1:6379 answered, but not as a Ray "
                               "cluster's head")), err


class SeenGPUs:
    """A unit that answers with the GPUs its worker may see."""

    def run(self, ctx):
        import os
        import time

        time.sleep(1.0)   # long enough for the second worker to start and take some
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    def needs(self):
        return {"num_cpus": 1}


def test_the_process_executor_starts_one_worker_per_gpu_each_seeing_its_own():
    """--executor process with a GPU training device: a worker per GPU index,
    each with CUDA_VISIBLE_DEVICES set to its own before torch starts (so a
    unit's cuda:0 is that worker's card); without GPUs nothing is set."""
    ex = ProcessExecutor(gpus=(3, 5))
    try:
        seen = {f.result(timeout=120) for f in [ex.submit(SeenGPUs()) for _ in range(6)]}
    finally:
        ex.close()
    assert seen == {"3", "5"}
    plain = ProcessExecutor()
    try:
        assert plain.submit(SeenGPUs()).result(timeout=120) is None
    finally:
        plain.close()
