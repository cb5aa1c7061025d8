"""`hwnas report`: what a search did, as PNG figures and one HTML page.

Figures (matplotlib, written as PNG and embedded in ``report.html``):
  pareto.png      every trial on (speed, CER): trained, infeasible (not
                  trained), early-stopped; the feasible front and the constraint.
                  Speed is the study's own objective: emission delay, real-time
                  factor or compute per call
  hypervolume.png hypervolume of the feasible (CER, speed) front after each trial
  best_cer.png    dev CER of each trained trial and the best so far
  diversity.png   entropy of the encoder and decoder choices per generation
  compute.png     per generation: trained / stopped early / infeasible, and the
                  training budget spent
  importance.png  parameter importances (Optuna's fANOVA) for each objective
  top.png         the top-N feasible architectures side by side, one diagram each

Latencies are the ones the study recorded (predicted during the search), and
every figure says so.
"""

from __future__ import annotations

import base64
import html
import json
import math
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from hwnas import tasks

FIGURES = ("pareto", "hypervolume", "best_cer", "diversity", "compute", "importance", "top")


def quality_name(study: Any) -> str:
    """What the study's trained quality is, as the figures name it (a row's
    ``cer`` holds it, whatever it is: a recogniser's CER, a TTS model's MCD)."""
    return {"cer": "CER", "mcd": "MCD (dB)"}.get(study.user_attrs.get("quality_key", "cer"),
                                                 study.user_attrs.get("quality_key", "?"))


def load_trials(study: Any) -> list[dict[str, Any]]:
    """Completed trials as plain rows, in trial order; ``cer`` is the study's
    trained quality (``quality_name``)."""
    import optuna

    key = study.user_attrs.get("quality_key", "cer")
    rows = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        a = t.user_attrs
        if "arch" not in a:
            continue
        # "trained": stand-alone; "screened": scored only with supernet weights
        source = a.get("cer_source", "trained") if a.get("trained") else None
        rows.append({"trial": t.number, "arch": a["arch"], "arch_id": a["arch_id"],
                     "cer": float(a.get(key, math.nan)), "latency_ms": a["latency_ms"],
                     "delay_ms": a.get("delay_ms"), "algorithmic_ms": a.get("algorithmic_ms"),
                     "rtf": a.get("rtf"), "params": a["params"], "size_mb": a.get("size_mb"),
                     "feasible": all(c <= 0 for c in a.get("constraints", [0.0])),
                     "trained": source == "trained", "cer_source": source,
                     "screened": source not in (None, "trained"), "rungs": a.get("rungs") or [],
                     "stopped_at": a.get("stopped_at"), "baseline": a.get("baseline"),
                     "run_trial": a.get("run_trial", t.number)})
    return rows


def last_rungs(rows: list[dict[str, Any]], seen: set[int] | None = None
               ) -> Iterator[dict[str, Any]]:
    """Each run's last rung (as it ran), once per run: trials that reuse an
    earlier trial's run share it. ``seen`` carries the runs already given
    across calls."""
    seen = set() if seen is None else seen
    for r in rows:
        if r["rungs"] and r["run_trial"] not in seen:
            seen.add(r["run_trial"])
            yield r["rungs"][-1]


def training_of(rows: list[dict[str, Any]], unit: str, seen: set[int] | None = None) -> float:
    """The training the rows' runs took (their last rungs, as they ran), each
    run once; ``seen`` carries the runs already counted across calls."""
    from hwnas.search.study import took

    return sum((took(rung, unit) for rung in last_rungs(rows, seen)), 0.0)


