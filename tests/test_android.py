"""The Android path against the loopback ADB device: real ADB protocol
(adb-shell, and Google's adb client), push, benchmark_model, parsing,
thermal handling, quoting, reconnects and resumable profiling."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hwnas.adapters import DeviceError, DeviceUnavailable
from hwnas.adapters.android import AdbTransport, AndroidAdapter
from hwnas.testing.adb_device import LoopbackDevice
from hwnas.testing.lab import TINY_SPACE, device_file, free_port
from tests.helpers import FAST, google_adb
from tests.helpers import android_options as options


def test_auth_creates_key_is_accepted_then_verified(tmp_path):
    dev = LoopbackDevice(tmp_path / "phone", auth=True).start()
    try:
        key = tmp_path / "keys" / "adbkey"
        t = AdbTransport(f"127.0.0.1:{dev.port}", key, connect_timeout_s=5)
        t.connect()                       # new key: signature unknown, public key accepted
        assert key.is_file() and Path(str(key) + ".pub").is_file()
        assert t.shell("echo hi") == ("hi\n", 0)
        t.close()
        authorised = dev.keys_file.read_bytes()
        t = AdbTransport(f"127.0.0.1:{dev.port}", key, connect_timeout_s=5)
        t.connect()                       # known key: the signature is verified
        assert t.shell("getprop ro.product.model")[0].strip() == "hwnas loopback (host CPU)"
        t.close()
        assert dev.keys_file.read_bytes() == authorised
    finally:
        dev.stop()


def test_bench_processes_that_start_together_share_one_key_pair(tmp_path):
    """Two bench nodes on one host create the same missing key at once: each
    must find the pair whole (the private key is never there without its
    public one) and all end with the same pair."""
    import time

    key = tmp_path / "keys" / "adbkey"
    start = time.time() + 3.0           # past every interpreter's start-up
    script = ("import sys, time; from hwnas.adapters.android import load_signer; "
              "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
              "print(load_signer(sys.argv[1]).GetPublicKey().decode())")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(key), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [e[-400:] for _, e in outs]
    assert len({o.strip() for o, _ in outs}) == 1
    assert outs[0][0].strip() == Path(f"{key}.pub").read_text().strip()
    assert sorted(p.name for p in key.parent.iterdir()) == [".adbkey.lock", "adbkey", "adbkey.pub"]


def test_phone_that_refuses_our_key_is_unavailable(tmp_path):
    dev = LoopbackDevice(tmp_path / "phone", auth=True, accept_new_keys=False).start()
    try:
        t = AdbTransport(f"127.0.0.1:{dev.port}", tmp_path / "k" / "adbkey", connect_timeout_s=1)
        with pytest.raises(DeviceUnavailable, match="cannot reach tcp 127.0.0.1"):
            t.connect()
    finally:
        dev.stop()


def test_nothing_listening_is_one_line(tmp_path):
    a = AndroidAdapter("p", AndroidAdapter.validate_options(
        {"serial": "127.0.0.1:9", "adb_key": str(tmp_path / "k"), "connect_timeout_s": 1.0}))
    reason = a.check()
    assert reason is not None and "cannot reach tcp 127.0.0.1:9" in reason
    assert "\n" not in reason


def test_shell_exit_status_push_and_stat(phone, tmp_path):
    t = AdbTransport(f"127.0.0.1:{phone.port}", tmp_path / "k" / "adbkey")
    assert t.shell("false") == ("", 1)
    assert t.shell("cat /nope")[1] == 1
    assert t.shell("true && echo yes || echo no")[0] == "yes\n"
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(300_000))          # several WRTE packets
    t.push(blob, "/data/local/tmp/x/blob.bin")
    assert t.stat("/data/local/tmp/x/blob.bin")[1] == 300_000
    assert (phone.root / "data/local/tmp/x/blob.bin").read_bytes() == blob.read_bytes()
    out, rc = t.shell("cat /sys/class/thermal/thermal_zone*/type")
    assert out.split() == ["BIG", "MID", "LITTLE", "battery"] and rc == 0
    t.close()


def test_values_in_shell_commands_cannot_inject(phone, tmp_path, tool):
    evil = "/data/local/tmp/x; touch /data/pwned; echo $(touch /data/pwned2)"
    a = AndroidAdapter("p", options(phone, tmp_path, tool, remote_dir=evil))
    a._ensure_tool()
    assert not (phone.root / "data/pwned").exists()
    assert not (phone.root / "data/pwned2").exists()
    assert (phone.root / evil.lstrip("/")).is_dir()   # the odd name is taken literally
    cmd = a.command("/data/m.tflite; reboot", FAST)
    assert "'--graph=/data/m.tflite; reboot'" in cmd
    with pytest.raises(ValueError, match="cpu_mask"):
        AndroidAdapter.validate_options({"cpu_mask": "c0; reboot"})
    a.close()


def test_measure_on_loopback_phone(phone, tmp_path, tool, tflite_model):
    a = AndroidAdapter("loop", options(phone, tmp_path, tool))
    assert a.check() is None
    h = a.prepare(tflite_model)
    assert (phone.root / "data/local/tmp/hwnas/benchmark_model").is_file()
    m = a.measure(h, FAST, arch_id=tflite_model.arch_id, graph="chunk",
                  model_bytes=tflite_model.size_bytes)
    assert m.ok, m.flags
    lat = m.latency
    assert lat["n"] >= 5 and 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["max_ms"]
    assert m.init_ms > 0 and m.memory_mb is not None
    assert m.extra["tool_format"] == "2.13+"
    assert m.extra["temps_before_c"]["BIG"] == 36.0
    assert m.provenance["phone"]["ro.product.model"] == "hwnas loopback (host CPU)"
    a.release(h)
    assert not (phone.root / h.path.lstrip("/")).exists()
    a.close()


def test_missing_tool_and_broken_model_are_clear(phone, tmp_path, tflite_model):
    a = AndroidAdapter("loop", options(phone, tmp_path, None))
    assert "benchmark_model is not on the phone" in a.check()
    with pytest.raises(DeviceError, match="set benchmark_binary"):
        a.prepare(tflite_model)
    tool = phone.root / "data/local/tmp/hwnas/benchmark_model"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")

    class Art:
        path, arch_id = str(bad), "bad"

    h = a.prepare(Art)
    with pytest.raises(DeviceError, match="benchmark_model gave no timings"):
        a.measure(h, FAST, arch_id="bad", graph="chunk", model_bytes=16)
    a.close()


def test_waits_for_a_hot_phone_to_cool_and_flags_one_that_stays_hot(
        phone, tmp_path, tool, tflite_model):
    zone = phone.root / "sys/class/thermal/thermal_zone0/temp"
    zone.write_text("61000\n")
    threading.Timer(1.0, lambda: zone.write_text("39000\n")).start()
    a = AndroidAdapter("loop", options(phone, tmp_path, tool, max_temp_c=45.0,
                                       cooldown_timeout_s=30.0))
    h = a.prepare(tflite_model)
    m = a.measure(h, FAST, arch_id="x", graph="chunk", model_bytes=1)
    assert m.ok and m.extra["cooldown_s"] >= 0.9
    zone.write_text("70000\n")
    a.options["cooldown_timeout_s"] = 0.5
    m = a.measure(h, FAST, arch_id="x", graph="chunk", model_bytes=1)
    assert not m.ok and m.flags[0].startswith("hot: 70.0")
    a.close()


def test_throttling_during_the_run_is_flagged(phone, tmp_path, tool, tflite_model):
    a = AndroidAdapter("loop", options(phone, tmp_path, tool))
    h = a.prepare(tflite_model)
    freq = phone.root / "sys/devices/system/cpu/cpu7/cpufreq/scaling_max_freq"
    real = a.thermal

    def thermal():
        out = real()
        freq.write_text("1200000\n")     # the big core's clock falls while the run goes on
        return out

    a.thermal = thermal
    m = a.measure(h, FAST, arch_id="x", graph="chunk", model_bytes=1)
    assert any(f.startswith("drift: core clock fell from 2802 to 1200 MHz") for f in m.flags)
    a.close()


def test_phone_rows_are_ratios_to_the_shipped_reference_through_a_slow_phase(
        phone, tmp_path, tool, tflite_model):
    """The reference model is timed before and after each run: a phone at a
    quarter speed for the whole run keeps its ratio; one that slows during the
    run is flagged, waited for, and measured again.

    The loopback phone is this host, whose own speed moves by up to 40% between
    runs (measured: a tiny model's ratio spans 0.0064-0.0094 over 8 quiet runs),
    so the slowdown is 4x and the limits sit between the host's noise and it."""
    import time

    from hwnas.adapters.records import Plan
    from hwnas.testing.benchmark_model import SLOWDOWN

    plan = Plan(warmup_runs=2, min_runs=10, min_seconds=0.3, retries=2, max_ci=float("inf"),
                max_drift=0.6)   # retries: the host itself once slowed 2x between readings

    def kept(rel):   # within 2x of the quiet ratio: 4x if the reference did not correct it
        return 0.5 < rel / lat["rel_p50"] < 2.0

    a = AndroidAdapter("loop", options(phone, tmp_path, tool, reference_seconds=0.3,
                                       cooldown_timeout_s=20.0))
    h = a.prepare(tflite_model)
    assert "reference" in a.describe() and "sha256" in a.describe()["reference"]
    normal = a.measure(h, plan, arch_id="x", graph="chunk", model_bytes=1)
    assert normal.ok, normal.flags
    assert (phone.root / "data/local/tmp/hwnas/hwnas_reference.tflite").is_file()
    lat = normal.latency
    assert lat["rel_p50_ci_lo"] < lat["rel_p50"] < lat["rel_p50_ci_hi"]
    assert lat["rel_p50"] == pytest.approx(lat["p50_ms"] / lat["ref_p50_ms"])

    slow = phone.root / SLOWDOWN
    slow.parent.mkdir(exist_ok=True)
    slow.write_text(f"4 {time.time() + 3600}\n")      # a quarter speed for the whole run
    slowed = a.measure(h, plan, arch_id="x", graph="chunk", model_bytes=1)
    assert slowed.latency["p50_ms"] > 2.5 * lat["p50_ms"]
    assert kept(slowed.latency["rel_p50"]), (slowed.latency["rel_p50"], lat["rel_p50"])
    assert slowed.ok, slowed.flags

    slow.unlink()
    real = a.reference_summary
    calls = []

    def reference_summary(seconds):   # the phone slows down right after the first timing
        got = real(seconds)
        calls.append(got)
        if len(calls) == 1:
            slow.write_text(f"4 {time.time() + 4}\n")
        return got

    a.reference_summary = reference_summary
    m = a.measure(h, plan, arch_id="x", graph="chunk", model_bytes=1)
    assert m.attempts >= 2 and m.ok, m.flags    # flagged, waited for, measured again
    assert m.extra["cooldown_s"] >= 1.0
    assert kept(m.latency["rel_p50"]), (m.latency["rel_p50"], lat["rel_p50"])
    a.close()


def test_google_adb_client_talks_to_the_loopback_device(adb_server, tmp_path):
    adb, _, serial = adb_server
    r = adb("-s", serial, "shell", "echo", "ok")
    assert r.returncode == 0 and r.stdout.strip() == "ok"
    src = tmp_path / "hello.txt"
    src.write_text("hello from adb\n")
    assert adb("-s", serial, "push", str(src), "/data/local/tmp/hello.txt").returncode == 0
    assert adb("-s", serial, "shell", "cat /data/local/tmp/hello.txt").stdout == \
        "hello from adb\n"
    assert "device" in adb("devices").stdout


def test_google_adb_client_talks_to_a_loopback_device_process(tmp_path):
    """The device as its own process (as the lab's loopback phones run)."""
    adb = google_adb()
    if adb is None:
        pytest.skip("Google's adb client is not installed (apt-get install adb)")
    port = free_port()
    dev = subprocess.Popen([sys.executable, "-m", "hwnas.testing.adb_device", "--port",
                            str(port), "--root", str(tmp_path / "phone")],
                           stdout=subprocess.PIPE, text=True)
    env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(free_port()), "HOME": str(tmp_path)}
    serial = f"127.0.0.1:{port}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([adb, *args], env=env, capture_output=True, text=True,
                              timeout=60)

    try:
        assert "loopback ADB device" in dev.stdout.readline()
        run("start-server")
        assert f"connected to {serial}" in run("connect", serial).stdout
        r = run("-s", serial, "shell", "echo", "ok")
        assert r.returncode == 0 and r.stdout.strip() == "ok"
    finally:
        run("kill-server")
        dev.terminate()
        dev.wait(10)


