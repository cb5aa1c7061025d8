"""Android phones over ADB running TFLite's ``benchmark_model`` under
``taskset``: directly over TCP or USB (adb-shell; RSA key as Google's adb
keeps it), or through the host's running adb server (``adb_server.py``).

Transport (``AdbTransport``: connect, shell, push, reconnect) is separate from
parsing (``hwnas.adapters.parsers``). Every value placed in a shell command
goes through ``shlex.quote``: a serial, path or option cannot inject a command.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.adapters._base import Adapter, DeviceError, DeviceUnavailable, Plan, Timing
from hwnas.adapters.adb_server import AdbServer, AdbServerError
from hwnas.adapters.parsers import (
    ParseError,
    parse_benchmark_model,
    parse_freqs,
    parse_op_profile,
    parse_thermal,
    split_status,
)
from hwnas.adapters.statistics import summary_from_counts
from hwnas.errors import first_line

STATUS = "hwnas-exit:"
# The phones' reference workload: one fixed TFLite graph that ships with hwnas
# (the CPU devices' reference preset, exported once; regenerate with
# `python -m hwnas.adapters.reference`). Timed before and after every
# measurement, it says how fast the phone is right now: rows keep the ratio
# to it, which carries a profile from phone to phone and through heat.
REFERENCE_FILE = Path(__file__).with_name("reference") / "conformer_xs_chunk.tflite"
REFERENCE_NAME = "conformer_xs chunk graph, TFLite fp32 (shipped with hwnas)"
REFERENCE_REMOTE = "hwnas_reference.tflite"
THERMAL_GLOB = "/sys/class/thermal/thermal_zone*"
# the policy's current cap: thermal throttling lowers it (cur_freq also moves with idle DVFS)
FREQ_GLOB = "/sys/devices/system/cpu/cpu*/cpufreq/scaling_max_freq"


def default_key_path() -> Path:
    return Path(os.environ.get("ADB_VENDOR_KEYS_DIR", "~/.android")).expanduser() / "adbkey"


def load_signer(path: Path) -> Any:
    """The RSA signer for ADB authentication; creates the key pair (as
    ``adb keygen`` does) when the file does not exist."""
    from adb_shell.auth.sign_cryptography import CryptographySigner

    path = Path(path).expanduser()
    if not path.is_file():
        _create_key_pair(path)
    return CryptographySigner(str(path))


def _create_key_pair(path: Path) -> None:
    """Several bench processes on one host may share a key file and start
    together. adb-shell's keygen writes the private key before the public
    one, so a reader could find the first without the second: generate under
    a lock into a scratch folder, then move the public key in before the
    private one. A private key that exists therefore always has its pair."""
    import fcntl
    import tempfile

    from adb_shell.auth.keygen import keygen

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():  # another process made it while this one waited
            return
        scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        keygen(str(scratch / path.name))
        os.replace(scratch / f"{path.name}.pub", path.with_name(f"{path.name}.pub"))
        os.replace(scratch / path.name, path)
        scratch.rmdir()


def preload_libusb() -> None:
    """Make libusb-1.0 loadable for adb-shell's USB transport (python-libusb1)
    without a system package: the ``libusb-package`` wheel ships the library,
    and loading it first under its soname lets python-libusb1's own lookup
    find it. A system libusb, where installed, is used as before."""
    import ctypes
    import ctypes.util

    if ctypes.util.find_library("usb-1.0"):
        return
    try:
        import libusb_package
    except ImportError:
        return
    path = libusb_package.get_library_path()
    if path is None:
        return
    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    import adb_shell.adb_device as adb_device

    if getattr(adb_device, "UsbTransport", None) is None:
        # adb_device imported its USB transport once, before the library was
        # loadable, and kept None; give it the transport now that it loads
        try:
            from adb_shell.transport.usb_transport import UsbTransport
        except (ImportError, OSError):
            return
        adb_device.UsbTransport = UsbTransport

def pick_transport(serial: str, server: str = "") -> str:
    """``auto``: "host:port" is TCP; a phone that the host's adb server lists
    goes through the server (which holds its USB interface); else USB."""
    if re.fullmatch(r"[^:\s]+:\d+", serial):
        return "tcp"
    try:
        listed = AdbServer(server, timeout_s=2.0).devices()
    except (OSError, AdbServerError):
        return "usb"
    return "server" if serial in listed or (not serial and len(listed) == 1) else "usb"


class AdbTransport:
    """One ADB connection. ``serial`` "host:port" is TCP (also ``adb tcpip``
    phones); anything else is a USB serial ("" = the only one). ``server``
    goes through the host's adb server (any serial it lists)."""

    def __init__(self, serial: str, key: Path, transport: str = "auto",
                 connect_timeout_s: float = 10.0, reconnect_timeout_s: float = 30.0,
                 server: str = "") -> None:
        self.serial = serial
        self.key = key
        self.server = server
        self.transport = transport if transport != "auto" else pick_transport(serial, server)
        self.connect_timeout_s = connect_timeout_s
        self.reconnect_timeout_s = reconnect_timeout_s
        self.dev: Any = None
        self.reconnects = 0
        from adb_shell import exceptions as ex

        # what a dropped or dead connection raises (reconnect and retry on these;
        # AdbServerError is a ConnectionError, hence an OSError)
        self.transport_errors: tuple[type[BaseException], ...] = (
            OSError, EOFError, TimeoutError, ex.TcpTimeoutException, ex.AdbConnectionError,
            ex.InvalidResponseError, ex.InvalidCommandError, ex.AdbTimeoutError)

    def describe(self) -> str:
        if self.transport == "server":
            return f"{self.serial or '(only phone)'} via {AdbServer(self.server).describe()}"
        return f"{self.transport} {self.serial or '(only USB device)'}"

    def _connect_server(self) -> None:
        server = AdbServer(self.server, timeout_s=self.connect_timeout_s)
        try:
            listed = server.devices()
        except (OSError, AdbServerError) as e:
            raise DeviceUnavailable(f"cannot reach {self.describe()}: {e}") from None
        serial = self.serial or (next(iter(listed)) if len(listed) == 1 else "")
        state = listed.get(serial)
        if state != "device":
            why = {None: f"it lists {', '.join(listed) or 'no phone'}",
                   "unauthorized": "the phone refused the server's key: accept the RSA prompt "
                                   "on its screen",
                   "offline": "the phone is offline (replug it or `adb reconnect`)"}
            raise DeviceUnavailable(f"cannot reach {self.describe()}: "
                                    f"{why.get(state, f'its state is {state}')}")
        self.dev = server.device(serial)

    def connect(self) -> None:
        if self.transport == "server":
            return self._connect_server()
        from adb_shell.adb_device import AdbDeviceTcp

        try:
            if self.transport == "tcp":
                host, port = self.serial.rsplit(":", 1)
                dev = AdbDeviceTcp(host, int(port),
                                   default_transport_timeout_s=self.connect_timeout_s)
            else:
                try:
                    preload_libusb()
                    from adb_shell.adb_device import AdbDeviceUsb
                except ImportError:
                    raise DeviceUnavailable("USB transport needs libusb1: pip install "
                                            "'adb-shell[usb]' (or connect over TCP: "
                                            "adb tcpip 5555, serial = \"PHONE_IP:5555\")") from None
                dev = AdbDeviceUsb(serial=self.serial or None,
                                   default_transport_timeout_s=self.connect_timeout_s)
            dev.connect(rsa_keys=[load_signer(self.key)], auth_timeout_s=self.connect_timeout_s,
                        transport_timeout_s=self.connect_timeout_s)
        except DeviceUnavailable:
            raise
        except Exception as e:  # noqa: BLE001 - every failure to connect is reported in one line
            reason = first_line(e)
            if "adb-shell[usb]" in reason or "libusb" in reason:
                reason = ("the USB transport needs libusb1 (pip install 'adb-shell[usb]'); or "
                          "connect over TCP: `adb tcpip 5555`, serial = \"PHONE_IP:5555\"")
            elif type(e).__name__ == "UsbDeviceNotFoundError":
                reason = f"no USB phone with serial {self.serial!r}" if self.serial \
                    else "no USB phone attached"
            elif "DeviceAuthError" in type(e).__name__:
                reason = "the phone refused our key: accept the RSA prompt on its screen"
            raise DeviceUnavailable(f"cannot reach {self.describe()}: {reason}") from None
        self.dev = dev

    def close(self) -> None:
        if self.dev is not None:
            try:
                self.dev.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
            self.dev = None

    def _call(self, what: str, fn: Any) -> Any:
        """Run ``fn(dev)``; on a dropped connection reconnect (for up to
        ``reconnect_timeout_s``) and retry once -- every call is idempotent."""
        if self.dev is None:
            self.connect()
        try:
            return fn(self.dev)
        except self.transport_errors as first:
            self.close()
            deadline = time.monotonic() + self.reconnect_timeout_s
            while True:
                try:
                    self.connect()
                    break
                except DeviceUnavailable as e:
                    if time.monotonic() > deadline:
                        raise DeviceUnavailable(f"lost {self.describe()} during {what} "
                                                f"({type(first).__name__}); {e}") from None
                    time.sleep(1.0)
            self.reconnects += 1
            try:
                return fn(self.dev)
            except self.transport_errors as e:
                self.close()
                raise DeviceUnavailable(f"lost {self.describe()} again during {what}: "
                                        f"{type(e).__name__}") from None

    def shell(self, command: str, timeout_s: float = 60.0) -> tuple[str, int | None]:
        """(output, exit status) of ``command`` in the phone's shell."""
        full = f"{command}; echo {STATUS}$?"
        text = self._call(f"`{command[:60]}`", lambda d: d.shell(
            full, timeout_s=timeout_s, read_timeout_s=timeout_s, transport_timeout_s=timeout_s))
        return split_status(text, STATUS)

    def push(self, local: Path, remote: str, mode: int = 0o644, timeout_s: float = 120.0) -> None:
        self._call(f"push {Path(local).name}", lambda d: d.push(
            str(local), remote, st_mode=0o100000 | mode, read_timeout_s=timeout_s,
            transport_timeout_s=timeout_s))

    def stat(self, remote: str) -> tuple[int, int]:
        mode, size, _ = self._call(f"stat {remote}", lambda d: d.stat(remote))
        return mode, size


