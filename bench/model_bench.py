"""How much does `hwnas bench` add to what it times, and how well does its
A vs B tell two models apart on this machine?

    python -m bench.model_bench                  # both parts (~4 min)
    python -m bench.model_bench --parts a

(a) harness overhead at p50: `hwnas bench`'s steady state (the cpu device's
    adapter on a ModelRun: state fed back, reference probe beside the calls)
    against a bare loop of the same ``session.run`` calls with the same state
    passing, each call timed by one perf_counter pair. Three models: a GRU
    stream (about 15 us a call, where overhead shows most), the exported
    conformer_xs (utterance graph) and conformer_s_streaming (chunk graph, 51
    states fed back). Rounds alternate bare and
    harness; each round's p50 ratio is one paired figure; the overhead is
    their median with a 95% t interval of their mean. Goal <= 1%.
(b) the A vs B interval: `hwnas bench conformer_xs conformer_s_streaming` with 5
    seconds interleaved, 5 times; the half-width of the ratio's 95% interval
    relative to the ratio (goal <= 2%), and how much the ratio itself moves
    from one run to the next (which the interval of one run cannot see).
(c) the same for two models of one kind: one 192x192 matrix product, and two.
Prints a table and writes bench/results/model_bench.json.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import save


def _models(work: Path) -> dict[str, tuple[str, list[str], list[str]]]:
    """name -> (path, --shape flags, --value flags)."""
    from hwnas.asr import preset
    from hwnas.export import export
    from hwnas.testing.onnx_models import gru_model

    work.mkdir(parents=True, exist_ok=True)
    out = {"gru-stream": (str(gru_model(work / "gru.onnx")), ["time=1"], ["sr=16000"])}
    for name in ("conformer_xs", "conformer_s_streaming"):
        art = export(preset(name), "onnx", work / name, check=False)
        out[name] = (art.path, [], [])
    return out


def _bare_p50(call, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def part_a(work: Path, rounds: int = 12) -> dict:
    from scipy import stats

    from hwnas.adapters.devicefile import load_device
    from hwnas.adapters.runtimes import ort_callables, ort_session
    from hwnas.bench.run import BenchRequest, prepare_model

    spec = load_device("cpu")
    adapter = spec.make()
    plan = spec.plan.replace(retries=0)
    out = {}
    for name, (path, shapes, values) in _models(work).items():
        req = BenchRequest([path], shapes=shapes, values=values)
        _, run, _ = prepare_model(path, req, ("onnx",), "cpu")
        sess = ort_session(path, 1)
        r, feed, _ = ort_callables(sess, run.inputs, run.outputs, (dict(run.feeds),
                                                                   dict(run.pairs)))

        def bare_call(r=r, feed=feed):
            o = r()
            if feed is not None:
                feed(o)

        handle = adapter.prepare(run)
        ratios, bare_ms, ours_ms = [], [], []
        for i in range(rounds):
            for _ in range(20):
                bare_call()
            if i % 2 == 0:      # alternate which goes first
                m_bare = _timed_bare(bare_call)
                m = adapter.measure(handle, plan, arch_id=name, graph="model", model_bytes=1)
            else:
                m = adapter.measure(handle, plan, arch_id=name, graph="model", model_bytes=1)
                m_bare = _timed_bare(bare_call)
            ours = m.latency["p50_ms"]
            ratios.append(ours / m_bare - 1.0)
            bare_ms.append(m_bare)
            ours_ms.append(ours)
        x = np.array(ratios)
        half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
        out[name] = {"bare_p50_ms": float(np.median(bare_ms)),
                     "harness_p50_ms": float(np.median(ours_ms)),
                     "overhead_median": float(np.median(x)), "overhead_mean": float(x.mean()),
                     "overhead_mean_ci": [float(x.mean()) - half, float(x.mean()) + half],
                     "rounds": rounds}
    return out


def _timed_bare(call, seconds: float = 1.0) -> float:
    """p50 ms of a bare loop run for about ``seconds`` (as long as the plan's minimum)."""
    t0 = time.perf_counter()
    call()
    per = max(time.perf_counter() - t0, 1e-6)
    return _bare_p50(call, max(50, int(seconds / per)))


def part_b(work: Path, pair: str = "conformers", repeats: int = 5,
           seconds: float = 5.0) -> dict:
    from hwnas.adapters.devicefile import load_device
    from hwnas.bench.run import BenchRequest, bench
    from hwnas.testing.onnx_models import matmuls

    if pair == "conformers":
        models = _models(work)
        paths = [models["conformer_xs"][0], models["conformer_s_streaming"][0]]
    else:       # two models of one kind: one matrix product, and two
        work.mkdir(parents=True, exist_ok=True)
        paths = [str(matmuls(work / "mm1.onnx", 1)), str(matmuls(work / "mm2.onnx", 2))]
    spec = load_device("cpu")
    runs = []
    for _ in range(repeats):
        res = bench(spec, BenchRequest(paths, compare_seconds=seconds),
                    spec.plan.replace(retries=0))
        m = res["comparison"]["models"][1]
        runs.append({"ratio": m["ratio"], "lo": m["ratio_ci_lo"], "hi": m["ratio_ci_hi"],
                     "half_width": (m["ratio_ci_hi"] - m["ratio_ci_lo"]) / 2 / m["ratio"],
                     "rounds": res["comparison"]["rounds"]})
    return {"pair": pair, "seconds": seconds, "runs": runs,
            "half_width_median": float(np.median([r["half_width"] for r in runs])),
            "ratio_spread": float(np.std([r["ratio"] for r in runs], ddof=1)
                                  / np.mean([r["ratio"] for r in runs]))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="a,b,c")
    args = p.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="hwnas-model-bench-") as tmp:
        work = Path(tmp)
        if "a" in args.parts:
            results["a"] = part_a(work / "a")
            print(f"{'(a) harness overhead at p50':<34}{'bare ms':>10}{'hwnas ms':>10}"
                  f"{'median':>9}{'mean [95% CI]':>24}   goal <= 1%")
            for name, v in results["a"].items():
                lo, hi = v["overhead_mean_ci"]
                print(f"    {name:<30}{v['bare_p50_ms']:>10.4f}{v['harness_p50_ms']:>10.4f}"
                      f"{v['overhead_median']:>+9.2%}{v['overhead_mean']:>+9.2%} "
                      f"[{lo:+.2%}, {hi:+.2%}]")
        for part, pair, label in (("b", "conformers", "conformer_s_streaming / conformer_xs"),
                                  ("c", "matmuls", "two matrix products / one")):
            if part not in args.parts:
                continue
            results[part] = b = part_b(work / part, pair)
            print(f"({part}) A vs B, {b['seconds']:g} s interleaved, {label}:")
            for r in b["runs"]:
                print(f"    ratio {r['ratio']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]  half-width "
                      f"{r['half_width']:.2%}  ({r['rounds']} rounds)")
            print(f"    median half-width {b['half_width_median']:.2%} (goal <= 2%); spread of "
                  f"the ratio over repeats {b['ratio_spread']:.2%}")
    print(f"written: {save('model_bench.json', results)}")


if __name__ == "__main__":
    main()