def test_our_client_of_googles_adb_server(adb_server, phone, tmp_path, monkeypatch):
    """hwnas through the running adb server (smart sockets): devices, shell with
    exit status, push, stat, and a missing phone in one line."""
    from hwnas.adapters.adb_server import AdbServer

    _, env, serial = adb_server
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", env["ANDROID_ADB_SERVER_PORT"])
    server = AdbServer()
    assert server.running() and server.version() >= 31
    assert server.devices() == {serial: "device"}
    t = AdbTransport(serial, tmp_path / "unused-key", transport="server")
    assert t.shell("echo hi; false") == ("hi\n", 1)
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(200_000))   # more than one sync DATA packet
    t.push(src, "/data/local/tmp/blob.bin", mode=0o755)
    assert (phone.root / "data/local/tmp/blob.bin").read_bytes() == src.read_bytes()
    mode, size = t.stat("/data/local/tmp/blob.bin")
    assert size == 200_000 and mode & 0o777 == 0o755
    assert t.stat("/data/local/tmp/none") == (0, 0)
    gone = AdbTransport("emulator-5554", tmp_path / "k", transport="server",
                        reconnect_timeout_s=0.5)
    with pytest.raises(DeviceUnavailable, match=f"emulator-5554 via adb server.*lists {serial}"):
        gone.shell("true")


