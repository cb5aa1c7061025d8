"""Which phones are attached to this host now.

A phone is named by its device file (serial -> device name). It is present
when it answers where its file says: a TCP serial ("host:port") when
something accepts a connection there; any other serial when the host's adb
server lists it as "device", or, with no adb server running, when a USB
device with that serial offers the ADB interface. Phones the adb server or
USB shows that no device file names are reported, so the user can add one.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.adapters.adb_server import AdbServer, AdbServerError

# the ADB interface of a USB device (class, subclass, protocol), as adb looks for it
ADB_INTERFACE = (0xFF, 0x42, 0x01)


@dataclass
class Scan:
    present: dict[str, str] = field(default_factory=dict)   # device name -> serial
    absent: dict[str, str] = field(default_factory=dict)    # device name -> why not
    unknown: list[str] = field(default_factory=list)        # serials without a device file

    def resources(self) -> dict[str, float]:
        from hwnas.execution import device_resource

        return {device_resource(n): 1.0 for n in sorted(self.present)}


def _tcp_answers(serial: str, timeout_s: float = 1.0) -> str | None:
    host, port = serial.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
        return None
    except OSError as e:
        return f"nothing answers at {serial} ({e.strerror or e})"


def usb_serials() -> dict[str, str] | None:
    """Serials of USB devices offering the ADB interface; None when libusb is
    not available (or no bus can be read)."""
    try:
        from hwnas.adapters.android import preload_libusb

        preload_libusb()
        import usb1
    except (ImportError, OSError):
        return None
    found = {}
    try:
        with usb1.USBContext() as ctx:
            for dev in ctx.getDeviceIterator(skip_on_error=True):
                for setting in (s for cfg in dev for iface in cfg for s in iface):
                    if (setting.getClass(), setting.getSubClass(),
                            setting.getProtocol()) == ADB_INTERFACE:
                        try:
                            found[dev.getSerialNumber() or ""] = "device"
                        except usb1.USBError:
                            found[f"usb:{dev.getBusNumber()}-{dev.getDeviceAddress()}"] = \
                                "no permission (udev rules)"
                        break
    except usb1.USBError:
        return None
    return found


def scan(workspace: Path | None, adb_server: str = "") -> Scan:
    from hwnas.adapters.devicefile import all_devices

    server = AdbServer(adb_server, timeout_s=2.0)
    try:
        held: dict[str, str] | None = server.devices()
    except (OSError, AdbServerError):
        held = None
    usb = usb_serials() if held is None else None
    attached = held if held is not None else (usb or {})
    out = Scan()
    named = set()
    for d in all_devices(workspace):
        if isinstance(d, tuple) or d.adapter != "android":
            continue
        serial = d.options["serial"]
        named.add(serial)
        if re.fullmatch(r"[^:\s]+:\d+", serial) and d.options["transport"] != "server":
            why = _tcp_answers(serial)
        elif not serial:
            continue   # "the only USB phone": not a lab phone (which one would it be?)
        elif held is None and usb is None:
            why = "no adb server is running and USB cannot be read (libusb)"
        else:
            state = attached.get(serial)
            where = "the adb server" if held is not None else "USB"
            why = None if state == "device" else \
                f"{where} does not list {serial}" if state is None else f"{serial} is {state}"
        if why is None:
            out.present[d.name] = serial
        else:
            out.absent[d.name] = why
    out.unknown = sorted(s for s in attached if s not in named)
    return out
