"""A client of Google's adb server (the ``adb`` daemon on port 5037 that holds
the USB phones of a host), speaking its smart-socket protocol.

Many lab hosts already run that server; while it holds a phone's USB
interface nobody else can claim it, so hwnas talks to the server instead,
and users keep their ``adb`` habits (``adb devices``, ``adb connect``).

The protocol, per request on a fresh TCP connection to the server:
``<4 hex digits: length><request>``, answered ``OKAY`` or ``FAIL<4 hex><why>``.
``host:*`` requests are for the server itself (``host:devices`` answers one
length-prefixed block). ``host:transport:SERIAL`` switches the connection to
that phone; the next request is a device service: ``shell:CMD`` (raw output
until the phone closes the stream) or ``sync:`` (file transfer: 8-byte
packets ``ID + little-endian uint32``, SEND/DATA/DONE to push, STAT to stat).

adb-shell (the TCP and USB transports) has no client for this, so it is
written here. ``ServerDevice`` offers the call shapes ``AdbTransport`` uses
of adb-shell's device (shell, push, stat, close), so the reconnect and
retry logic is shared.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

DEFAULT_PORT = 5037
SYNC_CHUNK = 64 * 1024   # the sync protocol's largest DATA packet


class AdbServerError(ConnectionError):
    """The server answered FAIL (no such phone, phone offline, ...)."""


def server_address(spec: str = "") -> tuple[str, int]:
    """"HOST:PORT", ":PORT" or "" (127.0.0.1 and $ANDROID_ADB_SERVER_PORT or 5037,
    as Google's client does)."""
    host, _, port = spec.rpartition(":") if ":" in spec else (spec, "", "")
    env_port = os.environ.get("ANDROID_ADB_SERVER_PORT", "")
    return (host or "127.0.0.1",
            int(port) if port else int(env_port) if env_port.isdigit() else DEFAULT_PORT)


class AdbServer:
    def __init__(self, address: str = "", timeout_s: float = 10.0) -> None:
        self.host, self.port = server_address(address)
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return f"adb server {self.host}:{self.port}"

    def _open(self, timeout_s: float | None = None) -> socket.socket:
        try:
            return socket.create_connection((self.host, self.port),
                                            timeout=timeout_s or self.timeout_s)
        except OSError as e:
            raise ConnectionRefusedError(f"no {self.describe()} ({e.strerror or e}); start it "
                                         "with `adb start-server`") from None

    @staticmethod
    def _request(sock: socket.socket, request: str) -> None:
        data = request.encode()
        sock.sendall(b"%04x" % len(data) + data)
        status = _read_exact(sock, 4)
        if status == b"OKAY":
            return
        if status == b"FAIL":
            raise AdbServerError(_read_block(sock).decode(errors="replace"))
        raise AdbServerError(f"unexpected answer {status!r} to {request.split(':')[0]}:...")

    def query(self, request: str) -> str:
        """A ``host:`` request that answers one length-prefixed block."""
        with self._open() as sock:
            self._request(sock, request)
            return _read_block(sock).decode(errors="replace")

    def version(self) -> int:
        return int(self.query("host:version"), 16)

    def devices(self) -> dict[str, str]:
        """serial -> state ("device", "offline", "unauthorized", ...)."""
        out = {}
        for line in self.query("host:devices").splitlines():
            serial, _, state = line.partition("\t")
            if serial:
                out[serial] = state.strip()
        return out

    def running(self) -> bool:
        try:
            self.version()
            return True
        except (OSError, AdbServerError):
            return False

    def device(self, serial: str) -> ServerDevice:
        return ServerDevice(self, serial)

    def service(self, serial: str, service: str, timeout_s: float) -> socket.socket:
        """A connection switched to the phone and opened on ``service``."""
        sock = self._open(timeout_s)
        try:
            sock.settimeout(timeout_s)
            self._request(sock, f"host:transport:{serial}" if serial else "host:transport-any")
            self._request(sock, service)
        except BaseException:
            sock.close()
            raise
        return sock


class ServerDevice:
    """One phone through the server; every call opens its own connection (as
    Google's client does), so a call has nothing left over from the last."""

    def __init__(self, server: AdbServer, serial: str) -> None:
        self.server = server
        self.serial = serial

    def shell(self, command: str, timeout_s: float = 60.0, read_timeout_s: float = 60.0,
              transport_timeout_s: float = 10.0) -> str:
        deadline = time.monotonic() + timeout_s
        chunks = []
        with self.server.service(self.serial, f"shell:{command}", transport_timeout_s) as s:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"shell command ran past {timeout_s:g} s")
                s.settimeout(min(left, read_timeout_s))
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def push(self, local: str, remote: str, st_mode: int = 0o100644,
             read_timeout_s: float = 120.0, transport_timeout_s: float = 10.0) -> None:
        with self.server.service(self.serial, "sync:", transport_timeout_s) as s:
            s.settimeout(read_timeout_s)
            _sync_send(s, b"SEND", f"{remote},{st_mode}".encode())
            with Path(local).open("rb") as f:
                while chunk := f.read(SYNC_CHUNK):
                    _sync_send(s, b"DATA", chunk)
            s.sendall(b"DONE" + struct.pack("<I", int(time.time())))
            ident, length = struct.unpack("<4sI", _read_exact(s, 8))
            if ident == b"FAIL":
                raise AdbServerError(f"push to {remote}: "
                                     f"{_read_exact(s, length).decode(errors='replace')}")
            if ident != b"OKAY":
                raise AdbServerError(f"push to {remote}: unexpected sync answer {ident!r}")
            _sync_send(s, b"QUIT", b"")

    def stat(self, remote: str) -> tuple[int, int, int]:
        """(mode, size, mtime); all zero when the path does not exist."""
        with self.server.service(self.serial, "sync:", 10.0) as s:
            _sync_send(s, b"STAT", remote.encode())
            ident, mode, size, mtime = struct.unpack("<4sIII", _read_exact(s, 16))
            if ident != b"STAT":
                raise AdbServerError(f"stat {remote}: unexpected sync answer {ident!r}")
            _sync_send(s, b"QUIT", b"")
            return mode, size, mtime

    def close(self) -> None:
        """Nothing is held between calls."""


def _sync_send(sock: socket.socket, ident: bytes, data: bytes) -> None:
    sock.sendall(ident + struct.pack("<I", len(data)) + data)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionResetError("the adb server closed the connection")
        buf += part
    return bytes(buf)


def _read_block(sock: socket.socket) -> bytes:
    return _read_exact(sock, int(_read_exact(sock, 4), 16))
