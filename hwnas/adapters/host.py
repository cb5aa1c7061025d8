"""Facts about this host that measurements record."""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path
from typing import Any


@cache
def cpuinfo() -> dict[str, str]:
    """The first processor's entries of /proc/cpuinfo (key -> value; empty
    where there is none), read once per process: every measurement's
    provenance asks, and the CPU does not change under a running process."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if not key and info:
                break            # the blank line after the first processor
            if key and key not in info:
                info[key] = value.strip()
    except OSError:
        pass
    return info


def host_details() -> dict[str, Any]:
    """CPU model, cores and kernel of this host."""
    cpu = cpuinfo().get("model name") or platform.processor() or platform.machine()
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


#: the ISA extensions that change how a graph's operators run (ONNX Runtime and
#: XNNPACK pick kernels by them): AMX and AVX-512 BF16/VNNI on recent Xeons,
#: AVX-512 on older ones and on AMD Zen 4, AVX2 only on Zen 2-3 and clients
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def _cache_kib() -> dict[str, float]:
    """Per-core L1d and L2, and the shared L3, in KiB (sysfs, as lscpu reads it)."""
    out: dict[str, float] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        mult = {"K": 1, "M": 1024, "G": 1024 ** 2}.get(size[-1:].upper(), 1 / 1024)
        try:
            out[f"l{level}"] = float(size.rstrip("KMGkmg")) * mult
        except ValueError:
            continue
    return out


def cpu_descriptor() -> dict[str, Any]:
    """What tells one CPU microarchitecture from another, as lscpu shows it:
    vendor, family/model/stepping, model name, the ISA extensions that matter
    to inference kernels, cache sizes. Recorded in every CPU measurement's
    provenance, and the host features of a predictor that learns several
    hosts (``hwnas.predict.hosts``)."""
    info = cpuinfo()
    flags = set(info.get("flags", "").split())
    return {"vendor": info.get("vendor_id", platform.machine()),
            "model_name": info.get("model name", platform.processor()),
            "family_model": "/".join(info.get(k, "?") for k in ("cpu family", "model",
                                                                "stepping")),
            "isa": [f for f in ISA_FLAGS if f in flags], "cache_kib": _cache_kib()}


def rss_mb() -> float:
    """Resident set size of this process now."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