@dataclass
class RemoteModel:
    path: str
    size: int


class AndroidAdapter(Adapter):
    name = "android"
    OPTIONS = {
        "serial": ("", "\"host:port\" (TCP) or a USB serial; empty = the only USB phone"),
        "transport": ("auto", "auto | tcp | usb | server (the host's adb server; auto "
                              "picks it for a USB serial the server lists)"),
        "adb_server": ("", "the adb server as HOST:PORT; empty = 127.0.0.1 and "
                           "$ANDROID_ADB_SERVER_PORT or 5037"),
        "adb_key": ("", "RSA private key for ADB auth; empty = ~/.android/adbkey "
                        "(created when missing)"),
        "benchmark_binary": ("", "host path of TFLite's benchmark_model for this phone's ABI; "
                                 "pushed when the phone lacks it"),
        "remote_dir": ("/data/local/tmp/hwnas", "folder on the phone for models and the tool"),
        "delegate": ("cpu", "cpu | gpu | nnapi"),
        "threads": (4, "--num_threads"),
        "cpu_mask": ("c0", "taskset mask (hex) of the cores to run on, e.g. c0 = cores 6-7"),
        "format": ("tflite", "tflite | tflite-dynamic | tflite-int8"),
        "max_temp_c": (45.0, "wait for the hottest thermal zone to cool below this"),
        "cooldown_timeout_s": (300.0, "give up waiting (and flag the measurement) after this"),
        "reference": (True, "time the shipped reference model with benchmark_model before "
                            "and after every measurement (same mask, threads, delegate): "
                            "rows keep the ratio to it, and a slow-down flags throttling"),
        "reference_seconds": (0.5, "how long each reference timing runs"),
        "op_profiling": (False, "pass --enable_op_profiling=true (slower; per-op table kept)"),
        "connect_timeout_s": (10.0, "ADB connect/auth timeout"),
        "reconnect_timeout_s": (30.0, "how long to retry a dropped connection"),
        "run_timeout_s": (600.0, "longest one benchmark run may take"),
    }
    CHOICES = {"transport": ("auto", "tcp", "usb", "server"), "delegate": ("cpu", "gpu", "nnapi"),
               "format": ("tflite", "tflite-dynamic", "tflite-int8")}
    FORMATS = CHOICES["format"]
    RANGES = {"threads": (1, 64), "reference_seconds": (0.05, 60.0), "max_temp_c": (20.0, 120.0)}

    @classmethod
    def validate_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        out = super().validate_options(options)
        if not re.fullmatch(r"[0-9a-fA-F]+", out["cpu_mask"]) or int(out["cpu_mask"], 16) == 0:
            raise ValueError(f"cpu_mask must be a non-zero hex mask like \"c0\", "
                             f"got {out['cpu_mask']!r}")
        server = out["adb_server"]
        if server and not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}", server):
            raise ValueError(f"adb_server must be HOST:PORT, e.g. \"127.0.0.1:5037\", "
                             f"got {server!r}")
        if not out["remote_dir"].startswith("/"):
            raise ValueError("remote_dir must be an absolute path on the phone")
        return out

    def __init__(self, device: str, options: dict[str, Any]) -> None:
        super().__init__(device, options)
        self._transport: AdbTransport | None = None
        self._details: dict[str, Any] | None = None
        self._reference: str | None = None            # its path on the phone, once pushed
        self._throttled: dict[str, Any] | None = None  # the reference before a throttled run

    @property
    def format(self) -> str:
        return self.options["format"]

    @property
    def tool(self) -> str:
        return f"{self.options['remote_dir'].rstrip('/')}/benchmark_model"

    def transport(self) -> AdbTransport:
        if self._transport is None:
            key = Path(self.options["adb_key"]).expanduser() if self.options["adb_key"] \
                else default_key_path()
            self._transport = AdbTransport(self.options["serial"], key, self.options["transport"],
                                           self.options["connect_timeout_s"],
                                           self.options["reconnect_timeout_s"],
                                           self.options["adb_server"])
        return self._transport

    def check(self) -> str | None:
        try:
            import adb_shell  # noqa: F401
        except ImportError:
            return "adb-shell is not installed (pip install adb-shell)"
        binary = self.options["benchmark_binary"]
        try:
            t = self.transport()
            if t.dev is None:
                t.connect()
            out, rc = t.shell(f"test -x {shlex.quote(self.tool)}")
        except DeviceUnavailable as e:
            return str(e)
        if rc != 0:
            if not binary:
                return (f"{self.tool} is not on the phone and no benchmark_binary is set in the "
                        f"device file")
            if not Path(binary).expanduser().is_file():
                return f"benchmark_binary {binary} does not exist on this host"
        return None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _sh(self, command: str, timeout_s: float = 60.0, what: str = "") -> str:
        out, rc = self.transport().shell(command, timeout_s)
        if rc != 0:
            last = (out.strip().splitlines() or ["no output"])[-1]
            raise DeviceError(f"{what or command.split()[0]} failed on the phone "
                              f"(exit {rc}): {last}")
        return out

    def _ensure_tool(self) -> None:
        t = self.transport()
        q = shlex.quote
        self._sh(f"mkdir -p {q(self.options['remote_dir'])}", what="mkdir")
        _, rc = t.shell(f"test -x {q(self.tool)}")
        if rc == 0:
            return
        binary = self.options["benchmark_binary"]
        if not binary:
            raise DeviceError(f"{self.tool} is missing on the phone; set benchmark_binary in "
                              f"the device file to the host path of benchmark_model")
        t.push(Path(binary).expanduser(), self.tool, mode=0o755)
        self._sh(f"chmod 755 {q(self.tool)}", what="chmod")

    def prepare(self, artifact: Any) -> RemoteModel:
        self._ensure_tool()
        local = Path(artifact.path)
        remote = f"{self.options['remote_dir'].rstrip('/')}/{artifact.arch_id}_{local.name}"
        self.transport().push(local, remote)
        _, size = self.transport().stat(remote)
        if size != local.stat().st_size:
            raise DeviceError(f"push of {local.name} arrived with {size} of "
                              f"{local.stat().st_size} bytes")
        return RemoteModel(remote, size)

    def release(self, handle: RemoteModel) -> None:
        try:
            self.transport().shell(f"rm -f {shlex.quote(handle.path)}")
        except DeviceUnavailable:
            pass

    def thermal(self) -> tuple[dict[str, float], list[int]]:
        """(zone -> °C, per-core kHz) as the phone reports them now."""
        t = self.transport()
        types, _ = t.shell(f"cat {THERMAL_GLOB}/type")
        temps, _ = t.shell(f"cat {THERMAL_GLOB}/temp")
        freqs, _ = t.shell(f"cat {FREQ_GLOB}")
        return parse_thermal(types, temps), parse_freqs(freqs)

    def _cool_down(self) -> tuple[dict[str, float], list[int], float, bool]:
        limit = self.options["max_temp_c"]
        start = time.monotonic()
        while True:
            temps, freqs = self.thermal()
            hottest = max(temps.values(), default=0.0)
            waited = time.monotonic() - start
            if hottest <= limit:
                return temps, freqs, waited, True
            if waited >= self.options["cooldown_timeout_s"]:
                return temps, freqs, waited, False
            time.sleep(min(2.0, max(self.options["cooldown_timeout_s"] - waited, 0.1)))

    def command(self, remote: str, plan: Plan, op_profiling: bool | None = None) -> str:
        q = shlex.quote
        o = self.options
        args = [f"--graph={remote}", f"--num_threads={o['threads']}",
                f"--warmup_runs={plan.warmup_runs}", f"--num_runs={plan.min_runs}",
                f"--min_secs={plan.min_seconds:g}", f"--max_secs={plan.max_seconds:g}",
                "--report_peak_memory_footprint=true"]
        if o["delegate"] == "gpu":
            args.append("--use_gpu=true")
        elif o["delegate"] == "nnapi":
            args.append("--use_nnapi=true")
        if o["op_profiling"] if op_profiling is None else op_profiling:
            args.append("--enable_op_profiling=true")
        return " ".join(["taskset", q(o["cpu_mask"]), q(self.tool), *map(q, args)])

    # -- the reference workload ----------------------------------------------
    def _reference_path(self) -> str:
        """Push the shipped reference model once (again only if its size differs)."""
        if self._reference is None:
            self._ensure_tool()
            local = reference_model()
            remote = f"{self.options['remote_dir'].rstrip('/')}/{REFERENCE_REMOTE}"
            try:
                _, size = self.transport().stat(remote)
            except DeviceError:
                size = -1
            if size != local.stat().st_size:
                self.transport().push(local, remote)
            self._reference = remote
        return self._reference

    def reference_summary(self, seconds: float) -> dict[str, Any] | None:
        """The shipped reference model timed by benchmark_model for ``seconds``
        under this device's mask, threads and delegate (None: turned off)."""
        if not self.options["reference"]:
            return None
        plan = Plan(warmup_runs=3, min_runs=10, min_seconds=seconds,
                    max_seconds=max(5.0, 4 * seconds))
        out, rc = self.transport().shell(self.command(self._reference_path(), plan, False),
                                         timeout_s=self.options["run_timeout_s"])
        try:
            r = parse_benchmark_model(out).get("runs", {})
        except ParseError as e:
            raise DeviceError(f"the reference model: {e} (exit {rc})") from None
        if rc not in (0, None) or not r.get("count"):
            raise DeviceError(f"benchmark_model ran the reference model with exit {rc} and "
                              f"no run statistics")
        s = summary_from_counts(int(r["count"]), r["avg"], r.get("std", 0.0), r["min"],
                                r["max"], r.get("median"), r.get("p95"))
        ms = s.get("p50_ms", s["mean_ms"])
        return {"ms": ms, "ci_lo": s.get("p50_ci_lo", ms), "ci_hi": s.get("p50_ci_hi", ms),
                "ci_method": s.get("ci_method", "single run"), "n": s["n"]}

    def _recover(self, normal: dict[str, Any], limit: float) -> tuple[float, dict | None]:
        """After a throttled run: wait until the reference is back within
        ``limit`` of its speed before that run (or the cool-down timeout).
        Returns (seconds waited, the last reference timing)."""
        start, last = time.monotonic(), None
        while True:
            last = self.reference_summary(self.options["reference_seconds"])
            waited = time.monotonic() - start
            if last is None or last["ms"] <= normal["ci_hi"] * (1 + limit) \
                    or waited >= self.options["cooldown_timeout_s"]:
                return waited, last
            time.sleep(min(2.0, max(self.options["cooldown_timeout_s"] - waited, 0.1)))

    def _run(self, handle: RemoteModel, plan: Plan) -> Timing:
        before, f_before, waited, cool = self._cool_down()
        problems = []
        ref0 = None
        if self._throttled is not None:
            slept, ref0 = self._recover(self._throttled, plan.max_drift)
            waited += slept
            if ref0 is not None and ref0["ms"] > self._throttled["ci_hi"] * (1 + plan.max_drift):
                problems.append(f"throttled: the reference still takes {ref0['ms']:.2f} ms "
                                f"after {slept:.0f} s of cool-down (normal "
                                f"{self._throttled['ms']:.2f} ms)")
        elif self.options["reference"]:
            ref0 = self.reference_summary(self.options["reference_seconds"])
        out, rc = self.transport().shell(self.command(handle.path, plan),
                                         timeout_s=self.options["run_timeout_s"])
        try:
            res = parse_benchmark_model(out)
        except ParseError as e:
            raise DeviceError(f"{e} (exit {rc})") from None
        if rc not in (0, None):
            raise DeviceError(f"benchmark_model exited {rc}")
        ref1 = self.reference_summary(self.options["reference_seconds"]) \
            if ref0 is not None else None
        after, f_after = self.thermal()
        if not cool:
            problems.append(f"hot: {max(before.values()):.1f} °C after waiting {waited:.0f} s "
                            f"(limit {self.options['max_temp_c']:.0f} °C)")
        if f_before and f_after and len(f_before) == len(f_after):
            mask = int(self.options["cpu_mask"], 16)
            for i in [i for i in range(len(f_before)) if mask >> i & 1]:
                if f_before[i] and f_after[i] < 0.9 * f_before[i]:  # throttled during the run
                    problems.append(f"drift: core clock fell from {f_before[i] / 1e3:.0f} to "
                                    f"{f_after[i] / 1e3:.0f} MHz during the run (cpu{i})")
                    break
        r = res.get("runs", {})
        count = int(r.get("count", 0))
        if count == 0:
            raise DeviceError("benchmark_model printed no run statistics")
        summary = summary_from_counts(count, r["avg"], r.get("std", 0.0), r["min"], r["max"],
                                      r.get("median"), r.get("p95"))
        self._throttled = None
        if ref0 is not None and ref1 is not None:
            summary.update(relative_to_reference(summary, ref0, ref1))
            slowed = ref1["ms"] / ref0["ms"] - 1
            # slower after than before beyond both intervals and the drift limit:
            # the phone slowed down during the run (heat, a governor, a neighbour)
            if ref1["ci_lo"] > ref0["ci_hi"] and slowed > plan.max_drift:
                problems.append(f"throttled: the reference slowed from {ref0['ms']:.2f} to "
                                f"{ref1['ms']:.2f} ms during the run ({slowed:+.0%}, beyond "
                                f"its 95% interval)")
                self._throttled = ref0
        mem = res.get("memory", {})
        memory = mem.get("overall_mb", mem.get("peak_mb"))
        extra = {"tool_format": res.get("format"), "temps_before_c": before,
                 "temps_after_c": after, "freqs_before_khz": f_before, "freqs_after_khz": f_after,
                 "cooldown_s": round(waited, 1), "memory": mem, "problems": problems,
                 "delegate": res.get("delegate"), "inference_avg_us": res["inference_avg_us"],
                 "warmup_avg_us": res["warmup_avg_us"],
                 "reference_before": ref0, "reference_after": ref1}
        ops = parse_op_profile(out)
        if ops:
            extra["ops"] = ops
        return Timing(summary=summary, memory_mb=memory, init_ms=res["init_us"] / 1e3,
                      first_ms=res["first_us"] / 1e3, extra=extra)

    def describe(self) -> dict[str, Any]:
        if self._details is None:
            from adb_shell import __version__ as adb_shell_version

            props = {}
            for key in ("ro.product.manufacturer", "ro.product.model",
                        "ro.build.version.release", "ro.product.cpu.abi", "ro.hardware"):
                out, _ = self.transport().shell(f"getprop {shlex.quote(key)}")
                props[key] = out.strip()
            self._details = {
                "runtime": "TFLite benchmark_model", "transport": self.transport().describe(),
                "threads": self.options["threads"], "delegate": self.options["delegate"],
                "cpu_mask": self.options["cpu_mask"], "phone": props,
                "reference": f"{REFERENCE_NAME} sha256 {reference_sha256()[:12]}"
                if self.options["reference"] else None,
                "adb_shell": adb_shell_version}
        return dict(self._details)