def gpu_use_of(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The trials' GPU use from their last rungs' records (nn.gpu_use), each
    run once; None when no trial trained on a GPU. Utilisation is the card's,
    so trials that shared a card each count the card's figure."""
    last = list(last_rungs(rows))
    mem = [float(g["gpu_mb"]) for g in last if g.get("gpu_mb") is not None]
    util = [float(g["gpu_util_pct"]) for g in last if g.get("gpu_util_pct") is not None]
    if not mem:
        return None
    return {"runs": len(mem), "peak_mb_median": float(np.median(mem)), "peak_mb_max": max(mem),
            "util_runs": len(util), "util_pct_mean": float(np.mean(util)) if util else None}


def gpu_line(use: dict[str, Any]) -> str:
    """One line on the trials' GPU use, for the compute figure and the page."""
    text = (f"{use['runs']} runs on a GPU: peak memory median {use['peak_mb_median']:.0f} MB, "
            f"max {use['peak_mb_max']:.0f} MB")
    if use["util_pct_mean"] is None:
        return text + "; utilisation not readable on the GPU hosts"
    return text + (f"; card utilisation {use['util_pct_mean']:.0f}% on average "
                   f"({use['util_runs']} runs)")


def front_2d(points: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of (N, 2) points (minimise both), by x."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    keep, best = [], math.inf
    for i in order:
        if points[i, 1] < best:
            keep.append(i)
            best = points[i, 1]
    return np.array(keep, dtype=int)


def hypervolume_2d(points: np.ndarray, ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (minimise both) and bounded by ``ref``."""
    pts = points[(points[:, 0] < ref[0]) & (points[:, 1] < ref[1])]
    if len(pts) == 0:
        return 0.0
    f = pts[front_2d(pts)]
    xs = np.append(f[1:, 0], ref[0])
    return float(np.sum((xs - f[:, 0]) * (ref[1] - f[:, 1])))


class Axis(NamedTuple):
    """The speed objective the figures put against CER: the study's own."""

    key: str              # row field
    limit: float | None   # its constraint
    label: str            # what it is
    unit: str


def speed_axis(study: Any) -> Axis:
    cons = study.user_attrs.get("constraints") or {}
    objectives = study.user_attrs.get("objectives", ["cer", "latency"])
    if "delay" in objectives:
        return Axis("delay_ms", cons.get("max_delay_ms"), "emission delay", "ms")
    if "rtf" in objectives and "latency" not in objectives:
        return Axis("rtf", cons.get("max_rtf"), "real-time factor", "")
    return Axis("latency_ms", cons.get("max_latency_ms"), "compute p50 per call", "ms")


LATENCY = Axis("latency_ms", None, "compute p50 per call", "ms")


def hv_history(rows: list[dict[str, Any]], ref: tuple[float, float], axis: Axis = LATENCY
               ) -> list[float]:
    """Hypervolume of the feasible trained (speed, CER) set after each trial."""
    out, pts = [], []
    for r in rows:
        if r["feasible"] and r["trained"]:
            pts.append((r[axis.key], r["cer"]))
        out.append(hypervolume_2d(np.array(pts).reshape(-1, 2), ref))
    return out


def entropy(values: list[Any]) -> float:
    """Shannon entropy (bits) of the choices in ``values``."""
    n = len(values)
    if n == 0:
        return 0.0
    return float(-sum(c / n * math.log2(c / n) for c in Counter(values).values()))


def _generations(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


# --- figures ------------------------------------------------------------------
def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fig_pareto(ax: Any, rows: list[dict[str, Any]], axis: Axis, q: str = "CER",
               source: str = "predicted") -> None:
    x = axis.key
    tr = [r for r in rows if r["trained"]]
    full = [r for r in tr if r["stopped_at"] is None]
    early = [r for r in tr if r["stopped_at"] is not None]
    inf = [r for r in rows if not r["trained"] and not r["screened"]]
    screened = [r for r in rows if r["screened"]]
    if screened:
        ax.scatter([r[x] for r in screened], [r["cer"] for r in screened], s=10, c="tab:green",
                   alpha=0.4, label=f"scored with supernet weights, not trained ({len(screened)})")
    if inf:   # a rug along the x axis: they have no CER, and are not drawn at CER 0
        ax.scatter([r[x] for r in inf], [0.03] * len(inf), marker="|", s=60, c="0.6",
                   transform=ax.get_xaxis_transform(), clip_on=False,
                   label=f"infeasible as {source}: not trained, no {q} (rug, {len(inf)})")
    ax.scatter([r[x] for r in early], [r["cer"] for r in early], s=22, c="tab:orange",
               alpha=0.7, label=f"stopped early ({len(early)})")
    ax.scatter([r[x] for r in full], [r["cer"] for r in full], s=28, c="tab:blue",
               label=f"trained to the last rung ({len(full)})")
    base = [r for r in tr if r.get("baseline")]
    if base:
        ax.scatter([r[x] for r in base], [r["cer"] for r in base], marker="s", s=70,
                   facecolors="none", edgecolors="k",
                   label=f"hand-designed baselines ({len(base)})")
        for r in base:
            ax.annotate(r["baseline"], (r[x], r["cer"]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")
    feas = [r for r in tr if r["feasible"]]
    if feas:
        pts = np.array([(r[x], r["cer"]) for r in feas])
        f = pts[front_2d(pts)]
        ax.step(f[:, 0], f[:, 1], where="post", c="tab:red", lw=1.5)
        ax.scatter(f[:, 0], f[:, 1], s=60, facecolors="none", edgecolors="tab:red",
                   label=f"feasible Pareto front ({len(f)})")
    if axis.limit:
        ax.axvline(axis.limit, ls="--", c="k", lw=1,
                   label=f"max {axis.label} {axis.limit:g} {axis.unit}")
    ax.set_xscale("log")
    if inf:   # the rug's blended transform leaves the x limits alone: widen them to it
        lo, hi = ax.get_xlim()
        xs = [r[x] for r in inf if r[x] and r[x] > 0]
        if xs:
            ax.set_xlim(min(lo, min(xs) / 1.08), max(hi, max(xs) * 1.08))
    ax.set_xlabel(f"{axis.label}{', ' + axis.unit if axis.unit else ''} ({source.upper()} "
                  "during the search; log scale)")
    ax.set_ylabel(f"dev {q} at the last rung reached")
    ax.set_title(f"Trials on {q} vs {axis.label}")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)


def fig_hypervolume(ax: Any, rows: list[dict[str, Any]], hv: list[float],
                    ref: tuple[float, float], axis: Axis = LATENCY, q: str = "CER",
                    source: str = "predicted") -> None:
    ax.plot([r["trial"] for r in rows], hv, c="tab:green")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"hypervolume ({axis.unit or axis.label} x {q})")
    ax.set_title(f"Hypervolume of the feasible front (reference: {ref[0]:.3g} {axis.unit}, "
                 f"{q} {ref[1]:.3g}; {axis.label} {source})", fontsize=10)
    ax.grid(alpha=0.3)


def fig_strategies(ax: Any, runs: list[tuple[str, list[float]]], ref: tuple[float, float],
                   axis: Axis = LATENCY) -> None:
    """Hypervolume against trials, one line per study (label: study and strategy)."""
    for label, hv in runs:
        ax.plot(range(1, len(hv) + 1), hv, label=label)
    ax.set_xlabel("trials")
    ax.set_ylabel(f"hypervolume ({axis.unit or axis.label} x CER)")
    ax.set_title(f"Strategies compared (reference {ref[0]:.3g} {axis.unit}, CER {ref[1]:g}; "
                 f"{axis.label} predicted)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def fig_best_cer(ax: Any, rows: list[dict[str, Any]], q: str = "CER") -> None:
    tr = [r for r in rows if r["trained"]]
    ax.scatter([r["trial"] for r in tr], [r["cer"] for r in tr], s=14, c="0.5",
               label=f"trial (dev {q}, last rung reached)")
    best, xs, ys = math.inf, [], []
    for r in rows:
        if r["trained"] and r["feasible"]:
            best = min(best, r["cer"])
        if math.isfinite(best):
            xs.append(r["trial"])
            ys.append(best)
    ax.step(xs, ys, where="post", c="tab:red", label="best feasible so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"dev {q}")
    ax.set_title(f"Best {q} vs trial")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def fig_diversity(ax: Any, gens: list[list[dict[str, Any]]]) -> None:
    x = np.arange(1, len(gens) + 1)
    first = gens[0][0]["arch"] if gens and gens[0] else {}
    # a recogniser's family choices; another task's first categorical decisions
    keys = [k for k in ("encoder", "decoder", "frontend") if k in first] or \
        [k for k, v in first.items() if isinstance(v, str) and k != "task"][:3]
    for key, c in zip(keys, ("tab:blue", "tab:purple", "tab:gray")):
        ax.plot(x, [entropy([r["arch"].get(key) for r in g]) for g in gens], marker="o", c=c,
                label=f"{key} choices")
    ax.set_xticks(x)
    ax.set_xlabel("generation")
    ax.set_ylabel("entropy (bits)")
    ax.set_title("Architecture diversity per generation")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def fig_compute(ax: Any, gens: list[list[dict[str, Any]]], unit: str,
                gpu: dict[str, Any] | None = None) -> None:
    """Trials per generation by how far they trained, the training spent, and
    (``gpu``: gpu_use_of) what the runs used of their GPUs."""
    x = np.arange(1, len(gens) + 1)
    full = np.array([sum(r["trained"] and r["stopped_at"] is None for r in g) for g in gens])
    early = np.array([sum(r["trained"] and r["stopped_at"] is not None for r in g) for g in gens])
    screened = np.array([sum(r["screened"] for r in g) for g in gens])
    inf = np.array([sum(not r["trained"] and not r["screened"] for r in g) for g in gens])
    ax.bar(x, full, color="tab:blue", label="trained to the last rung")
    ax.bar(x, early, bottom=full, color="tab:orange", label="stopped early")
    if screened.any():
        ax.bar(x, screened, bottom=full + early, color="tab:green",
               label="scored with supernet weights only")
    ax.bar(x, inf, bottom=full + early + screened, color="0.7", label="infeasible (not trained)")
    from matplotlib.ticker import MaxNLocator

    ax.set_xticks(x)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("trials")
    seen: set[int] = set()
    spent = np.cumsum([training_of(g, unit, seen) for g in gens])
    ax2 = ax.twinx()
    ax2.plot(x, spent, c="k", marker="s", label=f"training spent, cumulative ({unit})")
    ax2.set_ylabel(f"training budget spent ({unit})")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15),
              ncol=2)
    if gpu is None:
        ax.set_title("Early stopping and compute")
    else:
        ax.set_title(f"Early stopping and compute\n{gpu_line(gpu)}", fontsize=9)


def importances(study: Any) -> dict[str, dict[str, float]]:
    """Importances for each objective over the parameters every trained trial
    has (Optuna's fANOVA, seeded); empty where there are too few trials.
    fANOVA, not PED-ANOVA: PED-ANOVA compares the best tenth of trials with
    all of them, and a sampler that converged has made all of them alike --
    an objective set by one parameter alone got that parameter's importance
    near 0 (tests/test_report.py)."""
    import optuna

    trained = [t for t in study.get_trials(deepcopy=False,
                                           states=(optuna.trial.TrialState.COMPLETE,))
               if t.user_attrs.get("trained")]
    if len(trained) < 4:
        return {}
    sub = optuna.create_study(directions=study.directions)
    sub.add_trials(trained)
    out = {}
    for i, name in enumerate(study.user_attrs.get("objectives", ["cer", "latency"])):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                out[name] = optuna.importance.get_param_importances(
                    sub, target=lambda t, i=i: t.values[i],
                    evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
            except (RuntimeError, ValueError, ImportError):
                continue
    return out


def fig_importance(ax: Any, imp: dict[str, dict[str, float]]) -> None:
    if not imp:
        ax.text(0.5, 0.5, "too few trained trials for importances", ha="center")
        ax.set_axis_off()
        return
    names = sorted({p for d in imp.values() for p in d},
                   key=lambda p: -max(d.get(p, 0) for d in imp.values()))[:12]
    y = np.arange(len(names))
    h = 0.8 / len(imp)
    for k, (obj, d) in enumerate(imp.items()):
        ax.barh(y + k * h, [d.get(p, 0.0) for p in names], height=h, label=obj)
    ax.set_yticks(y + h * (len(imp) - 1) / 2, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("importance (fANOVA, normalised to sum 1 per objective)")
    ax.set_title("Parameter importances (trained trials; few trials: indicative)")
    ax.legend(fontsize=8)


def _blocks(a: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, colour) boxes from input to output for one architecture."""
    if "frontend" not in a:   # another task's: one box per part (enc_, dec_, var_ fields)
        parts: dict[str, list[str]] = {}
        for k, v in a.items():
            if v is not None and "_" in k and k != "n_phonemes" and k != "n_mels":
                part, field = k.split("_", 1)
                parts.setdefault(part, []).append(f"{field} {v}")
        colours = ("#d9e8f5", "#fde2c4", "#f3f3d0", "#d8f0d8")
        return [(f"{p}: " + ", ".join(fs[:2]) + ("\n" + ", ".join(fs[2:]) if fs[2:] else ""),
                 colours[i % len(colours)]) for i, (p, fs) in enumerate(parts.items())]
    fe = f"{a['frontend']} x{a['n_filters']}"
    out = [(fe, "#d9e8f5"), (f"subsampling {a['subsampling']}", "#e8e8e8")]
    enc = a["encoder"]
    inner = [f"{enc} x{a['num_layers']}, d={a['d_model']}"]
    if a.get("attention"):
        att = a["attention"] + (f" w{a['local_window']}" if a.get("local_window") else "")
        inner.append(f"{att} attention, {a['heads']} heads, ffn x{a['ffn_ratio']}")
    if a.get("conv_kernel"):
        inner.append(f"conv k={a['conv_kernel']}")
    out.append(("\n".join(inner), "#fde2c4"))
    if a.get("streaming"):
        out.append((f"streaming: chunk {a['chunk_ms']} ms, look-ahead {a['lookahead']}"
                    + (f", left {a['left_chunks']}" if a.get("left_chunks") else ""), "#f3f3d0"))
    else:
        out.append(("full context", "#f3f3d0"))
    dec = a["decoder"] + (f" {a['decoder_layers']}x{a['decoder_dim']}"
                          if a.get("decoder_layers") else "")
    out.append((f"decoder: {dec}", "#d8f0d8"))
    return out


def draw_arch(ax: Any, row: dict[str, Any], q: str = "CER", source: str = "predicted"
              ) -> None:
    """A box diagram of one architecture, input at the top."""
    from matplotlib.patches import FancyBboxPatch

    ax.set_xlim(0, 1)
    ax.set_ylim(0.08, 1)
    ax.set_axis_off()
    blocks = _blocks(row["arch"])
    n = len(blocks)
    h = 0.8 / n
    for i, (label, colour) in enumerate(blocks):
        y = 0.9 - (i + 1) * h
        ax.add_patch(FancyBboxPatch((0.05, y + 0.01), 0.9, h - 0.04,
                                    boxstyle="round,pad=0.01", fc=colour, ec="0.3"))
        ax.text(0.5, y + h / 2 - 0.005, label, ha="center", va="center", fontsize=7)
        if i:
            ax.annotate("", (0.5, y + h - 0.03), (0.5, y + h + 0.005),
                        arrowprops={"arrowstyle": "->", "color": "0.3"})
    ax.text(0.5, 0.97, f"#{row['trial']} {row['arch_id']}", ha="center", fontsize=8,
            weight="bold")
    ax.text(0.5, 0.925, f"{q} {row['cer']:.3f} | {row['latency_ms']:.2f} ms "
                        f"{source[:4]}. | "
                        f"{row['params'] / 1e6:.2f} M", ha="center", fontsize=7)


def top_rows(rows: list[dict[str, Any]], n: int, axis: Axis = LATENCY) -> list[dict[str, Any]]:
    """The ``n`` best feasible trained trials: Pareto front first, then by CER."""
    feas = [r for r in rows if r["feasible"] and r["trained"]]
    if not feas:
        return []
    pts = np.array([(r[axis.key], r["cer"]) for r in feas])
    on = set(front_2d(pts).tolist())
    order = sorted(range(len(feas)), key=lambda i: (i not in on, feas[i]["cer"]))
    return [feas[i] for i in order[:n]]


def verification(study: Any) -> list[dict[str, Any]]:
    """What the search's verification measured, per architecture (kept and
    dropped), as recorded in the study by ``hwnas search``."""
    out = [{"arch_id": k.split(":", 1)[1], **v} for k, v in study.user_attrs.items()
           if k.startswith("verified:") and isinstance(v, dict)]
    return sorted(out, key=lambda r: (r.get("verdict") == "missed", r.get("latency_ms") or 0))


def final_phase(study: Any) -> dict[str, Any] | None:
    """The final phase as ``hwnas search`` recorded it: the budget, each
    finalist's rung and final dev CER, and how the answer stands against the
    best baseline."""
    fin = study.user_attrs.get("final")
    if not isinstance(fin, dict) or not isinstance(fin.get("finalists"), list):
        return None
    by = {t.user_attrs.get("arch_id"): t for t in study.get_trials(deepcopy=False)}
    rows = []
    for arch_id in fin["finalists"]:
        f = study.user_attrs.get(f"final:{arch_id}")
        t = by.get(arch_id)
        if isinstance(f, dict) and t is not None:
            rows.append({"trial": t.number, "arch_id": arch_id,
                         "baseline": t.user_attrs.get("baseline"),
                         "encoder": t.user_attrs["arch"]["encoder"],
                         "decoder": t.user_attrs["arch"]["decoder"],
                         "rung_cer": f.get("rung_cer"), "cer": f.get("cer")})
    delivered = study.user_attrs.get("delivered")
    return {"budget": fin.get("budget"), "unit": fin.get("unit"),
            "rows": sorted(rows, key=lambda r: r["cer"] if r["cer"] is not None else 9),
            "delivered": delivered if isinstance(delivered, dict) else None}


def build_report(study: Any, out: Path, top_n: int = 4, compare: Sequence[Any] = ()
                 ) -> dict[str, Any]:
    """Write the figures and report.html into ``out``; returns a summary.
    ``compare``: other studies (of the same target and objectives, typically
    other strategies) drawn beside this one in a hypervolume figure."""
    plt = _plt()
    out.mkdir(parents=True, exist_ok=True)
    rows = load_trials(study)
    if not rows:
        raise ValueError(f"study {study.study_name!r} has no completed trials to report")
    axis = speed_axis(study)
    others = [(st, load_trials(st)) for st in compare]
    q, source = quality_name(study), study.user_attrs.get("latency_source", "predicted")
    trained_q = [r["cer"] for r in rows if r["trained"] and math.isfinite(r["cer"])]
    # a CER's worst is 1; another quality's reference is just beyond its worst trained value
    ref = (float(axis.limit or 1.1 * max(r[axis.key] for r in [*rows, *(
        r for _, rs in others for r in rs)])),
        1.0 if q == "CER" else 1.1 * max(trained_q, default=1.0))
    unit = study.user_attrs.get("rung_unit", "CPU s")
    gen = int(study.user_attrs.get("generation", max(4, min(50, len(rows) // 4))))
    gens = _generations(rows, gen)
    hv = hv_history(rows, ref, axis)
    runs = [(f"{st.study_name} ({st.user_attrs.get('strategy', '?')})",
             hv_history(rs, ref, axis)) for st, rs in [(study, rows), *others]]
    imp = importances(study)
    top = top_rows(rows, top_n, axis)
    trained = [r for r in rows if r["trained"]]
    gpu = gpu_use_of(trained)
    files = {}

    def save(name: str, fig: Any) -> None:
        path = out / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files[name] = path

    for name, draw, size in (
            ("pareto", lambda ax: fig_pareto(ax, rows, axis, q, source), (8, 5)),
            ("hypervolume", lambda ax: fig_hypervolume(ax, rows, hv, ref, axis, q, source),
             (7, 4)),
            ("best_cer", lambda ax: fig_best_cer(ax, rows, q), (7, 4)),
            ("diversity", lambda ax: fig_diversity(ax, gens), (7, 4)),
            ("compute", lambda ax: fig_compute(ax, gens, unit, gpu), (7, 4)),
            ("importance", lambda ax: fig_importance(ax, imp), (7, 4.5)),
            *([("strategies", lambda ax: fig_strategies(ax, runs, ref, axis), (8, 5))]
              if compare else [])):
        fig, ax = plt.subplots(figsize=size)
        draw(ax)
        save(name, fig)
    if top:
        fig, axes = plt.subplots(1, len(top), figsize=(3.2 * len(top), 3.9), squeeze=False)
        for ax, r in zip(axes[0], top):
            draw_arch(ax, r, q, source)
        fig.suptitle(f"Top {len(top)} feasible architectures (Pareto front first)", fontsize=10)
        save("top", fig)
    summary = {
        "study": study.study_name, "target": study.user_attrs.get("target"),
        "task": study.user_attrs.get("task", tasks.DEFAULT), "quality": q, "latency_source": source,
        "constraints": study.user_attrs.get("constraints") or {},
        "trials": len(rows), "trained": len(trained),
        "screened": sum(r["screened"] for r in rows),
        "infeasible": sum(not r["trained"] and not r["screened"] for r in rows),
        "stopped_early": sum(r["stopped_at"] is not None for r in trained),
        "early_stop_rate": (sum(r["stopped_at"] is not None for r in trained) / len(trained)
                            if trained else 0.0),
        "training_spent": training_of(trained, unit),
        "training_unit": unit, "gpu_use": gpu, "hypervolume": hv[-1],
        "strategy": study.user_attrs.get("strategy"),
        "compared": {label: h[-1] if h else 0.0 for label, h in runs[1:]},
        "hypervolume_ref": ref, "hypervolume_axis": axis.label, "importances": imp,
        "top": [{k: r[k] for k in ("trial", "arch_id", "cer", "latency_ms", "params", "arch")}
                for r in top],
        "figures": {k: str(v) for k, v in files.items()},
        "verification": verification(study),
        "final": final_phase(study),
    }
    (out / "report.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out / "report.html").write_text(_html(summary, files, top))
    summary["html"] = str(out / "report.html")
    return summary


def _html(s: dict[str, Any], files: dict[str, Path], top: list[dict[str, Any]]) -> str:
    q, src = s.get("quality", "CER"), s.get("latency_source", "predicted")
    def img(name: str) -> str:
        if name not in files:
            return ""
        data = base64.b64encode(files[name].read_bytes()).decode()
        return f'<img src="data:image/png;base64,{data}" alt="{name}">'

    esc = html.escape
    cons = ", ".join(f"{k} {v}" for k, v in s["constraints"].items() if v is not None) or "none"
    keys = ["frontend", "n_filters", "subsampling", "encoder", "num_layers", "d_model",
            "attention", "heads", "ffn_ratio", "conv_kernel", "streaming", "chunk_ms",
            "lookahead", "decoder", "decoder_layers", "decoder_dim"]
    head = "".join(f"<th>#{r['trial']} {esc(r['arch_id'])}</th>" for r in top)

    def ci(r: dict[str, Any], key: str = "latency_ci", fmt: str = ".3f") -> str:
        c = r.get(key)
        return f"{c[0]:{fmt}}-{c[1]:{fmt}}" if c else "-"

    def num(v: Any, fmt: str) -> str:
        return format(v, fmt) if v is not None else "-"

    ver = s.get("verification") or []
    ver_rows = "".join(
        f"<tr><td>{r.get('trial', '')}</td><td>{esc(r['arch_id'])}</td>"
        f"<td><b>{esc(str(r.get('verdict')))}</b></td>"
        f"<td>{r['latency_ms']:.3f}</td><td>{ci(r)}</td><td>{num(r.get('p90_ms'), '.3f')}</td>"
        f"<td>{num(r.get('algorithmic_ms'), '.0f')}</td><td>{num(r.get('delay_ms'), '.1f')}</td>"
        f"<td>{ci(r, 'delay_ci', '.1f')}</td><td>{num(r.get('rtf'), '.4f')}</td>"
        f"<td>{r['predicted_ms']:.3f}</td><td>{r.get('measurements') or ''}</td>"
        f"<td>{esc(r.get('reason') or r.get('note') or '; '.join(r.get('flags') or []))}</td>"
        "</tr>" if r.get("latency_ms") is not None else
        f"<tr><td>{r.get('trial', '')}</td><td>{esc(r['arch_id'])}</td>"
        f"<td><b>{esc(str(r.get('verdict')))}</b></td><td colspan=9></td>"
        f"<td>{esc(r.get('reason') or '')}</td></tr>" for r in ver)
    verified = (f"""<h2>Verification on the device (measured)</h2>
<p>The finalists (the feasible Pareto set and the best baseline) as measured on
{esc(str(s['target']))}: compute p50 per call with its
95% confidence interval, and the emission delay a user waits (algorithmic delay -- chunk,
look-ahead and the 15 ms STFT window, or the whole 4.8 s utterance in full context -- plus
the compute); <i>met</i> when every interval is below its limit, <i>missed</i> (dropped)
when one is above it, <i>borderline</i> when a limit lies inside an interval after repeated
measurements.</p>
<table><tr><th>trial</th><th>arch</th><th>verdict</th><th>compute p50 ms</th><th>95% CI</th>
<th>p90 ms</th><th>algorithmic delay ms</th><th>emission delay ms</th><th>95% CI</th>
<th>RTF</th><th>predicted ms</th><th>measurements</th><th>reason / note</th></tr>{ver_rows}
</table>"""
                if ver else "<h2>Verification on the device</h2><p>Not verified: the search "
                            "ran with --no-verify, or the device was unreachable.</p>")
    fin = s.get("final")
    final = ""
    if fin and fin["rows"]:
        unit = "steps" if fin["unit"] == "steps" else "CPU s"
        chosen = (fin.get("delivered") or {}).get("arch_id")
        final_rows = "".join(
            f"<tr><td>{r['trial']}</td><td>{'<b>' if r['arch_id'] == chosen else ''}"
            f"{esc(r['arch_id'])}{' (delivered)</b>' if r['arch_id'] == chosen else ''}</td>"
            f"<td>{esc(r['encoder'])}/{esc(r['decoder'])}</td>"
            f"<td>{esc(r['baseline'] or '-')}</td><td>{num(r['rung_cer'], '.3f')}</td>"
            f"<td>{num(r['cer'], '.3f')}</td></tr>" for r in fin["rows"])
        versus = (fin.get("delivered") or {}).get("versus_baseline") or ""
        versus = esc(versus[:1].upper() + versus[1:])
        final = f"""<h2>Final phase: the answer at equal training</h2>
<p>The feasible Pareto set and the best hand-designed baseline, each trained to
{fin['budget']:g} {unit}; the answer was decided here. {versus}</p>
<table><tr><th>trial</th><th>arch</th><th>encoder/decoder</th><th>baseline</th>
<th>dev CER at the last rung</th><th>dev CER at the final budget</th></tr>{final_rows}</table>"""
    screened = (f"; {s['screened']} scored only with weights inherited from a supernet "
                "(their CER is labelled so and never makes the answer)" if s.get("screened")
                else "")
    body = "".join(
        f"<tr><td>{k}</td>" + "".join(f"<td>{esc(str(r['arch'].get(k)))}</td>" for r in top)
        + "</tr>" for k in keys)
    metrics = "".join(
        f"<tr><td>{label}</td>" + "".join(f"<td>{fmt(r)}</td>" for r in top) + "</tr>"
        for label, fmt in ((f"dev {q}", lambda r: f"{r['cer']:.3f}"),
                           (f"compute ms ({src})", lambda r: f"{r['latency_ms']:.3f}"),
                           ("algorithmic delay ms", lambda r: num(r.get("algorithmic_ms"), ".0f")),
                           (f"emission delay ms ({src})",
                            lambda r: num(r.get("delay_ms"), ".1f")),
                           (f"RTF ({src})", lambda r: num(r.get("rtf"), ".4f")),
                           ("params", lambda r: f"{r['params']:,}")))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>hwnas report: {esc(s['study'])}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}img{{max-width:100%}}
table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:3px 8px;font-size:13px}}
</style></head><body>
<h1>Search report: {esc(s['study'])}</h1>
<p>Target <b>{esc(str(s['target']))}</b>; constraints: {esc(cons)}.
{s['trials']} trials: {s['trained']} trained ({s['stopped_early']} stopped early by successive
halving, {s['early_stop_rate']:.0%}), {s['infeasible']} infeasible as {src} (not
trained){screened}.
Training spent: {s['training_spent']:g} {esc(s['training_unit'])}.
Latencies are those recorded by the search: <b>{src}</b> {
"by the target's predictor (the search's verification step measures the finalists: below)"
if src == "predicted" else "on the target, each architecture when first proposed (the "
"verification step measures the finalists again: below)"}.</p>
{final}
{verified}
<h2>Pareto front</h2>{img('pareto')}
<h2>Hypervolume</h2>{img('hypervolume')}
{"<h2>Strategies compared</h2>" + img('strategies') if 'strategies' in files else ""}
<h2>Best {q}</h2>{img('best_cer')}
<h2>Diversity</h2>{img('diversity')}
<h2>Early stopping and compute</h2>{img('compute')}
{f"<p>{esc(gpu_line(s['gpu_use']))}.</p>" if s.get("gpu_use") else ""}
<h2>Parameter importances</h2>{img('importance')}
<h2>Top architectures</h2>{img('top')}
<table><tr><th></th>{head}</tr>{metrics}{body}</table>
</body></html>
"""
