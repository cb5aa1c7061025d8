"""hwnas report: figures and HTML from a study; the hypervolume and entropy maths."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cli.main import main
from hwnas.asr import default_space
from hwnas.search.study import SearchConfig, run_search
from hwnas.visualization.report import entropy, front_2d, hypervolume_2d
from tests.helpers import fake_trainer


def test_hypervolume_and_front_by_hand():
    pts = np.array([[1.0, 3.0], [2.0, 1.0], [3.0, 2.0], [2.5, 5.0]])
    assert sorted(front_2d(pts).tolist()) == [0, 1]
    # (1,3) and (2,1) against ref (4,4): 1x3 strip from x=1..2 at height 4-3=1 -> 1
    # plus x=2..4 at height 4-1=3 -> 6
    assert hypervolume_2d(pts, (4.0, 4.0)) == pytest.approx(1 * 1 + 2 * 3)
    assert hypervolume_2d(pts, (0.5, 4.0)) == 0.0  # nothing inside the reference box
    assert entropy(["a", "a", "b", "b"]) == pytest.approx(1.0)
    assert entropy(["a"] * 5) == 0.0 and entropy([]) == 0.0


def _study(tmp_path, trials=24, name="r", strategy="nsga2", target="cpu"):
    storage = f"sqlite:///{tmp_path / 'runs' / 'search' / f'{name}.db'}"
    (tmp_path / "runs" / "search").mkdir(parents=True, exist_ok=True)
    cfg = SearchConfig(target=target, max_latency_ms=4.0, trials=trials, rungs=(10.0, 30.0),
                       seed=0, storage=storage, study=name, space=default_space(),
                       sampler=strategy)
    return run_search(cfg, lambda a: 0.002 * a.d_model * a.num_layers,
                      fake_trainer())


def test_report_writes_every_figure_and_a_self_contained_page(tmp_path, capsys):
    study = _study(tmp_path)
    out = tmp_path / "rep"
    assert main(["report", "r", "--workspace", str(tmp_path), "--out", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["trials"] == 24 and s["trained"] + s["infeasible"] == 24
    trained = [t for t in study.trials if t.user_attrs["trained"]]
    assert s["trained"] == len(trained)
    assert s["stopped_early"] == sum(t.user_attrs["stopped_at"] is not None for t in trained)
    assert s["training_spent"] == pytest.approx(
        sum(t.user_attrs["rungs"][-1]["budget_s"] for t in trained))
    assert s["hypervolume"] > 0 and s["hypervolume_ref"] == [4.0, 1.0]
    for name in ("pareto", "hypervolume", "best_cer", "diversity", "compute", "importance",
                 "top"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 7 and "predicted" in page
    assert s["top"] and all(r["latency_ms"] <= 4.0 for r in s["top"])
    assert not math.isnan(s["hypervolume"])
    assert "Not verified" in page and s["verification"] == []
    # what verification recorded in the study is shown: verdict, interval, reasons
    study.set_user_attr("verified:aaa", {"trial": 3, "verdict": "met", "latency_ms": 1.5,
                                         "latency_ci": [1.45, 1.55], "predicted_ms": 1.6,
                                         "measurements": 1, "flags": []})
    study.set_user_attr("verified:bbb", {"trial": 5, "verdict": "missed", "latency_ms": 4.5,
                                         "latency_ci": [4.4, 4.6], "predicted_ms": 3.9,
                                         "reason": "missed: measured 4.500 ms > 4 ms"})
    assert main(["report", "r", "--workspace", str(tmp_path), "--out", str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert [v["verdict"] for v in s["verification"]] == ["met", "missed"]
    page = (out / "report.html").read_text()
    assert "Verification on the device (measured)" in page and "1.450-1.550" in page
    assert "missed: measured 4.500 ms &gt; 4 ms" in page


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", "nope", "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no study database" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as e:   # the option's declared range
        main(["report", "r", "--top", "0", "--workspace", str(tmp_path)])
    assert e.value.code == 2 and "--top: must be an integer >= 1" in capsys.readouterr().err


def test_report_names_the_studies_a_storage_holds(tmp_path, capsys):
    _study(tmp_path, trials=4)
    url = f"sqlite:///{tmp_path / 'runs' / 'search' / 'r.db'}"
    assert main(["report", "other", "--storage", url, "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no study 'other'" in err and "it holds: r" in err


def test_report_compares_strategies(tmp_path, capsys):
    _study(tmp_path, trials=12)
    _study(tmp_path, trials=12, name="evo", strategy="evolution")
    _study(tmp_path, trials=4, name="pix", target="pixel6")
    out = tmp_path / "rep"
    assert main(["report", "r", "--compare", "evo", "--workspace", str(tmp_path), "--out",
                 str(out), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["strategy"] == "nsga2" and list(s["compared"]) == ["evo (evolution)"]
    assert s["compared"]["evo (evolution)"] > 0
    page = (out / "report.html").read_text()
    assert "Strategies compared" in page and page.count("data:image/png;base64,") == 8
    assert main(["report", "r", "--compare", "pix", "--workspace", str(tmp_path)]) == 1
    assert "--compare pix: its target pixel6 is not r's cpu" in capsys.readouterr().err


def test_importances_are_per_objective_and_right(tmp_path):
    """One objective set by one parameter alone (delay by the chunk), the
    other by two others: each gets its own parameters, whatever the sampler
    concentrated on (PED-ANOVA had given the chunk about 0 for delay)."""
    import optuna

    from hwnas.visualization.report import importances

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=optuna.samplers.NSGAIISampler(seed=0))
    study.set_user_attr("objectives", ["cer", "delay"])

    def objective(t):
        chunk = t.suggest_categorical("chunk_ms", [160, 320, 640, 960])
        d, n = t.suggest_int("d_model", 64, 512, step=64), t.suggest_int("num_layers", 1, 8)
        t.set_user_attr("trained", True)
        return 1.0 / (d * n), float(chunk)

    study.optimize(objective, n_trials=40)
    imp = importances(study)
    assert max(imp["delay"], key=imp["delay"].get) == "chunk_ms" and imp["delay"]["chunk_ms"] > 0.8
    assert imp["cer"]["chunk_ms"] < 0.1 and imp["cer"]["d_model"] + imp["cer"]["num_layers"] > 0.9


def test_the_pareto_figure_draws_untrained_trials_as_a_rug_not_at_cer_0():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwnas.visualization.report import Axis, fig_pareto

    def row(n, ms, cer, trained):
        return {"trial": n, "latency_ms": ms, "cer": cer if trained else None,
                "trained": trained, "screened": False, "stopped_at": None,
                "feasible": trained, "baseline": None}

    rows = [row(0, 1.0, 0.6, True), row(1, 2.0, 0.5, True), row(2, 5.0, None, False)]
    fig, ax = plt.subplots()
    fig_pareto(ax, rows, Axis("latency_ms", None, "latency", "ms"))
    fig.canvas.draw()
    assert ax.get_ylim()[0] > 0.3   # nothing pulls the axis down to CER 0
    rug = [c for c in ax.collections if "rug" in (c.get_label() or "")]
    assert len(rug) == 1 and rug[0].get_offset_transform() == ax.get_xaxis_transform()
    lo, hi = ax.get_xlim()
    assert lo < 1.0 and 5.0 < hi   # the rug is inside the frame, not past its edge
    plt.close(fig)


def test_the_trials_gpu_use_is_in_the_compute_figure_and_the_page(tmp_path, capsys):
    """Rungs trained on a GPU record peak memory and the card's utilisation
    (nn.gpu_use); the report sums them per run, each run once."""
    import optuna

    study = _study(tmp_path, trials=12)
    url = f"sqlite:///{tmp_path / 'runs' / 'search' / 'g.db'}"
    gpu = optuna.create_study(storage=url, study_name="g", directions=study.directions)
    for k, v in study.user_attrs.items():
        gpu.set_user_attr(k, v)
    runs = []
    for t in study.trials:
        a = dict(t.user_attrs)
        if a.get("rungs"):
            runs.append(100.0 * (t.number + 1))
            a["rungs"] = [{**r, "gpu_mb": runs[-1], **({"gpu_util_pct": 40.0 + t.number % 2 * 20}
                                                        if t.number % 3 else {})}
                          for r in a["rungs"]]
        gpu.add_trial(optuna.trial.create_trial(
            state=t.state, params=t.params, distributions=t.distributions, values=t.values,
            user_attrs=a, system_attrs=t.system_attrs))
    out = tmp_path / "rep"
    assert main(["report", "g", "--workspace", str(tmp_path), "--out", str(out), "--json"]) == 0
    use = json.loads(capsys.readouterr().out)["gpu_use"]
    utils = [40.0 + n % 2 * 20 for n, t in enumerate(study.trials)
             if t.user_attrs.get("rungs") and n % 3]
    assert use == {"runs": len(runs), "peak_mb_median": float(np.median(runs)),
                   "peak_mb_max": max(runs), "util_runs": len(utils),
                   "util_pct_mean": pytest.approx(np.mean(utils))}
    page = (out / "report.html").read_text()
    assert f"{len(runs)} runs on a GPU: peak memory median {np.median(runs):.0f} MB" in page
    assert f"card utilisation {np.mean(utils):.0f}% on average ({len(utils)} runs)" in page
    # a CPU study says nothing of GPUs
    assert main(["report", "r", "--workspace", str(tmp_path), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gpu_use"] is None
    assert "runs on a GPU" not in (out / "report.html").read_text()
