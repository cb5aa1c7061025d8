"""The loopback device's ``benchmark_model``: runs a .tflite with the host's
LiteRT interpreter following TFLite benchmark_model's flags and rules (warm-up
runs, then at least --num_runs runs *and* --min_secs seconds, capped by
--max_secs; random inputs) and prints its output format (TFLite 2.1x with
percentiles). The numbers are real measurements of this host.

    python -m hwnas.testing.benchmark_model --root DIR --graph=/data/local/tmp/m.tflite
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

from hwnas.errors import first_line

FLAGS = {"graph": "", "num_threads": "-1", "warmup_runs": "1", "warmup_min_secs": "0.5",
         "num_runs": "50", "min_secs": "1", "max_secs": "150", "run_delay": "-1",
         "use_gpu": "false", "use_nnapi": "false", "use_xnnpack": "true",
         "enable_op_profiling": "false", "report_peak_memory_footprint": "false",
         "verbose": "false"}


def _g(x: float) -> str:
    """C++ ostream default formatting (6 significant digits)."""
    return f"{x:.6g}"


def _stats_line(us: list[int]) -> str:
    a = np.asarray(us, dtype=np.int64)
    avg = float(a.mean())
    std = int(round(float(a.std())))
    p5, med, p95 = (int(v) for v in np.percentile(a, [5, 50, 95], method="lower"))
    return (f"count={len(a)} first={a[0]} curr={a[-1]} min={a.min()} max={a.max()} "
            f"avg={_g(avg)} std={std} p5={p5} median={med} p95={p95}")


SLOWDOWN = ".loopback/slowdown"


def slowdown(root: Path) -> float:
    """How much slower the loopback phone runs now: ROOT/.loopback/slowdown
    holds "FACTOR UNTIL" (UNTIL in epoch seconds), written by a test to make
    the phone slow for a while, as a hot phone's governor would; 1 otherwise."""
    try:
        factor, until = (float(x) for x in (root / SLOWDOWN).read_text().split())
    except (OSError, ValueError):
        return 1.0
    return factor if time.time() < until and factor > 1 else 1.0


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str]) -> int:
    root = Path("/")
    flags = dict(FLAGS)
    unknown = []
    for arg in argv:
        if arg.startswith("--root="):
            root = Path(arg.split("=", 1)[1])
            continue
        key, _, value = arg.lstrip("-").partition("=")
        if key in flags and arg.startswith("--"):
            flags[key] = value if value else "true"
        else:
            unknown.append(arg)
    def log(*a: object) -> None:
        print(*a, flush=True)

    start_rss = _maxrss_mb()
    log("INFO: STARTING!")
    if unknown:
        log(f"ERROR: Unconsumed cmdline flags: {' '.join(unknown)}")
        return 1
    log(f"INFO: Log parameter values verbosely: [{int(flags['verbose'] == 'true')}]")
    log(f"INFO: Min num runs: [{flags['num_runs']}]")
    log(f"INFO: Min runs duration (seconds): [{flags['min_secs']}]")
    log(f"INFO: Num threads: [{flags['num_threads']}]")
    log(f"INFO: Min warmup runs: [{flags['warmup_runs']}]")
    log(f"INFO: Graph: [{flags['graph']}]")
    log(f"INFO: Enable op profiling: [{int(flags['enable_op_profiling'] == 'true')}]")
    if not flags["graph"]:
        log("ERROR: Please specify the name of your TF Lite input file with --graph")
        return 1
    path = root / flags["graph"].lstrip("/")
    if not path.is_file():
        log(f"ERROR: Can not open {flags['graph']}")
        log("ERROR: Could not build model from the provided pointer.")
        return 1
    if flags["use_gpu"] == "true":
        log("ERROR: GPU acceleration is unsupported on this platform.")
        log("ERROR: Failed to apply GPU delegate.")
        return 1
    if flags["use_nnapi"] == "true":
        log("ERROR: NNAPI acceleration is unsupported on this platform.")
        log("ERROR: Failed to apply NNAPI delegate.")
        return 1
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        log("ERROR: this loopback device needs ai-edge-litert on the host")
        return 1
    threads = int(flags["num_threads"])
    t0 = time.perf_counter()
    try:
        it = Interpreter(model_path=str(path), num_threads=threads if threads > 0 else None)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        log(f"ERROR: {first_line(e)}")
        log("ERROR: Failed to initialize the interpreter")
        return 1
    init_us = int((time.perf_counter() - t0) * 1e6)
    log(f"INFO: Loaded model {flags['graph']}")
    log(f"INFO: The input model file size (MB): {_g(path.stat().st_size / 1e6)}")
    log(f"INFO: Initialized session in {_g(init_us / 1e3)}ms.")
    init_rss = _maxrss_mb()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        if np.issubdtype(d["dtype"], np.integer):
            info = np.iinfo(d["dtype"])
            x = rng.integers(info.min, info.max, size=d["shape"], endpoint=True)
        else:
            x = rng.uniform(-1, 1, size=d["shape"])
        it.set_tensor(d["index"], x.astype(d["dtype"]))

    def phase(min_runs: int, min_secs: float, max_secs: float) -> list[int]:
        log(f"INFO: Running benchmark for at least {min_runs} iterations and at least "
            f"{_g(min_secs)} seconds but terminate if exceeding {_g(max_secs)} seconds.")
        times: list[int] = []
        begin = time.perf_counter()
        while True:
            # read before the clock starts: a file read inside the timed span costs tens
            # of microseconds, as much as a tiny model's call, and only while slowed
            slower = slowdown(root)
            s = time.perf_counter()
            it.invoke()
            e = time.perf_counter()
            if slower > 1:   # the phone's clock fell: each call takes longer (a spin, not
                end = e + (slower - 1) * (e - s)   # a sleep: sleeps overshoot by ~60 us)
                while time.perf_counter() < end:
                    pass
                e = time.perf_counter()
            times.append(int((e - s) * 1e6))
            total = e - begin
            if (len(times) >= min_runs and total >= min_secs) or total >= max_secs:
                break
        log(f"INFO: {_stats_line(times)}")
        log("")
        return times

    max_secs = float(flags["max_secs"])
    warm = phase(int(flags["warmup_runs"]), float(flags["warmup_min_secs"]), max_secs)
    runs = phase(int(flags["num_runs"]), float(flags["min_secs"]), max_secs)
    log(f"INFO: Inference timings in us: Init: {init_us}, First inference: {warm[0]}, "
        f"Warmup (avg): {_g(float(np.mean(warm)))}, Inference (avg): {_g(float(np.mean(runs)))}")
    log("INFO: Note: as the benchmark tool itself affects memory footprint, the following is "
        "only APPROXIMATE to the actual memory footprint of the model at runtime. Take the "
        "information at your discretion.")
    end_rss = _maxrss_mb()
    log(f"INFO: Memory footprint delta from the start of the tool (MB): "
        f"init={_g(init_rss - start_rss)} overall={_g(end_rss - start_rss)}")
    if flags["report_peak_memory_footprint"] == "true":
        log(f"INFO: Overall peak memory footprint (MB) via periodic monitoring: {_g(end_rss)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
