"""Pure parsers: a device tool's text in, numbers out. Tested on captured
output of several TFLite benchmark_model versions:

* 2.3-2.4:  ``count=50 first=.. curr=.. min=.. max=.. avg=.. std=..`` and
  ``Peak memory footprint (MB): init=.. overall=..``
* 2.5-2.12: ``Memory footprint delta from the start of the tool (MB): ...``
  and, with --report_peak_memory_footprint, ``Overall peak memory footprint
  (MB) via periodic monitoring: ..``
* 2.13+:    every line prefixed ``INFO:``; statistics add ``p5= median= p95=``
* logcat captures (``I tflite  : ...``) of any of these;
* any of these as pasted into issues and CI logs: indented, quoted with
  ``>``, or behind a CI runner's timestamp (``2024-05-01T10:00:00.123Z ``).
"""

from __future__ import annotations

import re
from typing import Any

_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_PREFIX = re.compile(r"^(?:[A-Z]+:\s|[VDIWEF]\s+tflite\s*:\s*|\d\d-\d\d [\d:.]+\s+\d+\s+\d+ "
                     r"[VDIWEF] tflite\s*:\s*)")
_STATS = re.compile(r"^count=(\d+)((?:\s+\w+=" + _NUM + r")*)\s*$")
_TIMINGS = re.compile(r"Inference timings in us: Init: " + _NUM + r", First inference: " + _NUM +
                      r", Warmup \(avg\): " + _NUM + r", Inference \(avg\): " + _NUM)
_MEM_DELTA = re.compile(r"Memory footprint delta from the start of the tool \(MB\): init=" + _NUM +
                        r" overall=" + _NUM)
_MEM_PEAK_OLD = re.compile(r"^Peak memory footprint \(MB\): init=" + _NUM + r" overall=" + _NUM)
_MEM_PERIODIC = re.compile(r"Overall peak memory footprint \(MB\) via periodic monitoring: " + _NUM)
_DELEGATED = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]+)\)")
_SIZE = re.compile(r"The input model file size \(MB\): " + _NUM)
_RUNS_HEADER = re.compile(r"Running benchmark for at least (\d+) iterations")


class ParseError(ValueError):
    pass


_PASTED = re.compile(r"^\s*(?:>\s*)*(?:\d{4}-\d\d-\d\dT[\d:.]+Z\s+)?")


def _lines(text: str) -> list[str]:
    return [_PREFIX.sub("", _PASTED.sub("", ln.strip("\r"))).strip()
            for ln in text.splitlines()]


def parse_benchmark_model(text: str) -> dict[str, Any]:
    """Numbers from one benchmark_model run (microseconds and MB as printed).

    Keys: init_us, first_us, warmup_avg_us, inference_avg_us; ``runs`` (the
    statistics of the timed runs: count, min, max, avg, std and, where printed,
    p5/median/p95), ``warmup`` (same for warm-up), memory (init_mb,
    overall_mb, peak_mb), delegate (nodes/total/name), model_mb, format
    (which generation of the output it looked like). Raises ParseError with
    the tool's last error line when the run produced no timings."""
    lines = _lines(text)
    stats: list[dict[str, float]] = []
    out: dict[str, Any] = {}
    for ln in lines:
        m = _STATS.match(ln)
        if m:
            fields = dict(re.findall(r"(\w+)=" + _NUM, ln))
            stats.append({k: float(v) for k, v in fields.items()})
            continue
        m = _TIMINGS.search(ln)
        if m:
            out.update(init_us=float(m[1]), first_us=float(m[2]), warmup_avg_us=float(m[3]),
                       inference_avg_us=float(m[4]))
            continue
        m = _MEM_DELTA.search(ln) or _MEM_PEAK_OLD.search(ln)
        if m:
            out["memory"] = {**out.get("memory", {}), "init_mb": float(m[1]),
                             "overall_mb": float(m[2])}
            continue
        m = _MEM_PERIODIC.search(ln)
        if m:
            out["memory"] = {**out.get("memory", {}), "peak_mb": float(m[1])}
            continue
        m = _DELEGATED.search(ln)
        if m:
            out["delegate"] = {"nodes": int(m[1]), "total": int(m[2]), "name": m[3]}
            continue
        m = _SIZE.search(ln)
        if m:
            out["model_mb"] = float(m[1])
    if "inference_avg_us" not in out:
        errors = [ln for ln in lines if ln.startswith(("ERROR", "Failed", "/system/bin/sh"))
                  or "ERROR:" in ln or "not found" in ln or "Permission denied" in ln]
        raw_errors = [ln for ln in text.splitlines() if "ERROR" in ln]
        last = (raw_errors or errors or [ln for ln in lines if ln] or ["no output"])[-1]
        raise ParseError(f"benchmark_model gave no timings: {last.strip()[:200]}")
    # the last statistics line is the timed runs; the one before it the warm-up
    if stats:
        out["runs"] = stats[-1]
        if len(stats) > 1:
            out["warmup"] = stats[-2]
    if any(_PASTED.sub("", ln).startswith("INFO:") for ln in text.splitlines()) or \
            (stats and "median" in stats[-1]):
        out["format"] = "2.13+"
    elif any(_MEM_PEAK_OLD.search(ln) for ln in lines):
        out["format"] = "2.3-2.4"
    else:
        out["format"] = "2.5-2.12"
    return out


