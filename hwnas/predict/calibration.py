"""Host calibration: CPU latencies travel as ratios to a reference workload.

Two hosts of "the same kind" (same CPU model string, same core count) can
differ in speed by a third. A host-CPU profile therefore stores every call's
time as a ratio to a fixed reference workload timed beside it (``rel_p50``),
its predictor learns that ratio, and a prediction in ms is the ratio times
*this* host's reference time: measured at first use (about 1.5 s), cached
under ``<workspace>/cache/host-reference/`` with a fingerprint of the host
and runtime, and measured again when the fingerprint changes (another
machine, a reboot, another runtime version) or the cache is older than
``MAX_AGE_S``.

What the ratio cannot carry -- another microarchitecture, runtime or thread
count changes the ratio itself -- is caught by a spot check (see
``hwnas.workflows.target``), which measures a few architectures and adapts the
predictor when they disagree beyond the label noise.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any

from hwnas.state import NUMBER, Shape, StateError, read_json, write_json

REF_SECONDS = 1.5       # timed reference calls at first use
MAX_AGE_S = 6 * 3600    # re-measure after this, even on an unchanged host
CACHE = Path("cache") / "host-reference"


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def fingerprint(spec: Any) -> dict[str, Any]:
    """What must be unchanged for a cached reference time to still hold."""
    from hwnas.adapters.host import host_details

    h = host_details()
    adapter = spec.make()
    try:
        about = adapter.describe()
    finally:
        adapter.close()
    fp = {"host": h["host"], "boot": _boot_id(), "cpu": h["cpu"], "cores": h["cores"],
          "runtime": about.get("runtime"), "threads": spec.options.get("threads"),
          "reference": spec.options.get("reference")}
    if about.get("phone"):   # a phone's reference belongs to the phone, not to this host
        fp.update(phone=about["phone"], cpu_mask=spec.options.get("cpu_mask"),
                  delegate=spec.options.get("delegate"))
    return fp


def host_reference(spec: Any, workspace: Path, *, refresh: bool = False,
                   seconds: float = REF_SECONDS, now: float | None = None) -> dict[str, Any]:
    """This host's reference time for ``spec``'s device: {"ms", "ci_lo", "ci_hi",
    "n", "measured", "fingerprint", "cached"}. Raises ValueError when the device
    has no reference workload (then its latencies are plain ms)."""
    from hwnas.paths import held

    path = Path(workspace) / CACHE / f"{spec.name}.json"
    fp = fingerprint(spec)
    now = time.time() if now is None else now
    path.parent.mkdir(parents=True, exist_ok=True)
    # commands sharing a workspace measure it once: the second waits, then reads it
    with held(path.parent / f".{spec.name}.lock", f"the reference time of {spec.name}"):
        got = None if refresh else _cached(path, fp, now)
        return got if got is not None else _measure(spec, path, fp, now, seconds)


#: a host reference as cached (``host_reference`` writes it)
REFERENCE = Shape("host reference", required={"ms": NUMBER, "epoch": NUMBER,
                                               "fingerprint": dict},
                  optional={"n": int, "measured": str})


def _cached(path: Path, fp: dict[str, Any], now: float) -> dict[str, Any] | None:
    """The cached reference where it still holds; a damaged one is set aside
    (a measurement is never deleted) and measured again."""
    if not path.exists():
        return None
    try:
        got = read_json(path, REFERENCE)
    except StateError as e:
        import logging

        from hwnas.paths import set_aside

        kept = set_aside(path, path.parent / "set-aside")
        logging.getLogger("hwnas").warning(f"{e}; set aside as {kept}, measured again")
        return None
    fresh = got["fingerprint"] == fp and 0 <= now - got["epoch"] <= MAX_AGE_S and got["ms"] > 0
    return {**got, "cached": True} if fresh else None


def _measure(spec: Any, path: Path, fp: dict[str, Any], now: float,
             seconds: float) -> dict[str, Any]:
    adapter = spec.make()
    try:
        why = adapter.check()
        if why is not None:
            from hwnas.adapters import DeviceUnavailable

            raise DeviceUnavailable(f"device {spec.name}: {why}")
        got = adapter.reference_summary(seconds)
    finally:
        adapter.close()
    if not got:
        raise ValueError(f"device {spec.name} has no reference workload to calibrate with")
    out = {**got, "epoch": now, "fingerprint": fp,
           "measured": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    write_json(path, out, REFERENCE)
    return {**out, "cached": False}


def describe(ref: dict[str, Any]) -> str:
    """One phrase: the reference time used and where it came from."""
    how = "cached" if ref.get("cached") else "measured now"
    return (f"this host's reference {ref['ms']:.3f} ms (95% CI {ref['ci_lo']:.3f}-"
            f"{ref['ci_hi']:.3f}, {how} {ref['measured']})")
