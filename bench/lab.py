"""The lab's costs on this host: profiling throughput over 1, 2 and 4 loopback
phones on a real Ray cluster next to the in-process executor, the executor's
overhead per unit, and the study storage under 8 concurrent writers.

    python -m bench.lab [--n 12] [--postgres postgresql+psycopg://...]

Ray binds to every interface, so the cluster parts re-run this script in a
loopback-only network namespace (unshare -n; root). The models are exported
once, before any timing: the figures are about placing and measuring, not
converting. bench/results/lab.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library

OUT = ROOT / "bench" / "results" / "lab.json"
TINY = {"frontend": ["logmel"], "n_filters": [40], "subsampling": ["conv2d4"],
        "encoder": ["conformer", "transformer", "contextnet"], "streaming": [True],
        "num_layers": [1], "d_model": [96], "decoder": ["ctc"]}


def exported(n: int, cache: Path) -> list[tuple[dict, object]]:
    from hwnas.asr import default_space
    from hwnas.profiling.measure import export_row

    out = []
    for arch in default_space().with_choices(TINY).sample_distinct(n, 0):
        row, art = export_row(arch, "tflite", cache, 1)
        assert art is not None, row.get("error")
        out.append((row, art))
    return out


def measure_all(items, executor, phones: list[str], workspace: Path) -> tuple[float, list]:
    """Wall seconds to measure every item over ``phones`` (one in flight each)."""
    from dataclasses import asdict

    from hwnas.adapters.devicefile import load_device
    from hwnas.asr import ArchConfig
    from hwnas.profiling.profiler import PhonePool, pipeline
    from hwnas.profiling.units import Measure

    plan = asdict(load_device(phones[0], workspace).plan)
    rows = {id(row): (row, art) for row, art in items}

    def export(arch, rep):
        from concurrent.futures import Future

        f: Future = Future()
        f.set_result(rows[rep])
        return f

    def measure(phone, row, art):
        return executor.submit(Measure(phone, str(workspace), row, art, plan))

    todo = [(ArchConfig.from_dict(row["arch"]), id(row)) for row, _ in items]
    pool = PhonePool(phones, executor, 60.0)
    t = time.perf_counter()
    out = [r for _, r in pipeline(todo, export, measure, pool, ahead=len(items))]
    return time.perf_counter() - t, out


def cluster_part(n: int) -> dict:
    from hwnas.execution import LocalExecutor
    from hwnas.execution.ray import RayExecutor
    from hwnas.testing.lab import LoopbackLab, Probe

    res: dict = {"throughput": [], "overhead": {}}
    with tempfile.TemporaryDirectory() as tmp:
        items = exported(n, Path(tmp) / "models")
        for k in (1, 2, 4):
            names = [f"loop-{i}" for i in range(k)]
            with LoopbackLab(Path(tmp) / f"lab{k}", names) as lab:
                if k == 1:   # the same phone in process: no cluster at all
                    wall, rows = measure_all(items, LocalExecutor(), names, lab.workspace)
                    res["throughput"].append(_row("local", 1, wall, rows))
                ex = RayExecutor(lab.address)
                measure_all(items[:k], ex, names, lab.workspace)     # workers warm
                wall, rows = measure_all(items, ex, names, lab.workspace)
                res["throughput"].append(_row("ray", k, wall, rows))
                if k == 1:
                    for seconds in (0.0, 0.1):
                        rt = []
                        for _ in range(30):
                            t = time.perf_counter()
                            inside = ex.submit(Probe(seconds, "loop-0")).result()
                            rt.append(time.perf_counter() - t - inside)
                        res["overhead"][f"{seconds:g}s"] = {
                            "median_ms": 1e3 * statistics.median(rt),
                            "p90_ms": 1e3 * sorted(rt)[int(0.9 * len(rt))],
                            "units": len(rt)}
                ex.close()
                print(json.dumps(res["throughput"][-1]), flush=True)
    return res


def _row(executor: str, phones: int, wall: float, rows: list) -> dict:
    ok = sum(r["status"] in ("ok", "flagged") for r in rows)
    busy = [r.get("measure_s") or 0 for r in rows]
    return {"executor": executor, "phones": phones, "measured": ok, "wall_s": round(wall, 2),
            "per_min": round(60 * ok / wall, 1),
            "device_s_per_unit": round(statistics.median(busy), 2)}


def _writer(url: str, study: str, seconds: float, q) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    done = errors = 0
    end = time.monotonic() + seconds
    s = optuna.load_study(study_name=study, storage=url)
    while time.monotonic() < end:
        try:
            t = s.ask()
            x = t.suggest_float("x", 0, 1)
            s.tell(t, [x, 1 - x])
            done += 1
        except Exception:  # noqa: BLE001 - counted: none are allowed
            errors += 1
    q.put((done, errors))


def storage_part(urls: dict[str, str], writers: int = 8, seconds: float = 20.0) -> dict:
    import optuna

    out = {}
    for name, url in urls.items():
        study = f"bench-lab-{int(time.time())}"
        optuna.create_study(study_name=study, storage=url, directions=["minimize"] * 2)
        q = multiprocessing.get_context("spawn").Queue()
        procs = [multiprocessing.get_context("spawn").Process(
            target=_writer, args=(url, study, seconds, q)) for _ in range(writers)]
        for p in procs:
            p.start()
        got = [q.get(timeout=seconds + 120) for _ in procs]
        for p in procs:
            p.join()
        stored = len(optuna.load_study(study_name=study, storage=url).trials)
        done = sum(d for d, _ in got)
        out[name] = {"writers": writers, "seconds": seconds, "trials": done,
                     "per_s": round(done / seconds, 1), "errors": sum(e for _, e in got),
                     "stored": stored}
        print(json.dumps({name: out[name]}), flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12, help="architectures per throughput run")
    ap.add_argument("--postgres", help="a PostgreSQL URL for the storage part")
    ap.add_argument("--part", choices=("all", "cluster", "storage"), default="all")
    args = ap.parse_args()
    from hwnas.testing.lab import is_loopback_only, run_in_loopback_namespace

    result = json.loads(OUT.read_text()) if OUT.is_file() else {}
    if args.part in ("all", "cluster"):
        if is_loopback_only():
            result.update(cluster_part(args.n))
        else:
            r = run_in_loopback_namespace([sys.executable, __file__, "--part", "cluster",
                                           "--n", str(args.n)],
                                          env={**os.environ, "OMP_NUM_THREADS": "1"})
            if r.returncode:
                return r.returncode
            result = json.loads(OUT.read_text())
    if args.part in ("all", "storage"):
        with tempfile.TemporaryDirectory() as tmp:
            urls = {"sqlite": f"sqlite:///{tmp}/study.db"}
            if args.postgres:
                urls["postgresql"] = args.postgres
            result["storage"] = storage_part(urls)
    result["host"] = {"cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
