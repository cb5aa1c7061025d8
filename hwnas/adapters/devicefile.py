"""Device files: one TOML file per device.

    description = "Pixel 6 on bench 2, big cores"
    adapter = "android"            # cpu | cuda | android | edgetpu
    [options]                      # adapter options (see `hwnas devices --help`)
    serial = "192.168.1.23:5555"
    [plan]                         # optional: how to time (hwnas.adapters.Plan)
    min_runs = 100

Shipped files come with hwnas; files in ``<workspace>/devices/`` add devices
or replace a shipped one of the same name (a lab with five phones has five).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.adapters import Adapter, DeviceUnavailable, Plan, adapter_class, registry
from hwnas.paths import read_text, shipped_dir

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    adapter: str
    description: str
    options: dict[str, Any]
    plan: Plan
    source: str
    shipped: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def make(self) -> Adapter:
        return adapter_class(self.adapter)(self.name, self.options)


#: options that name a file on this host
PATH_OPTIONS = ("adb_key", "benchmark_binary")


def parse_device(path: Path, shipped: bool = False) -> DeviceSpec:
    name = path.stem
    if not _NAME.match(name):
        raise ValueError(f"{path}: device name {name!r} must be letters, digits, '-', '_' or '.'")
    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (a device file is TOML)") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a device file") from None
    unknown = sorted(set(data) - {"description", "adapter", "options", "plan"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; "
                         "expected description, adapter, [options], [plan]")
    adapter = data.get("adapter")
    if adapter not in registry():
        raise ValueError(f"{path}: adapter must be one of {', '.join(registry())}, "
                         f"got {adapter!r}")
    options = data.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(f"{path}: [options] must be a table")
    try:
        cls = adapter_class(adapter)
    except DeviceUnavailable as e:
        raise ValueError(f"{path}: {e}") from None
    if not isinstance(data.get("plan", {}), dict):
        raise ValueError(f"{path}: [plan] must be a table, e.g. [plan] min_runs = 50")
    try:
        options = cls.validate_options(options)
        plan = Plan.from_dict(data.get("plan", {}))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None
    for key in PATH_OPTIONS:   # relative to the device file, never to where a command runs
        value = options.get(key)
        if isinstance(value, str) and value and not value.startswith("~") \
                and not Path(value).is_absolute():
            options[key] = str(path.resolve().parent / value)
    return DeviceSpec(name=name, adapter=adapter, description=str(data.get("description", "")),
                      options=options, plan=plan, source=str(path), shipped=shipped, raw=data)


def device_files(workspace: Path | None) -> dict[str, tuple[Path, bool]]:
    """name -> (file, shipped); a workspace file replaces a shipped one."""
    found: dict[str, tuple[Path, bool]] = {}
    for p in sorted(shipped_dir("devices").glob("*.toml")):
        found[p.stem] = (p, True)
    if workspace is not None:
        user = workspace / "devices"
        if user.is_dir() and user.resolve() != shipped_dir("devices").resolve():
            for p in sorted(user.glob("*.toml")):
                found[p.stem] = (p, False)
    return found


def load_device(name: str, workspace: Path | None = None) -> DeviceSpec:
    files = device_files(workspace)
    if name not in files:
        where = f" or {workspace / 'devices'}" if workspace is not None else ""
        raise ValueError(f"no device {name!r}; known: {', '.join(files) or 'none'} "
                         f"(device files live in {shipped_dir('devices')}{where})")
    path, shipped = files[name]
    return parse_device(path, shipped)


def all_devices(workspace: Path | None = None) -> list[DeviceSpec | tuple[str, str]]:
    """Every device; a file that does not parse is returned as (name, error)."""
    out: list[DeviceSpec | tuple[str, str]] = []
    for name, (path, shipped) in device_files(workspace).items():
        try:
            out.append(parse_device(path, shipped))
        except ValueError as e:
            out.append((name, str(e)))
    return out


def matching_devices(pattern: str, workspace: Path | None,
                     like: DeviceSpec | None = None) -> list[str]:
    """Device names matching ``pattern`` (globs, comma-separated). With
    ``like``, each must be the same kind of device (the same adapter): the
    phones of one lab model, which share a profile."""
    from fnmatch import fnmatch

    pats = [p.strip() for p in pattern.split(",") if p.strip()]
    names = [n for n in device_files(workspace) if any(fnmatch(n, p) for p in pats)]
    if not names:
        raise ValueError(f"{pattern!r} matches no device file (hwnas devices lists them)")
    for n in names if like is not None else []:
        other = load_device(n, workspace)
        if other.adapter != like.adapter:
            raise ValueError(f"{n} uses the {other.adapter} adapter and {like.name} the "
                             f"{like.adapter} one; a profile's phones are one kind of device")
    return names