def reference_model() -> Path:
    """The shipped reference model, checked against its recorded digest."""
    if not REFERENCE_FILE.is_file():
        raise DeviceError(f"the reference model {REFERENCE_FILE} is missing from this "
                          f"installation; reinstall hwnas or set reference = false")
    return REFERENCE_FILE


def reference_sha256() -> str:
    import hashlib

    return hashlib.sha256(reference_model().read_bytes()).hexdigest()


def relative_to_reference(summary: dict[str, Any], ref0: dict[str, Any],
                          ref1: dict[str, Any]) -> dict[str, Any]:
    """The run as a ratio to the reference timed before and after it: the
    reference's time is their geometric mean, and the ratio's interval adds
    the relative half-widths of the run's p50 and of the reference in
    quadrature (independent errors)."""
    import math

    ref = math.sqrt(ref0["ms"] * ref1["ms"])
    p50 = summary.get("p50_ms", summary["mean_ms"])
    rel = p50 / ref
    h_run = (summary.get("p50_ci_hi", p50) - summary.get("p50_ci_lo", p50)) / (2 * p50)
    h_ref = sum((r["ci_hi"] - r["ci_lo"]) / (2 * r["ms"]) for r in (ref0, ref1)) / 2
    h = math.hypot(h_run, h_ref)
    return {"ref_p50_ms": ref, "rel_p50": rel, "rel_p50_ci_lo": rel * (1 - h),
            "rel_p50_ci_hi": rel * (1 + h)}
