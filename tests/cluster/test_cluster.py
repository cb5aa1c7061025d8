"""The lab for real, on loopback: a Ray head and two bench nodes (separate
`ray start` processes), each advertising one loopback ADB phone; the driver
is this process (through the Lab API) or `hwnas` in a subprocess.

Run by tests/test_lab.py inside a loopback-only network namespace (Ray
binds to every interface); HWNAS_LAB_TESTS=1 lets pytest collect them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hwnas.profiling.store import ProfileStore
from hwnas.testing.lab import KIND, TINY_SPACE, LoopbackLab, is_loopback_only

pytestmark = pytest.mark.skipif(not is_loopback_only(),
                                reason="needs a loopback-only network namespace")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with LoopbackLab(tmp_path_factory.mktemp("lab"), ["loop-a", "loop-b"]) as lab:
        (lab.workspace / "tiny.toml").write_text(TINY_SPACE)
        yield lab


def tiny(lab):
    from hwnas.asr import default_space

    return default_space().with_toml(lab.workspace / "tiny.toml")


def stored(lab) -> list[dict]:
    folder = lab.workspace / "profiles" / KIND
    return ProfileStore(folder, KIND).rows() if (folder / "manifest.json").is_file() else []


def exactly_once(rows: list[dict]) -> bool:
    return len({r["key"] for r in rows}) == len(rows)


def when_busy(lab, phone: str, then, timeout_s: float = 240.0) -> threading.Thread:
    """In the background: as soon as ``phone`` holds a measurement, ``then()``."""
    import ray

    def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ray.cluster_resources().get(f"device:{phone}") and \
                    not ray.available_resources().get(f"device:{phone}"):
                then()
                return
            time.sleep(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_a_profile_over_two_phones_measures_each_architecture_once(lab):
    from hwnas.lab import Lab

    lines: list[str] = []
    with Lab(lab.address, lab.workspace, say=lines.append) as L:
        phones = L.phones("loop-*")
        assert {(p["device"], p["host"], p["state"]) for p in phones} == \
            {("loop-a", "bench-loop-a", "free"), ("loop-b", "bench-loop-b", "free")}
        n = len(stored(lab)) + 4
        rows = L.profile(KIND, n=n, phones="loop-*", space=tiny(lab))
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows), \
        [r.get("error") for r in rows]
    assert {r["key"] for r in rows} <= {r["key"] for r in stored(lab)}
    rows = stored(lab)
    assert len(rows) == n and exactly_once(rows)
    by = {(r["provenance"]["phone"], r["provenance"]["node"]) for r in rows}
    assert by == {("loop-a", "bench-loop-a"), ("loop-b", "bench-loop-b")}, by
    assert lines == []


def test_a_killed_worker_node_gives_its_work_to_the_other_phone(lab):
    from hwnas.lab import Lab

    lines: list[str] = []
    killed = threading.Event()

    def kill() -> None:
        lab.kill_node("loop-b")
        killed.set()

    with Lab(lab.address, lab.workspace, say=lines.append) as L:
        when_busy(lab, "loop-b", kill)
        n = len(stored(lab)) + 4
        rows = L.profile(KIND, n=n, phones="loop-*", space=tiny(lab))
    assert killed.is_set()
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    rows = stored(lab)
    assert len(rows) == n and exactly_once(rows)
    assert any(line.startswith("loop-b lost") and "moves to loop-a" in line for line in lines), \
        lines
    lab.start_node("loop-b")
    lab.wait_for(lambda r: r.get("device:loop-b"), 90, "loop-b advertised again")


def test_a_phone_that_disappears_is_no_longer_advertised(lab):
    from hwnas.lab import Lab

    lab.nodes.pop("loop-b").stop()
    lab.wait_for(lambda r: not r.get("device:loop-b"), 90, "loop-b withdrawn")
    log = lab.root / "join-b.err"
    join = subprocess.Popen(
        [sys.executable, "-m", "hwnas", "lab", "join", "--address", lab.address,
         "--workspace", str(lab.bench_workspace("loop-b")), "--node-ip-address", "127.0.0.1",
         "--name", "bench-loop-b", "--interval", "0.5"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        lab.wait_for(lambda r: r.get("device:loop-b"), 90, "loop-b advertised by join")
        port: list[int] = []
        lines: list[str] = []
        with Lab(lab.address, lab.workspace, say=lines.append) as L:
            when_busy(lab, "loop-b", lambda: port.append(lab.stop_phone("loop-b")))
            n = len(stored(lab)) + 4
            rows = L.profile(KIND, n=n, phones="loop-*", space=tiny(lab))
        assert port, "loop-b never measured"
        assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
        assert len(stored(lab)) == n and exactly_once(stored(lab))
        assert any(line.startswith("loop-b lost") for line in lines), lines
        lab.wait_for(lambda r: not r.get("device:loop-b"), 60, "loop-b withdrawn by join")
        said = log.read_text()
        assert "loop-b gone (nothing answers at 127.0.0.1:" in said, said
        lab.start_phone("loop-b", port[0])                     # plugged back in
        lab.wait_for(lambda r: r.get("device:loop-b"), 90, "loop-b advertised again")
        assert "loop-b (127.0.0.1:" in log.read_text()
    finally:
        sent = time.monotonic()
        join.send_signal(signal.SIGTERM)
        code = join.wait(60)
        took = time.monotonic() - sent
    assert code == 130 and took < 5, (code, took)   # a cluster command ends within 5 s
    assert "left the cluster" in log.read_text()
    lab.wait_for(lambda r: not r.get("device:loop-b"), 60, "loop-b withdrawn after leaving")
    lab.start_node("loop-b")
    lab.wait_for(lambda r: r.get("device:loop-b"), 90, "loop-b advertised again")


def test_a_killed_driver_resumes_with_exact_counts(lab):
    start = len(stored(lab))
    n = start + 4
    cmd = [sys.executable, "-m", "hwnas", "profile", "--device", KIND, "--phones", "loop-*",
           "--executor", "ray", "--address", lab.address, "--n", str(n), "--space",
           str(lab.workspace / "tiny.toml"), "--workspace", str(lab.workspace), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while len(stored(lab)) <= start and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
    driver.kill()                                               # kill -9
    driver.wait(30)
    before = len(stored(lab))
    assert start < before < n, driver.stderr.read().decode()[-2000:]
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    import json

    out = json.loads(again.stdout)
    assert out["new_rows"] == n - before and out["stored_rows"] == n
    rows = stored(lab)
    assert len(rows) == n and exactly_once(rows)


def test_the_cluster_listing_names_every_phone(lab):
    r = subprocess.run([sys.executable, "-m", "hwnas", "devices", "--cluster", "--address",
                        lab.address, "--workspace", str(lab.workspace), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    import json

    rows = {d["device"]: d for d in json.loads(r.stdout)}
    assert rows["loop-a"]["state"] == rows["loop-b"]["state"] == "free"
    assert rows["loop-a"]["host"] == "bench-loop-a"
    assert rows[KIND]["state"].startswith("not advertised")


def test_a_search_trains_on_the_cluster_and_verifies_on_a_cluster_phone(lab, monkeypatch,
                                                                         capsys):
    """`hwnas predictor adapt` (3 measurements) and a tiny `hwnas search` with
    --executor ray: rungs train on the head's CPU, the Pareto set is measured on
    loop-a's node, and the study lives in PostgreSQL (over its Unix socket:
    this namespace has no route to the server's TCP port)."""
    import json

    from cli.main import main
    from hwnas.data import corpus

    url = os.environ.get("HWNAS_TEST_POSTGRES_SOCKET")
    if url is None and os.environ.get("CI"):
        pytest.fail("CI must set HWNAS_TEST_POSTGRES_SOCKET (.ci/run starts PostgreSQL)")
    storage = ["--storage", url] if url else []
    monkeypatch.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    ws = lab.workspace
    ray_args = ["--executor", "ray", "--address", lab.address]
    space = ["--space", str(ws / "tiny.toml")]
    assert main(["predictor", "adapt", "--from", "cpu", "--device", "loop-a", "--n", "3",
                 "--pool", "20", *space, *ray_args, "--workspace", str(ws), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["measured"] == 3
    study = f"lab-{int(time.time())}"
    assert main(["search", "--target", "loop-a", "--trials", "2", "--cer-steps", "1",
                 "--size", "tiny", *space, "--max-latency", "1000", "--study", study,
                 *storage, *ray_args, "--workspace", str(ws), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 2 and out["pareto"]
    assert all(r["latency_source"] == "measured" for r in out["pareto"])
    rows = ProfileStore(ws / "profiles" / "loop-a", "loop-a").rows()
    verified = [r for r in rows if r["arch_id"] in {p["arch_id"] for p in out["pareto"]}]
    assert verified and {r["provenance"]["node"] for r in verified} == {"bench-loop-a"}
    if url:
        import optuna

        done = optuna.load_study(study_name=study, storage=url).get_trials(
            states=(optuna.trial.TrialState.COMPLETE,))
        assert len(done) == 2


@pytest.fixture(autouse=True)
def _here() -> None:
    assert Path(__file__).parent.name == "cluster"