def test_measure_through_googles_adb_server(adb_server, phone, tmp_path, tool, tflite_model,
                                            monkeypatch):
    _, env, serial = adb_server
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", env["ANDROID_ADB_SERVER_PORT"])
    a = AndroidAdapter("loop", options(phone, tmp_path, tool, transport="server"))
    assert a.check() is None
    h = a.prepare(tflite_model)
    m = a.measure(h, FAST, arch_id=tflite_model.arch_id, graph="chunk",
                  model_bytes=tflite_model.size_bytes)
    assert m.ok, m.flags
    assert m.latency["n"] >= 5 and m.latency["p50_ms"] > 0
    assert "via adb server" in m.provenance["transport"]
    a.close()


def test_auto_transport_prefers_the_server_for_serials_it_lists(adb_server, monkeypatch):
    from hwnas.adapters.android import pick_transport

    _, env, serial = adb_server
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", env["ANDROID_ADB_SERVER_PORT"])
    assert pick_transport(serial) == "tcp"         # host:port phones: direct TCP
    assert pick_transport("") == "server"          # the only phone the server holds
    assert pick_transport("0A1B2C3D") == "usb"     # not held by the server
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(free_port()))
    assert pick_transport("") == "usb"             # no server running


def _workspace(tmp_path: Path, phone: LoopbackDevice, tool: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "devices").mkdir(parents=True)
    (ws / "devices" / "loop.toml").write_text(
        device_file(f"127.0.0.1:{phone.port}", tmp_path / "keys" / "adbkey", tool))
    (ws / "tiny.toml").write_text(TINY_SPACE)
    return ws


