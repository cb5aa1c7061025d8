"""A whole lab on one host, on loopback: a Ray head, and one bench node per
loopback ADB phone (each a separate ``ray start`` process with a workspace
of its own that names only its phone), plus the driver's workspace that
names them all.

Ray binds its servers to every interface, so this refuses to run outside a
loopback-only network namespace; ``in_loopback_namespace(cmd)`` runs a
command in a fresh one (``unshare -n``, which needs root or user
namespaces).

    with LoopbackLab(Path("/tmp/lab"), phones=["loop-a", "loop-b"]) as lab:
        run hwnas against lab.address with workspace lab.workspace
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from hwnas.testing.adb_device import LoopbackDevice

#: the profile's device: the phones' model (plan and format); the phones are its copies
KIND = "loop"

#: a loopback phone's device file (fast plan: warm-up 2, 5 runs; no quality gates)
DEVICE_FILE = """description = "loopback phone{what}"
adapter = "android"
[options]
serial = "{serial}"
adb_key = "{key}"
benchmark_binary = "{tool}"
threads = 1
connect_timeout_s = 3.0
reconnect_timeout_s = 3.0
[plan]
warmup_runs = 2
min_runs = 5
min_seconds = 0.05
max_ci = inf
max_drift = 1.0
"""


def device_file(serial: str, key: Path, tool: Path, what: str = "") -> str:
    return DEVICE_FILE.format(what=what, serial=serial, key=key, tool=tool)


#: the space the lab's tests and examples profile: small models, quick to convert
TINY_SPACE = """[choices]
frontend = ["logmel"]
n_filters = [40]
subsampling = ["conv2d4"]
encoder = ["conformer", "transformer", "contextnet"]
streaming = [true]
num_layers = [1]
d_model = [96]
decoder = ["ctc"]
"""


def interfaces() -> list[str]:
    """This network namespace's interfaces (/sys/class/net would show the
    namespace that mounted /sys)."""
    import socket

    return sorted(name for _, name in socket.if_nameindex())


def is_loopback_only() -> bool:
    return interfaces() == ["lo"]


def in_loopback_namespace(cmd: list[str]) -> list[str]:
    """``cmd`` run in a new network namespace holding only loopback (up)."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