_OPS_HEADER = "Operator-wise Profiling Info for Regular Benchmark Runs:"
_COLUMNS = re.compile(r"\[([^\]]+)\]")


def parse_op_profile(text: str) -> list[dict[str, Any]]:
    """The per-operator table of ``benchmark_model --enable_op_profiling=true``
    (its "Run Order" table after the regular runs' header), in the op table
    schema: op_type, node, calls (per model call), share, ms_per_call,
    ms_per_run, order. Both layouts are read: tab-separated with a [start]
    column (up to 2.12), space-aligned without it (2.13+, ``INFO:`` lines).
    Empty when the output has no such table."""
    lines = [_PASTED.sub("", ln.rstrip("\r")) for ln in text.splitlines()]
    lines = [_PREFIX.sub("", ln.lstrip()) if _PREFIX.match(ln.lstrip()) else ln for ln in lines]
    try:
        start = next(i for i, ln in enumerate(lines) if _OPS_HEADER in ln)
    except StopIteration:
        return []
    rows: list[dict[str, Any]] = []
    cols: list[str] = []
    for ln in lines[start + 1:]:
        body = ln.strip()
        if not cols:
            if body.startswith("[") and "node type" in body:
                cols = _COLUMNS.findall(body)
            continue
        if not body or body.startswith("="):
            break
        # the name is the last column and may hold spaces; the rest split on
        # tabs or runs of 2+ spaces (an op type such as "Convolution (NHWC,
        # QC8) GEMM" holds single spaces)
        parts = [p.strip() for p in re.split(r"\t+|\s{2,}", body) if p.strip()]
        if len(parts) < len(cols):
            continue
        parts = parts[:len(cols) - 1] + [" ".join(parts[len(cols) - 1:])]
        got = dict(zip(cols, parts))
        try:
            avg = float(got["avg ms"])
            share = float(got["%"].rstrip("%")) / 100
            calls = int(float(got.get("times called", "1")))
        except (KeyError, ValueError):
            continue
        name = got.get("Name", "")
        node = re.sub(r":\d+$", "", name).strip("[]") or name
        rows.append({"op_type": got["node type"], "node": node, "calls": calls, "share": share,
                     "ms_per_call": avg, "ms_per_run": avg * calls, "order": len(rows)})
    return rows


def parse_thermal(types: str, temps: str) -> dict[str, float]:
    """Zone type -> degrees Celsius from ``cat thermal_zone*/type`` and
    ``cat thermal_zone*/temp`` (same glob order). Millidegrees are converted;
    unreadable zones are skipped."""
    names = [t.strip() for t in types.splitlines() if t.strip()]
    values = [t.strip() for t in temps.splitlines() if t.strip()]
    out: dict[str, float] = {}
    for i, (name, raw) in enumerate(zip(names, values)):
        try:
            v = float(raw)
        except ValueError:
            continue
        c = v / 1000.0 if abs(v) > 200 else v
        out[name if name not in out else f"{name}#{i}"] = round(c, 1)
    return out


def parse_freqs(text: str) -> list[int]:
    """kHz per core from ``cat cpu*/cpufreq/scaling_cur_freq``."""
    return [int(x) for x in text.split() if x.isdigit()]


def parse_getprop(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\[([^\]]+)\]: \[([^\]]*)\]", text, flags=re.M))


def split_status(text: str, marker: str) -> tuple[str, int | None]:
    """Output and exit status of a command run as ``CMD; echo MARKER$?``."""
    idx = text.rfind(marker)
    if idx < 0:
        return text, None
    tail = text[idx + len(marker):].split()
    try:
        return text[:idx], int(tail[0]) if tail else None
    except ValueError:
        return text[:idx], None
