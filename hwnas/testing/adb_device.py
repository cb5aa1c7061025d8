"""A loopback Android device: the device side of the ADB wire protocol over
TCP, for testing the Android path without a phone.

    python -m hwnas.testing.adb_device --port 5555 --root /tmp/phone

It answers CNXN (optionally after AUTH, checking RSA signatures and accepting
new public keys as a user tapping "Allow" would), serves ``shell:`` and
``sync:`` streams (OPEN/OKAY/WRTE/CLSE with per-write acknowledgement), keeps
pushed files under ROOT (device path /data/x is ROOT/data/x), and runs a small
shell: echo, cat, ls, mkdir, rm, chmod, test/[, true, false, sleep, getprop,
taskset, ``;``/``&&``/``||``, globs and ``$?``. Running an executable named
``benchmark_model`` runs ``hwnas.testing.benchmark_model`` -- the pushed
.tflite on the host's LiteRT, printing TFLite benchmark_model's format.
Nothing is executed on the host except that tool. It works with Google's
``adb`` client (``adb connect 127.0.0.1:PORT``) as well as adb-shell.

The device also has /sys thermal zones and cpufreq files that tests may edit
(to make the "phone" hot, for instance), and ROOT/.loopback/slowdown, where
"FACTOR UNTIL" makes its benchmark_model that many times slower until then
(a phone that throttles for a while).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import queue
import secrets
import shlex
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from hwnas.testing.adb_protocol import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_VERSION,
    A_WRTE,
    AUTH_RSAPUBLICKEY,
    AUTH_SIGNATURE,
    AUTH_TOKEN,
    HEADER_SIZE,
    MAX_PAYLOAD,
    decode_android_pubkey,
    pack,
    unpack_header,
)

PROPS = {
    "ro.product.manufacturer": "hwnas",
    "ro.product.model": "hwnas loopback (host CPU)",
    "ro.product.name": "hwnas_loopback",
    "ro.product.device": "loopback",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.product.cpu.abi": os.uname().machine,
    "ro.hardware": "loopback",
}
# (type, millidegrees): names as on a Tensor-based phone
THERMAL = [("BIG", 36000), ("MID", 35000), ("LITTLE", 34000), ("battery", 31000)]
CPU_KHZ = [1803000] * 4 + [2253000] * 2 + [2802000] * 2
ACK_TIMEOUT_S = 30.0


def seed_sysfs(root: Path) -> None:
    """Create thermal and cpufreq files unless a test already wrote them."""
    for i, (kind, temp) in enumerate(THERMAL):
        zone = root / f"sys/class/thermal/thermal_zone{i}"
        zone.mkdir(parents=True, exist_ok=True)
        if not (zone / "type").exists():
            (zone / "type").write_text(kind + "\n")
            (zone / "temp").write_text(f"{temp}\n")
    for i, khz in enumerate(CPU_KHZ):
        d = root / f"sys/devices/system/cpu/cpu{i}/cpufreq"
        d.mkdir(parents=True, exist_ok=True)
        for name in ("scaling_cur_freq", "scaling_max_freq", "cpuinfo_max_freq"):
            if not (d / name).exists():
                (d / name).write_text(f"{khz}\n")
    (root / "data/local/tmp").mkdir(parents=True, exist_ok=True)


class Shell:
    """A tiny POSIX-like shell over files under ``root``; returns (output, status)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.status = 0

    def path(self, device_path: str) -> Path:
        p = (self.root / device_path.lstrip("/")).resolve()
        if p != self.root and self.root not in p.parents:
            raise PermissionError(f"{device_path}: outside the device")
        return p

    def _glob(self, word: str) -> list[str]:
        if not any(c in word for c in "*?[") or not word.startswith("/"):
            return [word]
        parts = word.strip("/").split("/")
        found = [self.root]
        for part in parts:
            nxt = []
            for base in found:
                if any(c in part for c in "*?["):
                    if base.is_dir():
                        nxt += [base / n for n in sorted(os.listdir(base))
                                if fnmatch.fnmatchcase(n, part)]
                elif (base / part).exists():
                    nxt.append(base / part)
            found = nxt
        if not found:
            return [word]
        return ["/" + str(p.relative_to(self.root)) for p in found]

    def run(self, line: str) -> tuple[bytes, int]:
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lex.whitespace_split = True
        try:
            tokens = list(lex)
        except ValueError as e:
            return f"/system/bin/sh: syntax error: {e}\n".encode(), 2
        out = bytearray()
        cmd: list[str] = []
        skip = False
        for tok in tokens + [";"]:
            if tok in (";", "&&", "||"):
                if cmd and not skip:
                    data, self.status = self.command(cmd)
                    out += data
                cmd = []
                skip = (tok == "&&" and self.status != 0) or (tok == "||" and self.status == 0)
            elif tok in ("|", "&", "&&&", "|||") or set(tok) <= set(";&|"):
                return bytes(out) + f"/system/bin/sh: unsupported: {tok}\n".encode(), 2
            else:
                cmd += self._glob(tok.replace("$?", str(self.status)))
        return bytes(out), self.status

    def command(self, argv: list[str]) -> tuple[bytes, int]:
        name, args = argv[0], argv[1:]
        try:
            fn = getattr(self, "cmd_" + name.replace("[", "test"), None)
            if fn is not None:
                return fn(args)
            target = self.path(name) if "/" in name else None
            if target is not None and target.name == "benchmark_model" and target.is_file():
                if not os.access(target, os.X_OK):
                    msg = f"/system/bin/sh: {name}: can't execute: Permission denied\n"
                    return msg.encode(), 126
                return self.benchmark(args)
            return f"/system/bin/sh: {name}: inaccessible or not found\n".encode(), 127
        except PermissionError as e:
            return f"{name}: {e}\n".encode(), 1

    # -- builtins ---------------------------------------------------------------
    def cmd_echo(self, a: list[str]) -> tuple[bytes, int]:
        return (" ".join(a) + "\n").encode(), 0

    def cmd_true(self, a: list[str]) -> tuple[bytes, int]:
        return b"", 0

    def cmd_false(self, a: list[str]) -> tuple[bytes, int]:
        return b"", 1

    def cmd_sleep(self, a: list[str]) -> tuple[bytes, int]:
        time.sleep(float(a[0]) if a else 0)
        return b"", 0

    def cmd_cat(self, a: list[str]) -> tuple[bytes, int]:
        out, rc = bytearray(), 0
        for p in a:
            f = self.path(p)
            if f.is_file():
                out += f.read_bytes()
            else:
                out += f"cat: {p}: No such file or directory\n".encode()
                rc = 1
        return bytes(out), rc

    def cmd_ls(self, a: list[str]) -> tuple[bytes, int]:
        out, rc = bytearray(), 0
        for p in [x for x in a if not x.startswith("-")] or ["/"]:
            f = self.path(p)
            if f.is_dir():
                out += "".join(n + "\n" for n in sorted(os.listdir(f))).encode()
            elif f.exists():
                out += (p + "\n").encode()
            else:
                out += f"ls: {p}: No such file or directory\n".encode()
                rc = 1
        return bytes(out), rc

    def cmd_mkdir(self, a: list[str]) -> tuple[bytes, int]:
        parents = "-p" in a
        for p in [x for x in a if not x.startswith("-")]:
            try:
                self.path(p).mkdir(parents=parents, exist_ok=parents)
            except (FileExistsError, FileNotFoundError) as e:
                return f"mkdir: '{p}': {e.strerror}\n".encode(), 1
        return b"", 0

    def cmd_rm(self, a: list[str]) -> tuple[bytes, int]:
        import shutil

        flags = "".join(x[1:] for x in a if x.startswith("-"))
        for p in [x for x in a if not x.startswith("-")]:
            f = self.path(p)
            if f.is_dir() and "r" in flags:
                shutil.rmtree(f)
            elif f.is_file():
                f.unlink()
            elif "f" not in flags:
                return f"rm: {p}: No such file or directory\n".encode(), 1
        return b"", 0

    def cmd_chmod(self, a: list[str]) -> tuple[bytes, int]:
        if len(a) < 2:
            return b"chmod: Needs 2 arguments\n", 1
        try:
            mode = int(a[0], 8)
        except ValueError:
            return f"chmod: bad mode '{a[0]}'\n".encode(), 1
        for p in a[1:]:
            f = self.path(p)
            if not f.exists():
                return f"chmod: {p}: No such file or directory\n".encode(), 1
            f.chmod(mode)
        return b"", 0

    def cmd_test(self, a: list[str]) -> tuple[bytes, int]:
        a = a[:-1] if a and a[-1] == "]" else a
        if len(a) == 2 and a[0] in ("-f", "-e", "-d", "-x", "-s"):
            f = self.path(a[1])
            ok = {"-f": f.is_file(), "-e": f.exists(), "-d": f.is_dir(),
                  "-x": f.is_file() and os.access(f, os.X_OK),
                  "-s": f.is_file() and f.stat().st_size > 0}[a[0]]
            return b"", 0 if ok else 1
        if len(a) == 1:
            return b"", 0 if a[0] else 1
        return b"test: unsupported expression\n", 2

    def cmd_getprop(self, a: list[str]) -> tuple[bytes, int]:
        if a:
            return (PROPS.get(a[0], "") + "\n").encode(), 0
        return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(PROPS.items())).encode(), 0

    def cmd_nproc(self, a: list[str]) -> tuple[bytes, int]:
        return f"{len(CPU_KHZ)}\n".encode(), 0

    def cmd_taskset(self, a: list[str]) -> tuple[bytes, int]:
        if len(a) < 2:
            return b"taskset: Needs 1 argument\n", 1
        try:
            mask = int(a[0], 16)
        except ValueError:
            return f"taskset: bad mask '{a[0]}'\n".encode(), 1
        if mask == 0 or mask >> len(CPU_KHZ):
            return f"taskset: sched_setaffinity: Invalid argument (mask {a[0]})\n".encode(), 1
        # the mask names the phone's cores; the host's scheduler places the work
        return self.command(a[1:])

    def benchmark(self, args: list[str]) -> tuple[bytes, int]:
        cmd = [sys.executable, "-m", "hwnas.testing.benchmark_model", f"--root={self.root}",
               *args]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_WAIT_POLICY": "PASSIVE"}
        proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
        return proc.stdout + proc.stderr, proc.returncode


