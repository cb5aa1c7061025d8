"""Where the time goes: per-operator times from the runtime's own profiler,
in one table schema for every backend -- op type, node, calls, share of the
time, ms per call -- and, for hwnas's own architectures, the node's block.

Sources: ONNX Runtime's profiler (its JSON trace: one ``Node`` event per
kernel run) and ``torch.profiler`` (self CPU time per operator; TorchScript
and torch.export graphs have no node names, so node = the operator). On the
Edge TPU, whose mapped ops run as one custom op with no per-op times, the
table is the compiler's mapping: which ops run on the TPU and which fall
back to the CPU (:func:`edgetpu_mapping`).
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = ("op_type", "node", "calls", "share", "ms_per_call", "block")


def _table(total_us: dict[tuple[str, str], float], calls: dict[tuple[str, str], int],
           runs: int, block_of: Callable[[str], str | None] | None) -> list[dict[str, Any]]:
    """Rows by time spent, largest first; ``order`` is the node's place in
    the first run (the model's order)."""
    whole = sum(total_us.values()) or 1.0
    order = {key: i for i, key in enumerate(total_us)}
    rows = []
    for (op, node), us in sorted(total_us.items(), key=lambda kv: -kv[1]):
        n = calls[(op, node)]
        rows.append({"op_type": op, "node": node, "calls": n, "share": us / whole,
                     "ms_per_call": us / n / 1e3, "ms_per_run": us / runs / 1e3,
                     "block": block_of(node) if block_of else None,
                     "order": order[(op, node)]})
    return rows


def edgetpu_mapping(model_path: str | Path) -> dict[str, Any]:
    """The Edge TPU compiler's report of a compiled model, from the log it
    writes beside its output (``<name>.log``, ``edgetpu_compiler -s``): one
    row per operator and status, ``where`` the TPU or the CPU. No times: the
    TPU runs every mapped op inside one custom op."""
    from hwnas.export.edgetpu import parse_compiler_log

    log = Path(model_path).with_suffix(".log")
    source = f"the compiler's log {log.name}"
    if not log.is_file():
        return {"source": source, "rows": [], "blocks": None, "mapping": True,
                "note": f"no compiler log beside the model ({log.name}): the compiler "
                        "writes one next to the model it compiles"}
    rep = parse_compiler_log(log.read_text(errors="replace"))
    rows = [{"op_type": r.op, "node": r.status, "calls": r.count,
             "where": "edgetpu" if r.on_tpu else "cpu", "share": None, "ms_per_call": None,
             "block": None} for r in rep.operators]
    out = {"source": source, "rows": rows, "blocks": None, "mapping": True,
           "tpu_ops": rep.tpu_ops, "cpu_ops": rep.cpu_ops, "subgraphs": rep.subgraphs}
    if not rows:
        out["note"] = f"{log.name} lists no operators"
    return out


def onnxruntime_ops(path: str, feeds: dict[str, np.ndarray], outputs: list[str],
                    pairs: dict[str, str], threads: int, runs: int = 50,
                    block_of: Callable[[str], str | None] | None = None) -> list[dict[str, Any]]:
    """ONNX Runtime's profiler over ``runs`` stream calls (states fed back)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="hwnas-ops-") as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        current = dict(feeds)
        index = {o: outputs.index(o) for o in pairs}
        for _ in range(runs):
            out = sess.run(outputs, current)
            for o, i in pairs.items():
                current[i] = out[index[o]]
        trace = json.loads(Path(sess.end_profiling()).read_text())
    return parse_ort_trace(trace, runs, block_of)


def parse_ort_trace(trace: list[dict[str, Any]], runs: int,
                    block_of: Callable[[str], str | None] | None = None
                    ) -> list[dict[str, Any]]:
    """The op table of ONNX Runtime's profiler trace (its JSON events)."""
    total: dict[tuple[str, str], float] = defaultdict(float)
    calls: dict[tuple[str, str], int] = defaultdict(int)
    for ev in trace:
        name = ev.get("name", "")
        if ev.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        key = (ev.get("args", {}).get("op_name", "?"), name.removesuffix("_kernel_time"))
        total[key] += float(ev.get("dur", 0))
        calls[key] += 1
    if not total:
        raise ValueError("ONNX Runtime's profile holds no operator events")
    return _table(total, calls, runs, block_of)


def torch_ops(call: Callable[[], Any], runs: int = 50) -> list[dict[str, Any]]:
    """torch.profiler's self CPU time per operator over ``runs`` calls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            call()
    total: dict[tuple[str, str], float] = {}
    calls: dict[tuple[str, str], int] = {}
    for ev in prof.key_averages():
        if ev.self_cpu_time_total <= 0:
            continue
        total[(ev.key, ev.key)] = float(ev.self_cpu_time_total)
        calls[(ev.key, ev.key)] = int(ev.count)
    if not total:
        raise ValueError("torch.profiler recorded no operators")
    return _table(total, calls, runs, None)


#: what the share of time attributed by order means, wherever blocks are shown
BY_ORDER_NOTE = ("of the time is in nodes without a module scope (fused or made by the "
                 "runtime), counted in the block that ran before them")


def attribute(rows: list[dict[str, Any]], rule: Callable[[str], str | None]) -> float:
    """Give every row its ``block`` by ``rule`` (the task's names); a node
    without a module path (a fusion, a layout reorder, a reshape outside every
    module) counts in the block that ran before it. Returns the share of the
    time attributed that way."""
    last = None
    for r in sorted(rows, key=lambda r: r["order"]):
        named = rule(r["node"])
        r["block"], r["block_by"] = (named, "scope") if named else (last, "order")
        last = r["block"]
    return sum(r["share"] for r in rows if r["block_by"] == "order" and r["block"])


def by_block(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Time per block (ms per run and share), in the order the model runs
    its blocks; nodes without a block go to "other", last."""
    ms: dict[str, float] = defaultdict(float)
    first: dict[str, int] = {}
    for r in rows:
        b = r["block"] or "other"
        ms[b] += r["ms_per_run"]
        first[b] = min(first.get(b, r["order"]), r["order"])
    whole = sum(ms.values()) or 1.0
    return [{"block": b, "ms_per_run": ms[b], "share": ms[b] / whole}
            for b in sorted(ms, key=lambda b: (b == "other", first[b]))]


def by_kind(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Blocks with every encoder layer's part summed ("encoder layers (16):
    attention"): the short view of a deep model."""
    import re

    ms: dict[str, float] = {}
    layers: dict[str, set[str]] = defaultdict(set)
    for b in blocks:
        m = re.match(r"encoder layer (\d+): (.+)", b["block"])
        key = f"encoder layers: {m[2]}" if m else b["block"]
        if m:
            layers[key].add(m[1])
        ms[key] = ms.get(key, 0.0) + b["ms_per_run"]
    whole = sum(ms.values()) or 1.0
    return [{"block": k.replace("layers:", f"layers ({len(layers[k])}):") if k in layers else k,
             "ms_per_run": v, "share": v / whole} for k, v in ms.items()]


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    import csv

    cols = [*COLUMNS, "ms_per_run", *(["where"] if any("where" in r for r in rows) else [])]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in cols})
