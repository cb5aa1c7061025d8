"""``hwnas bench``: time model files made anywhere on a device, under the
profiler's rules, as a stream runs them.

For each model: read what it declares, pair its states, resolve its inputs
(``hwnas.bench.inputs``), load it (timed: the cold start), call it once
(timed: the first call), then measure its steady state with the device's
plan and reference probe (``hwnas.adapters.timing``). Two or more models are
then compared call by call (``hwnas.bench.compare``); ``ops`` adds where the
time goes (``hwnas.bench.ops``). Nothing is written until every model has
run: a result folder always holds a whole result.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwnas.adapters import DeviceUnavailable, Plan, adapter_class
from hwnas.adapters.records import ModelRun
from hwnas.bench import compare, ops
from hwnas.bench.inputs import resolve
from hwnas.bench.model import ModelError, ModelFile, read_model
from hwnas.bench.state import find_pairs, parse_state

#: what a model file needs of a device's formats
RUNS_ON = {"onnx": ("onnx",), "tflite": ("tflite", "tflite-dynamic", "tflite-int8"),
           "edgetpu": ("edgetpu",), "torchscript": ("torch",), "torch-export": ("torch",)}


@dataclass
class BenchRequest:
    models: list[str]
    shapes: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    inputs: str | None = None
    states: list[str] = field(default_factory=list)
    auto_state: bool = True
    audio_ms: float | None = None
    lookahead_ms: float = 0.0
    ops: bool = False
    compare_seconds: float = 5.0
    seed: int = 0


def _check_request(req: BenchRequest) -> None:
    import math

    if not req.models:
        raise ModelError("give at least one model file")
    if req.audio_ms is not None and not (req.audio_ms > 0 and math.isfinite(req.audio_ms)):
        raise ModelError(f"--audio-ms must be a number > 0, got {req.audio_ms:g}")
    if not (req.lookahead_ms >= 0 and math.isfinite(req.lookahead_ms)):
        raise ModelError(f"--lookahead-ms must be a number >= 0, got {req.lookahead_ms:g}")
    if req.lookahead_ms and req.audio_ms is None:
        raise ModelError("--lookahead-ms needs --audio-ms (the audio each call stands for)")
    if not 0 < req.compare_seconds <= 3600:
        raise ModelError(f"--seconds must be from 0 to 3600, got {req.compare_seconds:g}")


def prepare_model(path: str, req: BenchRequest, formats: tuple[str, ...],
                  device: str) -> tuple[ModelFile, ModelRun, dict[str, str]]:
    """(what the model declares, what to run, where each input's value came
    from); ModelError for anything the device or the flags cannot give it."""
    model = read_model(path)
    if not set(RUNS_ON[model.format]) & set(formats):
        hint = ("compile a full-integer .tflite for it: edgetpu_compiler -s MODEL.tflite"
                if "edgetpu" in formats else
                "an Edge TPU device runs it: hwnas devices lists them"
                if model.format == "edgetpu" else
                "a device file with another runtime runs it: hwnas devices lists them")
        raise ModelError(f"{model.path.name} is {model.format}; device {device} runs "
                         f"{', '.join(formats)} ({hint})")
    given = parse_state(req.states)
    if req.auto_state:
        given = {**own_pairs(model), **given}
    pairs = find_pairs(model, given, auto=req.auto_state)
    feeds = resolve(model, shapes=req.shapes, values=req.values, npz=req.inputs,
                    states=pairs, seed=req.seed)
    inputs = [{"name": t.name, "shape": list(feeds.values[t.name].shape),
               "dtype": str(feeds.values[t.name].dtype)} for t in model.inputs]
    run = ModelRun(str(model.path), model.format, inputs, [o.name for o in model.outputs],
                   feeds.values, {o: i for i, o in pairs.items()})
    return model, run, feeds.sources


def cpu_state() -> dict[str, Any]:
    """The host CPU's frequency governor and current frequencies, where readable."""
    base = Path("/sys/devices/system/cpu")
    out: dict[str, Any] = {}
    try:
        out["governor"] = (base / "cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        pass
    freqs = []
    for f in sorted(base.glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
        try:
            freqs.append(int(f.read_text()))
        except (OSError, ValueError):
            continue
    if freqs:
        out["cur_freq_khz"] = freqs
    if not out:
        out["note"] = "no cpufreq in /sys on this host (a virtual machine hides it)"
    return out


def own_pairs(model: ModelFile) -> dict[str, str]:
    """State pairs of an hwnas export whose converter renamed the outputs
    (a .tflite's ``output_K``): its record beside it (``model.tflite.json``)
    lists the graph's outputs in order, ``new_X`` feeding ``X``."""
    record = model.path.with_name(model.path.name + ".json")
    names = {o.name for o in model.outputs}
    try:
        outputs = json.loads(record.read_text())["outputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    inputs = {t.name for t in model.inputs}
    return {o[4:]: f"output_{k}" for k, o in enumerate(outputs)
            if isinstance(o, str) and o.startswith("new_") and o[4:] in inputs
            and o not in names and f"output_{k}" in names}


def own_task(path: str) -> Any:
    """The task of an hwnas export (its ``arch.json`` beside the model file,
    as ``hwnas export`` and the search write them), or None."""
    from hwnas import tasks

    sidecar = Path(path).with_name("arch.json")
    if not sidecar.is_file():
        return None
    try:
        return tasks.get(tasks.task_of(tasks.arch_from_json(sidecar.read_text())))
    except (ValueError, OSError):
        return None     # not an architecture hwnas reads: the file is not one of its exports


def block_profile(onnx_path: str, threads: int = 1, runs: int = 50) -> dict[str, Any]:
    """Where the time of an hwnas ONNX export goes, per block, on this host
    (ONNX Runtime's profiler over ``runs`` stream calls): what a model card shows."""
    _, run, _ = prepare_model(onnx_path, BenchRequest([onnx_path]), ("onnx",), "this host")
    table = _onnx_table(run, threads, runs)
    blocks = table["blocks"] or []
    return {"source": f"{table['source']}, this host's CPU, {threads} thread(s), {runs} calls",
            "blocks": ops.by_kind(blocks) if len(blocks) > 14 else blocks,
            "by_order_share": table["by_order_share"]}


def _onnx_table(run: ModelRun, threads: int, runs: int = 50) -> dict[str, Any]:
    rows = ops.onnxruntime_ops(run.path, run.feeds, run.outputs, run.pairs, threads, runs)
    task = own_task(run.path)
    by_order = ops.attribute(rows, task.op_block) if task is not None else None
    return {"source": "onnxruntime profiler", "rows": rows,
            "blocks": ops.by_block(rows) if task is not None else None,
            "by_order_share": by_order}


def _op_table(adapter: Any, run: ModelRun, call: Callable[[], Any]) -> dict[str, Any]:
    if run.format == "edgetpu":
        return ops.edgetpu_mapping(run.path)
    if run.format == "onnx" and getattr(adapter, "runtime", "") == "onnxruntime":
        return _onnx_table(run, adapter.options.get("threads", 1))
    if run.format in ("torchscript", "torch-export"):
        return {"source": "torch.profiler (self CPU time)", "rows": ops.torch_ops(call),
                "blocks": None}
    return {"source": None, "rows": [], "blocks": None,
            "note": f"no per-operator profiler for {run.format} on this device yet"}


#: what a device that runs whole series (a phone's benchmark tool) cannot do
BATCH_NOTE = ("not fed back: the device's benchmark tool feeds fresh random inputs to every "
              "call (the work of a call does not depend on the state's values)")


def _batch_check(model: ModelFile, run: ModelRun, req: BenchRequest, device: str) -> None:
    """A phone's benchmark_model runs the shapes the file declares, on random
    inputs: flags it cannot apply are refused, not ignored."""
    if req.values or req.inputs:
        raise ModelError(f"device {device} runs the model through its benchmark tool on random "
                         "inputs: --value and --inputs cannot be applied there")
    for t, spec in zip(model.inputs, run.inputs):
        if t.shape is None or list(t.shape) != spec["shape"]:
            raise ModelError(f"device {device} runs the shapes the file declares, and input "
                             f"{t.name!r} is {t.shape_text()}: convert the model with fixed "
                             "shapes")


def _load(adapter: Any, model: ModelFile, run: ModelRun, device: str) -> tuple[Any, float]:
    t0 = time.perf_counter()
    try:
        handle = adapter.prepare(run)
    except (DeviceUnavailable, ModelError):
        raise
    except Exception as e:  # noqa: BLE001 - the runtime's refusal, in one line
        raise ModelError(f"{model.path.name} does not load on {device}: {_why(e)}") from None
    return handle, (time.perf_counter() - t0) * 1e3


def _first(call: Callable[[], Any], model: ModelFile, device: str) -> float:
    try:
        t0 = time.perf_counter()
        call()
        first_ms = (time.perf_counter() - t0) * 1e3
        call()          # the second call checks the fed-back states' shapes
    except Exception as e:  # noqa: BLE001 - the runtime's refusal, in one line
        raise ModelError(f"{model.path.name} does not run on {device}: {_why(e)}") from None
    return first_ms


def bench(spec: Any, req: BenchRequest, plan: Plan | None = None,
          say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every model measured on the device of ``spec`` (a DeviceSpec): the
    result as a JSON-ready dict. ModelError / DeviceUnavailable: one line.

    Host devices run the model call by call here (states fed back, A vs B
    interleaved call blocks); a phone runs whole series with its benchmark
    tool (cold start from the tool's own timings, A vs B in alternating
    batches)."""
    _check_request(req)
    say = say or (lambda _: None)
    plan = plan or spec.plan
    options = {**spec.options, **({"op_profiling": True} if req.ops and "op_profiling"
                                   in spec.options else {})}
    adapter = adapter_class(spec.adapter)(spec.name, options)
    reason = adapter.check_runtime()
    if reason:
        raise DeviceUnavailable(f"device {spec.name}: {reason}")
    prepared = [prepare_model(p, req, adapter.formats, spec.name) for p in req.models]
    state_before = cpu_state() if adapter.runs_on_host else {}
    models, calls, handles, per_call = [], [], [], []
    try:
        for model, run, sources in prepared:
            say(f"{model.name}: loading on {spec.name}")
            handle, load_ms = _load(adapter, model, run, spec.name)
            call = adapter.caller(handle)
            if call is None:
                _batch_check(model, run, req, spec.name)
            first_ms = _first(call, model, spec.name) if call is not None else None
            say(f"{model.name}: measuring the steady state")
            m = adapter.measure(handle, plan, arch_id=model.name, graph="model",
                                model_bytes=model.size_bytes, inputs=run.inputs)
            if call is None:     # the tool's own cold start: load, then first call
                load_ms, first_ms = m.init_ms, m.first_ms
            entry = _entry(model, run, sources, load_ms, first_ms, m, req)
            if call is None:
                entry["state_note"] = BATCH_NOTE if run.pairs else None
            if req.ops:
                say(f"{model.name}: profiling operators")
                entry["ops"] = (_op_table(adapter, run, call) if call is not None
                                else _tool_ops(m, run))
            models.append(entry)
            calls.append(call)
            handles.append(handle)
            per_call.append(m.latency.get("p50_ms", m.latency.get("mean_ms")) / 1e3)
        comparison = _compare(adapter, calls, handles, per_call, plan, req, say)
        for entry, got in zip(models, (comparison or {}).get("models", [])):
            got["model"] = entry["name"]
    finally:
        adapter.close()
    provenance = models[0]["provenance"] if models else {}
    return {"kind": "hwnas bench", "date": _dt.datetime.now(_dt.UTC).isoformat(
                timespec="seconds"),
            "device": spec.name, "device_description": spec.description,
            "adapter": spec.adapter, "plan": asdict(plan),
            "device_state": {"before": state_before,
                             "after": cpu_state() if adapter.runs_on_host else {}},
            "runtime": provenance.get("runtime"), "threads": provenance.get("threads"),
            "models": models, "comparison": comparison}


def _compare(adapter: Any, calls: list[Any], handles: list[Any], per_call: list[float],
             plan: Plan, req: BenchRequest, say: Callable[[str], None]) -> dict[str, Any] | None:
    if len(calls) < 2:
        return None
    if all(c is not None for c in calls):
        say(f"comparing {len(calls)} models, interleaved, {req.compare_seconds:g} s")
        block_s = 0.05
        return compare.analyse(compare.interleave(calls, per_call, req.compare_seconds,
                                                  block_s), block_s)
    batch_s = max(0.5, min(plan.min_seconds, 2.0))
    say(f"comparing {len(calls)} models in alternating batches, {req.compare_seconds:g} s")
    small = plan.replace(warmup_runs=min(plan.warmup_runs, 5), min_seconds=batch_s,
                         max_seconds=max(batch_s, plan.max_seconds))
    return compare.analyse(compare.alternate(adapter, handles, small, req.compare_seconds),
                           batch_s, compare.BATCH_METHOD)


def _tool_ops(m: Any, run: ModelRun) -> dict[str, Any]:
    """The device tool's own per-operator table (benchmark_model's op profiling)."""
    rows = m.extra.get("ops") or []
    task = own_task(run.path) if rows else None
    by_order = ops.attribute(rows, task.op_block) if task is not None else None
    out: dict[str, Any] = {"source": "benchmark_model --enable_op_profiling", "rows": rows,
                           "blocks": ops.by_block(rows) if task is not None else None,
                           "by_order_share": by_order}
    if not rows:
        out["note"] = "the device's benchmark tool printed no per-operator table"
    return out


def _why(e: BaseException) -> str:
    from hwnas.errors import first_line

    return first_line(e, 200)


def _entry(model: ModelFile, run: ModelRun, sources: dict[str, str], load_ms: float,
           first_ms: float, m: Any, req: BenchRequest) -> dict[str, Any]:
    lat = m.latency
    out: dict[str, Any] = {
        "name": model.name, "path": str(model.path), "format": model.format,
        "size_bytes": model.size_bytes, "notes": model.notes,
        "inputs": [{**i, "source": sources.get(i["name"], "")} for i in run.inputs],
        "outputs": run.outputs,
        "state_pairs": [{"input": i, "output": o} for o, i in run.pairs.items()],
        "cold": {"load_ms": load_ms, "first_ms": first_ms},
        "steady": lat, "checks": m.checks, "flags": m.flags, "attempts": m.attempts,
        "memory_mb": m.memory_mb, "provenance": m.provenance,
        # a phone's thermal zones and core clocks before and after, its reference timings
        "device_record": {k: v for k, v in m.extra.items() if k != "ops"}}
    if req.audio_ms is not None:
        algo = req.audio_ms + req.lookahead_ms
        p50 = lat.get("p50_ms", lat["mean_ms"])   # a tool that prints no median: its mean
        out["streaming"] = {
            "audio_ms": req.audio_ms, "lookahead_ms": req.lookahead_ms,
            "rtf": p50 / req.audio_ms,
            "algorithmic_delay_ms": algo,
            "emission_delay_ms": algo + p50,
            "emission_delay_p90_ms": algo + lat["p90_ms"] if "p90_ms" in lat else None,
            "method": "emission delay = audio per call + look-ahead (stated) + compute "
                      "(the steady-state p50; p90 beside it)"}
    return out


def save(result: dict[str, Any], workspace: Path) -> Path:
    """``<workspace>/benches/<UTC time>-<first model>/``: result.json, and
    ops-<model>.csv per model profiled; written whole or not at all."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    first = result["models"][0]["name"] if result["models"] else "bench"
    final = workspace / "benches" / f"{stamp}-{first}"
    n = 1
    while final.exists():
        n += 1
        final = workspace / "benches" / f"{stamp}-{first}-{n}"
    tmp = final.with_name(final.name + ".partial")
    tmp.mkdir(parents=True)
    for m in result["models"]:
        if m.get("ops", {}).get("rows"):
            ops.write_csv(m["ops"]["rows"], tmp / f"ops-{m['name']}.csv")
    (tmp / "result.json").write_text(json.dumps(to_json(result), indent=1, sort_keys=True))
    tmp.rename(final)
    return final


def to_json(x: Any) -> Any:
    """``x`` with numpy scalars as Python numbers and unbounded interval ends
    (a one-run series has none) as null: strict JSON."""
    import math

    import numpy as np

    if isinstance(x, dict):
        return {k: to_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_json(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
