"""A vs B on one host: models called in interleaved blocks, compared by
paired ratios.

A round gives each model one block of calls (about ``block_s`` of work);
rounds alternate the order (A B, then B A: A B B A A B ...), so a model is
as often first as last and a drift of the host's speed hits both alike. In
each round, a model's block median over the first model's block median is
one paired ratio: both blocks ran within a fraction of a second of each
other, so the host's slow and fast phases (seconds long) cancel in it. The
ratio's 95% interval is Student's t over the rounds' log ratios.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hwnas.adapters.statistics import quantile_ci

METHOD = ("interleaved blocks (A B B A ...), {block_ms:g} ms of calls per block; ratio = "
          "geometric mean over {rounds} rounds of block medians' ratios, 95% Student t "
          "interval of the log ratios")


def interleave(calls: list[Callable[[], Any]], per_call_s: list[float], seconds: float,
               block_s: float = 0.05, min_rounds: int = 10) -> list[list[list[float]]]:
    """times[round][model] = seconds per call of that model's block."""
    sizes = [max(1, round(block_s / max(p, 1e-6))) for p in per_call_s]
    clock = time.perf_counter
    rounds: list[list[list[float]]] = []
    end = clock() + seconds
    while clock() < end or len(rounds) < min_rounds:
        order = range(len(calls)) if len(rounds) % 2 == 0 else reversed(range(len(calls)))
        got: list[list[float]] = [[] for _ in calls]
        for k in order:
            call, block = calls[k], got[k]
            for _ in range(sizes[k]):
                t0 = clock()
                call()
                block.append(clock() - t0)
        rounds.append(got)
    return rounds


BATCH_METHOD = ("models pushed once and run alternately in batches of the device's benchmark "
                "tool (A B B A ...), {seconds:g} s each; ratio = geometric mean over {rounds} "
                "rounds of the batches' medians' ratios, 95% Student t interval of the log "
                "ratios")


def alternate(adapter: Any, handles: list[Any], plan: Any, seconds: float,
              min_rounds: int = 6) -> list[list[list[float]]]:
    """times[round][model] = [the batch's median seconds per call]: for devices
    whose tool times a whole series per run (a phone's benchmark_model)."""
    rounds: list[list[list[float]]] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(rounds) < min_rounds:
        order = range(len(handles)) if len(rounds) % 2 == 0 else reversed(range(len(handles)))
        got: list[list[float]] = [[] for _ in handles]
        for k in order:
            s = adapter.batch(handles[k], plan).summary or {}
            got[k] = [s.get("p50_ms", s.get("mean_ms", float("nan"))) / 1e3]
        rounds.append(got)
    return rounds


def analyse(rounds: list[list[list[float]]], block_s: float,
            method: str = METHOD) -> dict[str, Any]:
    """Each model's p50 with its interval, and its ratio to the first model."""
    from scipy import stats

    n_models = len(rounds[0])
    med = np.array([[float(np.median(r[k])) for k in range(n_models)] for r in rounds])
    models = []
    for k in range(n_models):
        series = np.concatenate([r[k] for r in rounds])
        lo, hi, _ = quantile_ci(series, 0.5)
        entry: dict[str, Any] = {"p50_ms": float(np.median(series)) * 1e3,
                                 "p50_ci_lo": lo * 1e3, "p50_ci_hi": hi * 1e3,
                                 "n": int(series.size)}
        if k:
            logs = np.log(med[:, k] / med[:, 0])
            mean = float(logs.mean())
            half = float(stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1)
                         / math.sqrt(len(logs)))
            ratio, r_lo, r_hi = math.exp(mean), math.exp(mean - half), math.exp(mean + half)
            entry.update(ratio=ratio, ratio_ci_lo=r_lo, ratio_ci_hi=r_hi,
                         verdict=verdict(ratio, r_lo, r_hi))
        models.append(entry)
    return {"method": method.format(block_ms=block_s * 1e3, seconds=block_s, rounds=len(rounds)),
            "rounds": len(rounds), "models": models}


def verdict(ratio: float, lo: float, hi: float) -> str:
    if lo <= 1.0 <= hi:
        return "no difference detectable"
    return (f"{ratio:.3g}x the first's time (slower)" if ratio > 1
            else f"{ratio:.3g}x the first's time (faster)")