class _Stream:
    def __init__(self, local: int, remote: int) -> None:
        self.local, self.remote = local, remote
        self.acks: queue.Queue[bool] = queue.Queue()
        self.incoming: queue.Queue[bytes | None] = queue.Queue()
        self.closed = False
        self.buffer = b""

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.incoming.get(timeout=ACK_TIMEOUT_S)
            if chunk is None:
                raise EOFError("stream closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


class Connection:
    """One TCP connection from an ADB host (a client library or adb server)."""

    def __init__(self, device: LoopbackDevice, sock: socket.socket) -> None:
        self.device = device
        self.sock = sock
        self.lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.max_payload = MAX_PAYLOAD
        self.online = False
        self.token = b""

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        with self.lock:
            self.sock.sendall(pack(command, arg0, arg1, data))

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def serve(self) -> None:
        try:
            while True:
                cmd, a0, a1, length, _ = unpack_header(self._recv_exact(HEADER_SIZE))
                data = self._recv_exact(length) if length else b""
                self.handle(cmd, a0, a1, data)
        except (EOFError, OSError, ValueError):
            pass
        finally:
            for s in self.streams.values():
                s.incoming.put(None)
                s.acks.put(False)
            try:
                self.sock.close()
            except OSError:
                pass
            self.device.forget(self)

    def _connected(self, version: int, maxdata: int) -> None:
        self.max_payload = max(1024, min(maxdata or MAX_PAYLOAD, MAX_PAYLOAD))
        banner = "device::" + "".join(f"{k}={PROPS[k]};" for k in (
            "ro.product.name", "ro.product.model", "ro.product.device")) + "features=cmd"
        self.online = True
        self.send(A_CNXN, min(version or A_VERSION, A_VERSION), self.max_payload,
                  banner.encode())

    def _new_token(self) -> None:
        self.token = secrets.token_bytes(20)
        self.send(A_AUTH, AUTH_TOKEN, 0, self.token)

    def handle(self, cmd: int, a0: int, a1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            self.version, self.maxdata = a0, a1
            if self.device.auth:
                self._new_token()
            else:
                self._connected(a0, a1)
        elif cmd == A_AUTH:
            if a0 == AUTH_SIGNATURE:
                if self.device.verify(self.token, data):
                    self._connected(self.version, self.maxdata)
                else:
                    self._new_token()
            elif a0 == AUTH_RSAPUBLICKEY and self.device.accept_new_keys:
                self.device.authorise(data)
                self._connected(self.version, self.maxdata)
        elif not self.online:
            return  # nothing but CNXN/AUTH before the connection is up
        elif cmd == A_OPEN:
            self.open(a0, data.rstrip(b"\0").decode(errors="replace"))
        elif cmd == A_OKAY:
            s = self.streams.get(a1)
            if s is not None:
                s.remote = a0
                s.acks.put(True)
        elif cmd == A_WRTE:
            s = self.streams.get(a1)
            if s is not None:
                s.incoming.put(data)
                self.send(A_OKAY, s.local, s.remote)
        elif cmd == A_CLSE:
            s = self.streams.pop(a1, None)
            if s is not None:
                s.incoming.put(None)
                s.acks.put(False)
                if not s.closed:
                    s.closed = True
                    self.send(A_CLSE, s.local, s.remote)

    def open(self, remote: int, service: str) -> None:
        if service.startswith("shell:") and service != "shell:":
            target = self.run_shell
        elif service == "sync:":
            target = self.run_sync
        else:  # interactive shell, reverse, framebuffer, ...: not provided
            self.send(A_CLSE, 0, remote)
            return
        local = self.next_id
        self.next_id += 1
        s = _Stream(local, remote)
        self.streams[local] = s
        self.send(A_OKAY, local, remote)
        threading.Thread(target=self._guard, args=(target, s, service), daemon=True).start()

    def _guard(self, target, s: _Stream, service: str) -> None:
        try:
            target(s, service)
        except (EOFError, OSError, queue.Empty):
            pass
        finally:
            self.close_stream(s)

    def write(self, s: _Stream, data: bytes) -> None:
        for i in range(0, len(data), self.max_payload):
            if s.closed:
                raise EOFError
            self.send(A_WRTE, s.local, s.remote, data[i:i + self.max_payload])
            if not s.acks.get(timeout=ACK_TIMEOUT_S):
                raise EOFError

    def close_stream(self, s: _Stream) -> None:
        if not s.closed:
            s.closed = True
            try:
                self.send(A_CLSE, s.local, s.remote)
            except OSError:
                pass

    def run_shell(self, s: _Stream, service: str) -> None:
        out, _ = Shell(self.device.root).run(service[len("shell:"):])
        if out:
            self.write(s, out)

    def run_sync(self, s: _Stream, _: str) -> None:
        sh = Shell(self.device.root)
        while True:
            rid, length = struct.unpack("<4sI", s.read(8))
            if rid == b"QUIT":
                return
            arg = s.read(length).decode(errors="replace")
            if rid == b"STAT":
                f = sh.path(arg)
                st = f.stat() if f.exists() else None
                self.write(s, b"STAT" + struct.pack(
                    "<III", (st.st_mode if st else 0), (st.st_size if st else 0) & 0xFFFFFFFF,
                    int(st.st_mtime) if st else 0))
            elif rid == b"LIST":
                f = sh.path(arg)
                out = b""
                for name in sorted(os.listdir(f)) if f.is_dir() else []:
                    st = (f / name).stat()
                    raw = name.encode()
                    out += b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF,
                                                 int(st.st_mtime), len(raw)) + raw
                self.write(s, out + b"DONE" + bytes(16))
            elif rid == b"SEND":
                path, _, mode = arg.rpartition(",")
                self.receive_file(s, sh, path, int(mode or "420") & 0o7777)
            elif rid == b"RECV":
                f = sh.path(arg)
                if not f.is_file():
                    msg = f"{arg}: No such file or directory".encode()
                    self.write(s, b"FAIL" + struct.pack("<I", len(msg)) + msg)
                    continue
                blob = f.read_bytes()
                out = b"".join(b"DATA" + struct.pack("<I", len(blob[i:i + 65536])) +
                               blob[i:i + 65536] for i in range(0, len(blob), 65536))
                self.write(s, out + b"DONE" + bytes(4))
            else:
                msg = f"unknown sync request {rid!r}".encode()
                self.write(s, b"FAIL" + struct.pack("<I", len(msg)) + msg)
                return

    def receive_file(self, s: _Stream, sh: Shell, path: str, mode: int) -> None:
        chunks = []
        while True:
            rid, n = struct.unpack("<4sI", s.read(8))
            if rid == b"DATA":
                chunks.append(s.read(n))
            elif rid == b"DONE":
                break
            else:
                raise EOFError(f"unexpected {rid!r} in SEND")
        try:
            f = sh.path(path)
            f.parent.mkdir(parents=True, exist_ok=True)
            tmp = f.with_name(f.name + ".hwnas-partial")
            tmp.write_bytes(b"".join(chunks))
            tmp.chmod(mode or 0o644)
            tmp.replace(f)
        except OSError as e:
            msg = f"{path}: {e.strerror or e}".encode()
            self.write(s, b"FAIL" + struct.pack("<I", len(msg)) + msg)
            return
        self.write(s, b"OKAY" + bytes(4))


class LoopbackDevice:
    def __init__(self, root: Path, port: int = 0, host: str = "127.0.0.1", auth: bool = False,
                 accept_new_keys: bool = True) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        seed_sysfs(self.root)
        self.auth = auth
        self.accept_new_keys = accept_new_keys
        self.keys_file = self.root / "data/misc/adb/adb_keys"
        self.server = socket.create_server((host, port), reuse_port=False)
        self.port = self.server.getsockname()[1]
        self.connections: set[Connection] = set()
        self._lock = threading.Lock()

    def verify(self, token: bytes, signature: bytes) -> bool:
        if not token or not self.keys_file.is_file():
            return False
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

        for line in self.keys_file.read_bytes().splitlines():
            if not line.strip():
                continue
            n, e = decode_android_pubkey(line)
            key = rsa.RSAPublicNumbers(e, n).public_key()
            try:  # adb signs the 20-byte token as an already-hashed SHA-1 digest
                key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
                return True
            except InvalidSignature:
                continue
        return False

    def authorise(self, pubkey: bytes) -> None:
        self.keys_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.keys_file, "ab") as f:
            f.write(pubkey.rstrip(b"\0").strip() + b"\n")

    def forget(self, conn: Connection) -> None:
        with self._lock:
            self.connections.discard(conn)

    def drop_connections(self) -> None:
        """Cut every host connection (a cable pulled)."""
        with self._lock:
            conns = list(self.connections)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve_forever(self) -> None:
        while True:
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, sock)
            with self._lock:
                self.connections.add(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    def start(self) -> LoopbackDevice:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        try:  # wakes the accept() of serve_forever; close() alone leaves it listening
            self.server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.server.close()
        self.drop_connections()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwnas.testing.adb_device",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=5555, help="TCP port (0 = any free port)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--root", required=True, type=Path,
                    help="folder that holds the device's files")
    ap.add_argument("--auth", action="store_true",
                    help="require ADB authentication (RSA), as a production phone does")
    ap.add_argument("--reject-new-keys", action="store_true",
                    help="with --auth: refuse keys not already in ROOT/data/misc/adb/adb_keys")
    args = ap.parse_args(argv)
    try:
        dev = LoopbackDevice(args.root, args.port, args.host, args.auth,
                             not args.reject_new_keys)
    except OSError as e:
        print(f"adb_device: error: cannot listen on {args.host}:{args.port}: {e.strerror}",
              file=sys.stderr)
        return 1
    print(f"loopback ADB device on {args.host}:{dev.port}, files under {dev.root}", flush=True)
    try:
        dev.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
