"""The lab: phone discovery on this host, the phone pool's scheduling, and
(slow) the cluster scenarios of tests/cluster/ in a loopback-only network
namespace with a real Ray cluster."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from hwnas.adapters import DeviceUnavailable
from hwnas.asr import preset
from hwnas.profiling.profiler import PhonePool, pipeline

ROOT = Path(__file__).resolve().parents[1]


def _ray_or_skip() -> None:
    from hwnas.testing.lab import can_unshare

    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Ray is required in CI (pip install 'hwnas[lab]', part of [all])")
        pytest.skip("Ray is not installed (pip install 'hwnas[lab]')")
    if not can_unshare():
        if os.environ.get("CI"):
            pytest.fail("CI must be able to make a network namespace (unshare -n, as root)")
        pytest.skip("cannot make a loopback-only network namespace here (unshare -n)")


@pytest.mark.slow
def test_cluster_scenarios_in_a_loopback_namespace():
    """tests/cluster/ on a real Ray cluster (head + two bench nodes) with two
    loopback phones: profile over both, kill -9 a node, a phone unplugged,
    kill -9 the driver, the cluster listing."""
    _ray_or_skip()
    from hwnas.testing.lab import run_in_loopback_namespace

    env = {**os.environ, "HWNAS_LAB_TESTS": "1", "OMP_NUM_THREADS": "1"}
    r = run_in_loopback_namespace(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o",
         "addopts=-p no:anyio", "tests/cluster"], timeout_s=1500, capture=True, cwd=ROOT,
        env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout, r.stdout[-2000:]


# --- scan: which phones this host has ---------------------------------------------
def _android(ws: Path, name: str, serial: str, transport: str = "auto") -> None:
    (ws / "devices").mkdir(parents=True, exist_ok=True)
    (ws / "devices" / f"{name}.toml").write_text(
        f'adapter = "android"\n[options]\nserial = "{serial}"\ntransport = "{transport}"\n')


def test_scan_finds_tcp_phones_and_says_why_others_are_absent(phone, tmp_path, monkeypatch):
    from hwnas.lab import scan
    from hwnas.testing.lab import free_port

    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))   # no server
    ws = tmp_path / "ws"
    _android(ws, "here", f"127.0.0.1:{phone.port}")
    _android(ws, "gone", f"127.0.0.1:{free_port()}")
    found = scan(ws)
    assert found.present == {"here": f"127.0.0.1:{phone.port}"}
    assert found.absent["gone"].startswith("nothing answers at 127.0.0.1:")
    assert found.resources() == {"device:here": 1.0}


def test_scan_asks_the_adb_server_and_lists_phones_without_a_file(adb_server, tmp_path,
                                                                  monkeypatch):
    from hwnas.lab import scan

    _, env, serial = adb_server
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", env["ANDROID_ADB_SERVER_PORT"])
    ws = tmp_path / "ws"
    _android(ws, "held", "0A1B2C3D")
    found = scan(ws)
    assert found.absent == {"held": "the adb server does not list 0A1B2C3D"}
    assert found.unknown == [serial]
    _android(ws, "via-server", serial, transport="server")
    found = scan(ws)
    assert found.present == {"via-server": serial} and found.unknown == []


# --- the pool: work moves off a lost phone ----------------------------------------
class _Threads:
    """A concurrent executor without a cluster: units run in threads; a phone
    in ``lost`` fails its measurement as a dropped phone does."""

    concurrent = True

    def __init__(self, lost: set[str]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(4)
        self.lost = lost
        self.ran: list[tuple[str, str]] = []

    def device_available(self, device: str) -> bool:
        return device not in self.lost

    def abandon(self, future: Future) -> None:
        pass

    def measure(self, phone: str, row: dict, art: object) -> Future:
        def go() -> dict:
            time.sleep(0.01)
            if phone in self.lost:
                raise DeviceUnavailable(f"lost tcp {phone}")
            self.ran.append((phone, row["arch_id"]))
            return {**row, "status": "ok", "phone": phone}
        return self.pool.submit(go)

    def export(self, arch, rep) -> Future:
        f: Future = Future()
        f.set_result(({"arch_id": arch.id}, object()))
        return f


def test_a_lost_phone_gives_its_work_to_the_others_and_each_arch_runs_once():
    archs = [preset(p) for p in ("conformer_xs", "conformer_s", "lstm_rnnt", "blstm_ctc",
                                 "contextnet_s", "transformer_ctc")]
    ex = _Threads(lost={"b"})
    said: list[str] = []
    pool = PhonePool(["a", "b", "c"], ex, wait_s=1.0, say=said.append)
    assert said == ["b: no node advertises it (is `hwnas lab join` running on its bench "
                    "host?); waiting for it"]
    ex.lost.clear()
    pool.down["b"] = time.monotonic() - 10          # it is back: the next recheck sees it
    ex.lost.add("c")                                # and c drops during the run
    rows = [r for _, r in pipeline([(a, 1) for a in archs], ex.export, ex.measure, pool,
                                   ahead=4)]
    assert sorted(r["arch_id"] for r in rows) == sorted(a.id for a in archs)
    assert {p for p, _ in ex.ran} <= {"a", "b"} and len(ex.ran) == len(archs)
    assert any(s.startswith("c lost (lost tcp c); its work moves to") for s in said), said


def test_when_every_phone_is_lost_the_run_stops_after_waiting():
    archs = [preset("conformer_xs"), preset("lstm_rnnt")]
    ex = _Threads(lost={"a"})
    pool = PhonePool(["a"], ex, wait_s=0.5)
    with pytest.raises(DeviceUnavailable, match="no phone of a is advertised"):
        list(pipeline([(a, 1) for a in archs], ex.export, ex.measure, pool, ahead=2))


def test_map_runs_a_unit_again_when_its_worker_died():
    from hwnas.execution import Executor, WorkerLost

    class Flaky(Executor):
        def __init__(self, deaths: int) -> None:
            self.deaths, self.calls = deaths, 0

        def submit(self, unit):
            f: Future = Future()
            self.calls += 1
            if self.deaths:
                self.deaths -= 1
                f.set_exception(WorkerLost("NodeDiedError: its node is dead"))
            else:
                f.set_result(unit * 2)
            return f

    ex = Flaky(deaths=2)
    assert list(ex.map([1, 2])) == [2, 4] and ex.calls == 4
    with pytest.raises(WorkerLost):
        list(Flaky(deaths=3).map([1]))


def test_lab_scan_and_cluster_listing_from_the_command_line(phone, tmp_path, monkeypatch,
                                                            capsys):
    import json

    from cli.main import main
    from hwnas.testing.lab import free_port

    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))
    ws = tmp_path / "ws"
    _android(ws, "here", f"127.0.0.1:{phone.port}")
    assert main(["lab", "scan", "--workspace", str(ws), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["present"] == {"here": f"127.0.0.1:{phone.port}"}
    assert main(["lab", "scan", "--workspace", str(ws)]) == 0
    assert capsys.readouterr().out.startswith(f"here: present (127.0.0.1:{phone.port})")
    pytest.importorskip("ray")
    port = free_port()
    assert main(["devices", "--cluster", "--address", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hwnas: error: no Ray cluster at 127.0.0.1:{port}") and \
        err.count("\n") == 1