def run_in_loopback_namespace(cmd: list[str], timeout_s: float | None = None,
                              capture: bool = False, **kw: Any) -> subprocess.CompletedProcess:
    """``cmd`` in a new loopback-only namespace; afterwards (done, timed out or
    interrupted) every process still in that namespace is killed: a Ray head
    or node left by a killed run must not outlive it. ``capture``: stdout and
    stderr as text (through files: a leftover process may hold a pipe open)."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        if capture:
            kw.update(stdout=out, stderr=err)
        proc = subprocess.Popen(in_loopback_namespace(cmd), **kw)
        netns = None
        try:
            for _ in range(50):   # the namespace exists once `unshare` has run
                try:
                    ns = os.readlink(f"/proc/{proc.pid}/ns/net")
                except OSError:
                    break
                if ns != os.readlink("/proc/self/ns/net"):
                    netns = ns
                    break
                time.sleep(0.1)
            proc.wait(timeout_s)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if netns is not None:
                _kill_namespace(netns)
        text = [(f.seek(0), f.read().decode(errors="replace"))[1] if capture else None
                for f in (out, err)]
    return subprocess.CompletedProcess(proc.args, proc.returncode, *text)


def _kill_namespace(netns: str) -> None:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/net") == netns:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            continue


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackLab:
    def __init__(self, root: Path, phones: list[str], head_cpus: int = 1) -> None:
        if not is_loopback_only():
            raise RuntimeError(f"refusing to start Ray with interfaces {interfaces()}: run in a "
                               "loopback-only network namespace (in_loopback_namespace)")
        self.root = Path(root)
        self.head_cpus = head_cpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.workspace = self.root / "driver"
        self.tool = self.root / "host" / "benchmark_model"
        self.phones: dict[str, LoopbackDevice] = {}
        self.nodes: dict[str, Any] = {}
        self.head: subprocess.Popen | None = None
        self.names = list(phones)

    # --- files -------------------------------------------------------------------
    def _device_file(self, folder: Path, name: str, serial: str, what: str = "") -> None:
        (folder / "devices").mkdir(parents=True, exist_ok=True)
        (folder / "devices" / f"{name}.toml").write_text(device_file(
            serial, self.root / "keys" / "adbkey", self.tool, what))

    def bench_workspace(self, name: str) -> Path:
        return self.root / f"bench-{name}"

    # --- processes ----------------------------------------------------------------
    def start(self) -> LoopbackLab:
        from hwnas.lab.node import ray_binary

        self.tool.parent.mkdir(parents=True, exist_ok=True)
        self.tool.write_text("#!/bin/sh\n# stands in for benchmark_model: the loopback phone "
                             "runs its own\n")
        self._device_file(self.workspace, KIND, "", " (the model: plan and format)")
        for name in self.names:
            self.start_phone(name)
            self._device_file(self.workspace, name, self.serial(name))
            self._device_file(self.bench_workspace(name), name, self.serial(name))
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        log = (self.root / "head.log").open("ab")
        self.head = subprocess.Popen(
            [ray_binary(), "start", "--head", "--block", f"--port={self.port}",
             "--node-ip-address=127.0.0.1", f"--num-cpus={self.head_cpus}", "--num-gpus=0",
             "--include-dashboard=false", "--disable-usage-stats"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for(lambda r: r.get("CPU"), 90, "the head up")
        for name in self.names:   # one at a time: nodes starting together time out here
            self.start_node(name)
            self.wait_for(lambda r, n=name: r.get(f"device:{n}"), 90, f"{name} advertised")
        return self

    def serial(self, name: str) -> str:
        return f"127.0.0.1:{self.phones[name].port}"

    def start_phone(self, name: str, port: int = 0) -> LoopbackDevice:
        self.phones[name] = LoopbackDevice(self.root / f"phone-{name}", port=port).start()
        return self.phones[name]

    def stop_phone(self, name: str) -> int:
        """Unplug it; returns its port (to plug it back in on the same serial)."""
        port = self.phones[name].port
        self.phones.pop(name).stop()
        return port

    def start_node(self, name: str) -> None:
        from hwnas.lab import BenchNode, scan

        node = BenchNode(self.address, self.bench_workspace(name), node_ip="127.0.0.1",
                         name=f"bench-{name}", log=self.root / f"node-{name}.log")
        node.start(scan(self.bench_workspace(name)))
        self.nodes[name] = node

    def kill_node(self, name: str) -> None:
        """kill -9 the node's processes (its raylet and workers go with it)."""
        node = self.nodes.pop(name)
        os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait(10)

    def resources(self) -> dict[str, float]:
        import ray

        from hwnas.execution.ray import connect

        connect(self.address)
        return ray.cluster_resources()

    def wait_for(self, ok: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if ok(self.resources()):
                    return
            except ConnectionError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the loopback lab: not {what} after {timeout_s:.0f} s")

    def stop(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for node in self.nodes.values():
            node.stop()
        self.nodes.clear()
        if self.head is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.head.pid, sig)
                    self.head.wait(15)
                    break
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    continue
            self.head = None
        for phone in self.phones.values():
            phone.stop()
        self.phones.clear()

    def __enter__(self) -> LoopbackLab:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def can_unshare() -> bool:
    """Whether this process may make a network namespace."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    r = subprocess.run(in_loopback_namespace(["true"]), capture_output=True, timeout=30)
    return r.returncode == 0


class Probe:
    """A unit that only waits ``seconds`` on a device's resource (or a CPU):
    what the executor itself costs per unit, measured against it."""

    def __init__(self, seconds: float, device: str | None = None) -> None:
        self.seconds = seconds
        self.device = device

    def run(self, ctx: Any) -> float:
        t = time.perf_counter()
        time.sleep(self.seconds)
        return time.perf_counter() - t

    def needs(self) -> dict[str, Any]:
        if self.device is None:
            return {"num_cpus": 1}
        from hwnas.execution import device_resource

        return {"num_cpus": 0, "resources": {device_resource(self.device): 1}}
