"""`hwnas lab join`: a Ray node that advertises this host's phones.

Ray fixes a node's resources when the node starts, so when a phone comes or
goes the node is started again with the new set: ``ray start --block`` in a
process group of its own, stopped by signalling that group. A measurement
running on a phone that went away fails there, and the driver moves it (or
waits for the phone).

The node's workers get ``HWNAS_LAB_WORKSPACE`` (this host's device files
name its phones) and ``HWNAS_LAB_NODE`` (the name rows record). By default
the node offers no CPU and no GPU: exports and training go to other nodes,
and nothing competes with a measurement on this host. A GPU host joins the
same way offering its GPUs (``num_gpus``): the trials that train on a GPU
(``hwnas search --train-device cuda --executor ray``) go there, each given
its share of one (``--gpus-per-trial``) by Ray as its ``cuda:0``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .discover import Scan, scan

#: a node's resource naming its bench host, so a cluster listing can show it
HOST_PREFIX = "lab-host:"


def ray_binary() -> str:
    here = Path(sys.executable).parent / "ray"
    found = str(here) if here.is_file() else shutil.which("ray")
    if found is None:
        raise ValueError("the lab needs Ray: pip install 'hwnas[lab]' (ray==2.60.0)")
    return found


class BenchNode:
    def __init__(self, address: str, workspace: Path, *, num_cpus: int = 0, num_gpus: int = 0,
                 node_ip: str | None = None, name: str | None = None, adb_server: str = "",
                 interval_s: float = 5.0, say: Callable[[str], None] | None = None,
                 log: Path | None = None) -> None:
        self.address = address
        self.workspace = Path(workspace)
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.node_ip = node_ip
        self.name = name or socket.gethostname()
        self.adb_server = adb_server
        self.interval_s = interval_s
        self.say = say or (lambda line: None)
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.phones: dict[str, str] = {}
        self.absent: dict[str, str] = {}
        self.unknown: list[str] = []
        self.restarts = 0

    def command(self, resources: dict[str, float]) -> list[str]:
        cmd = [ray_binary(), "start", f"--address={self.address}", "--block",
               f"--num-cpus={self.num_cpus}", f"--num-gpus={self.num_gpus}",
               f"--resources={json.dumps(resources)}", "--disable-usage-stats"]
        if self.node_ip:
            cmd.append(f"--node-ip-address={self.node_ip}")
        return cmd

    def start(self, found: Scan) -> None:
        env = {**os.environ, "HWNAS_LAB_WORKSPACE": str(self.workspace.resolve()),
               "HWNAS_LAB_NODE": self.name, "RAY_USAGE_STATS_ENABLED": "0"}
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        resources = {**found.resources(), f"{HOST_PREFIX}{self.name}": 1.0}
        self.proc = subprocess.Popen(self.command(resources), env=env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.phones = dict(found.present)

    def stop(self) -> None:
        """Stop the node: its raylet and everything in its process group."""
        if self.proc is None:
            return
        # a node told to leave (SIGTERM to `lab join`) is gone within 5 s: its raylet
        # gets 3 s to leave cleanly, then is killed (the head sees a dead node either way)
        for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 1.5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc = None

    def check(self) -> bool:
        """Scan once; (re)start the node when the phones changed. True when
        the node was (re)started. Each problem is said once, until it changes."""
        found = scan(self.workspace, self.adb_server)
        if self.proc is not None and self.proc.poll() is not None:
            self.say(f"the Ray node exited ({self.proc.returncode}); starting it again")
            self.proc = None
        for name in sorted(set(found.absent) - set(self.absent) - set(self.phones)):
            self.say(f"{name}: {found.absent[name]}")
        for serial in sorted(set(found.unknown) - set(self.unknown)):
            self.say(f"{serial} is attached but has no device file: copy a shipped one "
                     f"(devices/pixel6.toml) to {self.workspace / 'devices'}/NAME.toml with "
                     f"serial = \"{serial}\"")
        self.absent, self.unknown = dict(found.absent), list(found.unknown)
        want = bool(found.present or self.num_cpus)
        if found.present == self.phones and (self.proc is not None) == want:
            return False
        for name in sorted(set(self.phones) - set(found.present)):
            self.say(f"{name} gone ({found.absent.get(name, 'not found')}); "
                     "no longer advertised")
        for name in sorted(set(found.present) - set(self.phones)):
            self.say(f"{name} ({found.present[name]}) found; advertised as device:{name}")
        self.stop()
        self.phones = {}
        if want:
            self.start(found)
            self.restarts += 1
        return True

    def run(self, until: Callable[[], bool] | None = None) -> None:
        """Keep the node in step with the phones until ``until()`` (or
        Ctrl-C); the node is stopped on the way out."""
        try:
            while until is None or not until():
                self.check()
                time.sleep(self.interval_s)
        finally:
            self.stop()