def _run(ws: Path, n: int, on_row=None) -> list[dict]:
    from hwnas.adapters.devicefile import load_device
    from hwnas.asr import default_space
    from hwnas.profiling.profiler import ProfileRun

    return ProfileRun(load_device("loop", ws), ws, n, 0,
                      default_space().with_toml(ws / "tiny.toml")).collect(on_row)


@pytest.mark.slow
def test_profile_over_adb_survives_a_cut_connection(phone, tmp_path, tool):
    ws = _workspace(tmp_path, phone, tool)
    rows = _run(ws, 3, on_row=lambda r: phone.drop_connections())
    assert [r["status"] for r in rows] == ["ok"] * 3, [r.get("error") for r in rows]
    from hwnas.profiling.store import ProfileStore

    stored = ProfileStore(ws / "profiles" / "loop", "loop").rows()
    assert len({r["key"] for r in stored}) == len(stored) == 3
    r = stored[0]
    assert r["format"] == "tflite" and r["graph"] == "chunk" and r["p50_ms"] > 0
    assert r["provenance"]["adapter"] == "android" and r["rtf"] > 0


@pytest.mark.slow
def test_profile_resumes_after_the_phone_disappears(tmp_path, tool):
    phone = LoopbackDevice(tmp_path / "phone").start()
    port = phone.port
    ws = _workspace(tmp_path, phone, tool)
    with pytest.raises(DeviceUnavailable, match="lost tcp 127.0.0.1"):
        _run(ws, 3, on_row=lambda r: phone.stop())
    from hwnas.profiling.store import ProfileStore

    assert len(ProfileStore(ws / "profiles" / "loop", "loop").rows()) == 1
    phone = LoopbackDevice(tmp_path / "phone", port=port).start()   # plugged back in
    try:
        rows = _run(ws, 3)
        assert len(rows) == 2
        stored = ProfileStore(ws / "profiles" / "loop", "loop").rows()
        assert len({r["key"] for r in stored}) == len(stored) == 3
    finally:
        phone.stop()


@pytest.mark.slow
def test_search_against_the_loopback_phone_end_to_end(phone, tmp_path, tool, monkeypatch,
                                                      capsys):
    """A fresh phone target: few-shot predictor from the shipped CPU one (3 models
    pushed and timed), a tiny search, its Pareto set measured on the phone, the
    winner exported as TFLite with its model card."""
    import json

    from cli.main import main
    from hwnas.data import corpus
    from hwnas.profiling.store import ProfileStore

    monkeypatch.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    ws = _workspace(tmp_path, phone, tool)
    common = ["--workspace", str(ws), "--json"]
    assert main(["search", "--target", "loop", "--cer-steps", "1", *common]) == 1
    assert "no latency predictor for device 'loop'" in capsys.readouterr().err
    assert main(["predictor", "adapt", "--from", "cpu", "--device", "loop", "--n", "3",
                 "--pool", "20", "--space", str(ws / "tiny.toml"), *common]) == 0
    adapted = json.loads(capsys.readouterr().out)
    assert adapted["measured"] == 3
    assert main(["search", "--target", "loop", "--trials", "4", "--cer-steps", "2",
                 "--size", "tiny", "--space", str(ws / "tiny.toml"), "--max-latency", "1000",
                 *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 4 and out["predictor"].endswith("predictors/loop")
    assert out["pareto"] and out["latency_source"] == "measured"
    rows = ProfileStore(ws / "profiles" / "loop", "loop").rows()
    measured = {r["arch_id"] for r in rows if r["status"] == "ok"}
    for r in out["pareto"]:
        assert r["latency_source"] == "measured" and r["arch_id"] in measured
        assert r["latency_ms"] <= 1000 and r["predicted_ms"] > 0
    assert len(measured) > 3  # the Pareto set was measured beyond the adaptation set
    card = json.loads((Path(out["export"]) / "model_card.json").read_text())
    assert card["export"]["format"] == "tflite" and card["provenance"]["target"] == "loop"
    assert card["export"]["parity"]["max_abs_diff"] < 1e-4
    assert (Path(out["export"]) / card["export"]["file"]).is_file()
    # a TFLite target: the blocks come from the same model's ONNX graph on this host
    assert "the ONNX graph of the same model" in card["where_time_goes"]["source"]
    assert card["where_time_goes"]["blocks"]


def test_usb_support_is_installed_by_default():
    """The default install reaches USB phones: libusb-1.0 comes from a wheel,
    so a phone that is not attached is reported as such, not as a missing library."""
    from hwnas.adapters.android import preload_libusb
    from hwnas.adapters.devicefile import load_device

    preload_libusb()
    import adb_shell.adb_device as adb_device
    import usb1

    assert adb_device.UsbTransport is not None
    with usb1.USBContext() as ctx:
        ctx.getDeviceList()
    adapter = load_device("pixel6").make()
    try:
        reason = adapter.check()
    finally:
        adapter.close()
    assert reason is not None and "libusb" not in reason and "no USB phone" in reason


def _adapted_phone(tmp_path, phone, tool, monkeypatch, capsys):
    """A workspace with the loopback phone's predictor adapted from the CPU's
    (3 measurements) and a tiny built-in corpus; the search options they share."""
    from cli.main import main
    from hwnas.data import corpus

    monkeypatch.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    ws = _workspace(tmp_path, phone, tool)
    common = ["--workspace", str(ws), "--json", "--size", "tiny", "--space",
              str(ws / "tiny.toml")]
    assert main(["predictor", "adapt", "--from", "cpu", "--device", "loop", "--n", "3",
                 "--pool", "20", *common[:2], "--space", str(ws / "tiny.toml")]) == 0
    capsys.readouterr()
    return ws, common


@pytest.mark.slow
def test_every_strategy_searches_for_the_loopback_phone(phone, tmp_path, tool, monkeypatch,
                                                        capsys):
    """Each strategy behind the seam runs `hwnas search` for a phone target: its
    proposals are trained, and the answer is measured on the phone."""
    import json

    from cli.main import main
    from hwnas import strategies

    ws, common = _adapted_phone(tmp_path, phone, tool, monkeypatch, capsys)
    for name in ("evolution", "rl", "rl-hard", "bo", "transfer", "darts"):
        assert name in strategies.names()
        assert main(["search", "--target", "loop", "--trials", "4", "--population", "2",
                     "--cer-steps", "1", "--max-latency", "1000", "--strategy", name,
                     "--supernet-budget", "3s", "--study", name, "--no-export", *common]) == 0, name
        out = json.loads(capsys.readouterr().out)
        assert out["trials"] == 4 and out["pareto"], name
        assert out["latency_source"] == "measured", name


@pytest.mark.slow
def test_a_supernet_screened_search_for_the_loopback_phone(phone, tmp_path, tool, monkeypatch,
                                                           capsys):
    """--cer-source supernet: every feasible trial is scored with inherited
    weights, the best fine-tuned, the best of those trained stand-alone; only
    stand-alone CERs reach the answer, and a second search reuses the supernets."""
    import json

    import optuna

    from cli.main import main

    ws, common = _adapted_phone(tmp_path, phone, tool, monkeypatch, capsys)
    search = ["search", "--target", "loop", "--population", "9", "--cer-steps", "1",
              "--max-latency", "1000", "--cer-source", "supernet", "--supernet-budget", "3s",
              "--finetune", "1s", "--screen-utts", "2", "--no-export", "--no-baselines",
              *common]   # baselines bypass the screen (tests/test_final.py)
    assert main([*search, "--trials", "9"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cer_source"] == "supernet"
    assert out["scored"]["inherited"] == out["feasible_as_predicted"] == 9
    assert 1 <= out["scored"]["fine-tuned"] < 9 and 1 <= out["scored"]["trained"] < 9
    study = optuna.load_study(study_name="hwnas", storage=f"sqlite:///{ws}/runs/search/hwnas.db")
    sources = {t.number: t.user_attrs["cer_source"] for t in study.trials}
    screened = [x for t in study.trials for x in t.user_attrs.get("screen", [])]
    assert {x["utts"] for x in screened if x["source"] == "inherited"} == {2}
    assert all(x["utts"] > 2 for x in screened if x["source"] == "fine-tuned")
    assert {r["trial"] for r in out["pareto"]} <= {n for n, s in sources.items()
                                                     if s == "trained"}
    assert out["latency_source"] == "measured"
    assert main([*search, "--trials", "18"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["trials"] == 18
    assert "training the" not in captured.err   # the supernets trained above are reused


def test_bench_on_the_loopback_phone_pushes_once_and_compares_in_batches(phone, tmp_path, tool,
                                                                         capsys):
    """`hwnas bench` on a phone: benchmark_model's own cold start and series,
    two models pushed once and run in alternating batches; flags the tool cannot
    apply are refused, not ignored."""
    import json

    from cli.main import main

    ws = _workspace(tmp_path, phone, tool)
    loop = ws / "devices" / "loop.toml"     # no reference timings around each batch: quicker
    loop.write_text(loop.read_text().replace("threads = 1\n", "threads = 1\nreference = false\n"))
    ref = Path(__file__).parents[1] / "hwnas/adapters/reference/conformer_xs_chunk.tflite"
    other = tmp_path / "other.tflite"
    other.write_bytes(ref.read_bytes())
    argv = ["bench", str(ref), str(other), "--device", "loop", "--seconds", "1",
            "--workspace", str(ws)]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    first = out["models"][0]
    assert first["cold"]["load_ms"] > 0 and first["cold"]["first_ms"] > 0   # the tool's
    assert first["provenance"]["adapter"] == "android"
    assert "temps_before_c" in first["device_record"] and "temps_after_c" in first["device_record"]
    assert (phone.root / "data/local/tmp/hwnas/other_other.tflite").is_file()   # pushed once
    c = out["comparison"]
    assert "alternately in batches" in c["method"] and c["rounds"] >= 6
    assert c["models"][1]["ratio_ci_lo"] < c["models"][1]["ratio"] < c["models"][1]["ratio_ci_hi"]
    assert main(["bench", str(ref), "--device", "loop", "--value", "features=0",
                 "--workspace", str(ws)]) == 1
    assert "cannot be applied there" in capsys.readouterr().err
    # --ops: the tool is asked for its op profile; the loopback tool (LiteRT here, which
    # has no per-op timer) prints its real log without the table, rather than made-up rows
    assert main(["bench", str(ref), "--device", "loop", "--ops", "--json",
                 "--workspace", str(ws)]) == 0
    ops = json.loads(capsys.readouterr().out)["models"][0]["ops"]
    assert ops["source"] == "benchmark_model --enable_op_profiling" and ops["rows"] == []
    assert "printed no per-operator table" in ops["note"]
