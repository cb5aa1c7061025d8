"""Latency predictor: features, training, files, metrics, adaptation, CLI."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from cli.main import main
from hwnas.asr import default_space, preset, preset_names
from hwnas.asr.models.stats import model_stats
from hwnas.predict.adapt import apply_correction, fit_correction, select_for_coverage
from hwnas.predict.dataset import from_rows, holdout_mask, repeat_noise
from hwnas.predict.evaluate import PowerLaw, holdout_report
from hwnas.predict.features import (
    KINDS,
    SCHEMA_VERSION,
    costs,
    feature_matrix,
    feature_names,
)
from hwnas.predict.latency import CostModel, LatencyPredictor, SchemaMismatch
from hwnas.predict.metrics import accuracy, kendall_tau, spearman_rho
from hwnas.profiling.store import open_profile
from tests.helpers import StandInHost


@pytest.fixture(scope="module")
def cpu_data():
    """The shipped CPU profile as training data."""
    return from_rows(open_profile("cpu", None).rows())


@pytest.fixture(scope="module")
def trained(cpu_data, tmp_path_factory):
    ws = tmp_path_factory.mktemp("ws")
    assert main(["predictor", "train", "--device", "cpu", "--workspace", str(ws),
                 "--json"]) == 0
    return ws


# --- features -----------------------------------------------------------------------------
def test_feature_matrix_starts_with_the_space_encoding():
    sp = default_space()
    archs = [sp.sample(random.Random(i)) for i in range(200)] + \
        [preset(n) for n in preset_names()]
    X = feature_matrix(archs)
    n = len(sp.feature_names())
    assert X.shape == (len(archs), len(feature_names()))
    assert np.array_equal(X[:, :n], np.array([sp.encode(a) for a in archs]))
    assert np.isfinite(X).all()


def test_analytic_costs_equal_counted_flops_and_params_on_the_shipped_profile():
    """The vectorised cost model against FLOPs counted by running each model
    (stored per row by the profiler) -- every profiled architecture."""
    rows = [r for r in open_profile("cpu", None).rows()]
    seen = {r["arch_id"]: r for r in rows}
    from hwnas.asr import ArchConfig

    archs = [ArchConfig.from_dict(r["arch"]) for r in seen.values()]
    X = feature_matrix(archs)
    names = feature_names()
    flops = X[:, names.index("flops")]
    params = X[:, names.index("params")]
    assert len(archs) >= 1000
    assert np.array_equal(flops, np.array([r["flops"] for r in seen.values()], dtype=float))
    assert np.array_equal(params, np.array([r["params"] for r in seen.values()], dtype=float))


@pytest.mark.parametrize("name", ["conformer_xs", "lstm_rnnt", "transformer_ctc",
                                  "contextnet_s"])
def test_analytic_costs_equal_model_stats(name):
    if name not in preset_names():
        pytest.skip(f"no preset {name}")
    a = preset(name)
    st = model_stats(a)
    c = costs(a)
    assert c["flops"] == st.flops and c["params"] == st.graph_params
    assert c["flops"] == sum(c[f"flops_{k}"] for k in KINDS)
    assert c["params"] == sum(c[f"params_{k}"] for k in KINDS)


# --- metrics ------------------------------------------------------------------------------
def test_kendall_tau_matches_a_brute_force_count():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=30)
    b[3] = b[4]  # a tie
    conc = disc = ta = tb = 0
    for i in range(30):
        for j in range(i + 1, 30):
            s = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
            conc += s > 0
            disc += s < 0
            ta += a[i] == a[j]
            tb += b[i] == b[j]
    n0 = 30 * 29 / 2
    expect = (conc - disc) / np.sqrt((n0 - ta) * (n0 - tb))
    assert kendall_tau(a, b) == pytest.approx(expect)
    assert kendall_tau(a, a) == pytest.approx(1.0)
    assert kendall_tau(a, -a) == pytest.approx(-1.0)
    assert spearman_rho(a, 2 * a + 1) == pytest.approx(1.0)


def test_accuracy_counts_relative_errors():
    m = accuracy([1.0, 2.0, 4.0, 10.0], [1.04, 2.2, 3.5, 10.0])
    assert m["within_5pct"] == 0.5 and m["within_10pct"] == 0.75
    assert m["max_ape"] == pytest.approx(0.125)
    with pytest.raises(ValueError, match="positive"):
        accuracy([0.0], [1.0])


# --- data ---------------------------------------------------------------------------------
def test_labels_are_medians_over_repeats_and_flagged_rows_are_left_out():
    arch = preset(preset_names()[0]).to_dict()
    rows = [{"arch_id": "a", "arch": arch, "status": "ok", "p50_ms": 1.0, "norm_p50_ms": 2.0,
             "rel_p50": 0.4},
            {"arch_id": "a", "arch": arch, "status": "ok", "p50_ms": 3.0, "norm_p50_ms": 2.2,
             "rel_p50": 0.44},
            {"arch_id": "b", "arch": arch, "status": "flagged", "p50_ms": 9.0,
             "norm_p50_ms": 9.0, "rel_p50": 1.8}]
    d = from_rows(rows)   # the ratio to the reference, where every row has it
    assert d.label == "rel_p50" and len(d) == 1 and d.y[0] == pytest.approx(0.42)
    d = from_rows(rows, "norm")
    assert d.label == "norm_p50_ms" and len(d) == 1
    assert d.y[0] == pytest.approx(2.1) and d.repeats[0] == 2
    assert d.spread[0] == pytest.approx(0.1)
    assert from_rows(rows, "raw").y[0] == pytest.approx(2.0)
    assert repeat_noise(d)["archs"] == 1
    with pytest.raises(ValueError, match="unknown label"):
        from_rows(rows, "mean")


def test_holdout_split_is_stable_and_about_a_fifth():
    ids = [f"{i:012x}" for i in range(5000)]
    m = holdout_mask(ids)
    assert 0.18 < m.mean() < 0.22
    assert np.array_equal(m[:100], holdout_mask(ids[:100]))  # independent of the rest


# --- training and files ---------------------------------------------------------------------
def test_predictor_beats_the_flops_only_baseline_on_held_out_architectures(cpu_data):
    model, rep = holdout_report(
        cpu_data, lambda d: LatencyPredictor.fit(d.archs, d.y, rounds=200))
    assert rep["test_size"] >= 150
    h, f = rep["heldout"], rep["baselines"]["flops_only"]
    # a predictor that learned nothing would not beat FLOPs; these margins are
    # far below what the shipped predictor reaches (README), far above chance
    assert h["kendall_tau"] > f["kendall_tau"] + 0.05
    assert h["within_10pct"] > f["within_10pct"] + 0.3
    assert h["kendall_tau"] > 0.9


def test_cost_model_is_non_negative_and_fits_a_known_additive_truth():
    sp = default_space()
    archs = sp.sample_distinct(300, 3)
    X = feature_matrix(archs)
    A = CostModel.design(X)
    true = np.zeros(A.shape[1])
    true[[0, 4, 10]] = [1.0, 2.0, 0.5]  # frontend, ffn, ops
    scale = A.max(axis=0)
    scale[scale == 0] = 1
    y = (A / scale) @ true + 0.01
    cm = CostModel.fit(X, y)
    assert (cm.coef >= 0).all()
    assert np.allclose(cm.predict(X), y, rtol=1e-3)


def test_saved_predictor_is_json_and_predicts_the_same(trained):
    folder = trained / "predictors" / "cpu"
    model = json.loads((folder / "model.json").read_text())  # XGBoost's own JSON
    assert "learner" in model
    card = json.loads((folder / "card.json").read_text())
    for key in ("device", "runtime", "schema_version", "train_size", "heldout", "baselines",
                "date", "cost_model", "label"):
        assert key in card, key
    assert card["schema_version"] == SCHEMA_VERSION and card["runtime"].startswith("onnxrun")
    assert not list(folder.glob("*.pkl")) and not list(folder.glob("*.pickle"))
    p = LatencyPredictor.load(folder)
    archs = default_space().sample_distinct(50, 11)
    a, b = p.predict(archs), LatencyPredictor.load(folder).predict(archs)
    assert np.array_equal(a, b) and (a > 0).all()


def test_a_predictor_refuses_features_of_another_schema(trained, tmp_path):
    src = trained / "predictors" / "cpu"
    dst = tmp_path / "old"
    dst.mkdir()
    (dst / "model.json").write_text((src / "model.json").read_text())
    card = json.loads((src / "card.json").read_text())
    card["schema_version"] = SCHEMA_VERSION + 1
    (dst / "card.json").write_text(json.dumps(card))
    with pytest.raises(SchemaMismatch, match="retrain it with `hwnas predictor train"):
        LatencyPredictor.load(dst)


def test_power_law_baseline_recovers_an_exponent():
    archs = default_space().sample_distinct(100, 5)
    X = feature_matrix(archs)
    flops = X[:, feature_names().index("flops")]
    y = 3e-6 * flops ** 0.8
    b = PowerLaw("flops").fit(archs, y)
    assert b.coef[0] == pytest.approx(0.8) and np.allclose(b.predict(archs), y)


# --- adaptation ---------------------------------------------------------------------------
def test_correction_recovers_a_power_law_between_devices():
    archs = default_space().sample_distinct(60, 2)
    X = feature_matrix(archs)
    base = np.exp(np.random.default_rng(0).uniform(-2, 3, len(archs)))
    y = 1.7 * base ** 0.9
    c = fit_correction(X[:20], base[:20], y[:20])
    assert c["method"] in ("affine", "ridge")
    assert np.allclose(apply_correction(c, X[20:], base[20:]), y[20:], rtol=1e-3)
    s = fit_correction(X[:20], base[:20], 2 * base[:20], method="scale")
    assert s["coef"][0] == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="too few"):
        fit_correction(X[:2], base[:2], y[:2])


def test_coverage_selection_spans_latency_and_families():
    pool = default_space().sample_distinct(500, 9)
    pred = np.exp(np.linspace(-3, 3, len(pool)))
    rng = np.random.default_rng(1)
    pred = pred[rng.permutation(len(pool))]
    chosen = select_for_coverage(pool, pred, 20)
    assert len({a.id for a in chosen}) == 20
    assert chosen == select_for_coverage(pool, pred, 20)
    lp = np.log([pred[pool.index(a)] for a in chosen])
    assert lp.min() < -2 and lp.max() > 2          # both ends of the range
    assert len({a.encoder for a in chosen}) == 6   # every family
    with pytest.raises(ValueError, match="pool"):
        select_for_coverage(pool[:5], pred[:5], 6)


# --- CLI ----------------------------------------------------------------------------------
def test_predict_labels_its_figures_as_predicted(trained, capsys):
    """Without this host's spot check (and told not to make one): labelled uncorrected."""
    argv = ["predict", "--device", "cpu", "--preset", preset_names()[0], "--workspace",
            str(trained), "--no-spot-check"]
    assert main(argv + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (p,) = out["predictions"]
    assert p["latency_source"] == "predicted, uncorrected" and p["predicted_p50_ms"] > 0
    assert out["card"]["train_size"] > 500 and out["card"]["corrected"] is False
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "predicted, UNCORRECTED for this host, not measured" in text
    assert "UNCORRECTED: this host has no spot check yet" in text


def test_predict_uses_the_correction_the_search_uses_on_this_host(tmp_path, capsys):
    """A spot check made on this host (a stand-in measures 9% slower) is what
    `hwnas predict` applies, and says so; nothing is measured again."""
    from hwnas.adapters.devicefile import load_device
    from hwnas.predict.latency import LatencyPredictor, find_predictor
    from hwnas.workflows.target import target_predictor

    spec = load_device("cpu", tmp_path)
    host = StandInHost(LatencyPredictor.load(find_predictor("cpu", tmp_path)), lambda a: 1.09)
    tl = target_predictor("cpu", tmp_path, spec, batch=host.batch)
    arch = preset("conformer_s")
    assert main(["predict", "--device", "cpu", "--preset", "conformer_s", "--workspace",
                 str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["card"]["corrected"] and out["card"]["predictor"] == tl.where
    assert out["card"]["spot_check"]["n"] == 6
    assert out["predictions"][0]["predicted_p50_ms"] == pytest.approx(
        float(tl.ms([arch])[0]), rel=0.02)   # the reference time, measured again
    assert main(["predict", "--device", "cpu", "--preset", "conformer_s", "--workspace",
                 str(tmp_path)]) == 0
    scale = re.search(r"corrected for this host: x([\d.]+) \(95% CI", capsys.readouterr().out)
    assert float(scale.group(1)) == pytest.approx(1.09, abs=0.01)
    assert host.measured == 12


def test_predict_reads_json_lines(trained, tmp_path, capsys):
    archs = default_space().sample_distinct(5, 1)
    f = tmp_path / "archs.jsonl"
    f.write_text("\n".join(a.to_json() for a in archs) + "\n")
    assert main(["predict", "--device", "cpu", str(f), "--workspace", str(trained),
                 "--json", "--no-spot-check"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["arch_id"] for p in out["predictions"]] == [a.id for a in archs]


@pytest.mark.parametrize("argv, message", [
    (["predict", "--device", "pixel6", "--preset", "conformer_xs"],
     "no latency predictor for device 'pixel6'; create one with `hwnas profile --device "
     "pixel6"),
    (["predict", "--device", "cpu", "missing.json"], "architecture file not found"),
    (["predictor", "train", "--device", "nosuch"], "no profile for device 'nosuch'"),
    (["predictor", "adapt", "--from", "cpu", "--device", "cpu", "--n", "5"], "same device"),
])
def test_predictor_commands_fail_with_one_line(argv, message, tmp_path, capsys):
    assert main(argv + ["--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_adapt_measures_chosen_architectures_and_saves_an_adapted_predictor(trained, capsys):
    """cpu -> cpu-torch-quick (PyTorch eager, a short plan) with 4 measurements,
    resumable: the second run measures nothing new."""
    ws = trained
    (ws / "devices").mkdir(exist_ok=True)
    (ws / "devices" / "cpu-torch-quick.toml").write_text(
        'adapter = "cpu"\n[options]\nruntime = "torch"\nthreads = 1\nreference = ""\n'
        '[plan]\nwarmup_runs = 2\nmin_runs = 5\nmin_seconds = 0.05\nretries = 0\n'
        'max_ci = inf\nmax_drift = 10.0\n')
    argv = ["predictor", "adapt", "--from", "cpu", "--device", "cpu-torch-quick", "--n", "4",
            "--pool", "60", "--workspace", str(ws), "--json"]
    assert main(argv) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["measured"] == 4 and rep["method"] in ("scale", "affine")
    card = json.loads((ws / "predictors" / "cpu-torch-quick" / "card.json").read_text())
    assert card["adaptation"]["from"] == "cpu" and card["runtime"].startswith("torch")
    assert card["label"] == "p50_ms"  # no reference probe on this device
    store = open_profile("cpu-torch-quick", ws)
    assert len(store) == 4
    assert main(argv) == 0
    capsys.readouterr()
    assert len(open_profile("cpu-torch-quick", ws)) == 4
    assert main(["predict", "--device", "cpu-torch-quick", "--preset", "conformer_xs",
                 "--workspace", str(ws)]) == 0
    assert "adapted from cpu" in capsys.readouterr().out


# --- host calibration ----------------------------------------------------------------------
def test_a_relative_predictor_needs_and_uses_this_hosts_reference_time():
    from hwnas.predict.latency import load_predictor

    model = load_predictor("cpu", None)
    assert model.relative and model.card["label"] == "rel_p50"
    archs = default_space().sample_distinct(5, 123)
    ratio = model.predict(archs)
    assert np.allclose(model.predict_ms(archs, 2.5), ratio * 2.5)
    with pytest.raises(ValueError, match="reference time"):
        model.predict_ms(archs, None)


def test_host_reference_is_cached_per_fingerprint_and_measured_again_when_stale(
        tmp_path, monkeypatch):
    from hwnas.adapters.devicefile import load_device
    from hwnas.predict import calibration

    spec = load_device("cpu")
    first = calibration.host_reference(spec, tmp_path, seconds=0.2)
    assert not first["cached"] and first["ci_lo"] <= first["ms"] <= first["ci_hi"]
    assert first["n"] > 5 and first["fingerprint"]["cpu"]
    again = calibration.host_reference(spec, tmp_path, seconds=0.2)
    assert again["cached"] and again["ms"] == first["ms"]
    # stale by age, by another host, by damage: measured again, never trusted
    later = first["epoch"] + calibration.MAX_AGE_S + 1
    assert not calibration.host_reference(spec, tmp_path, seconds=0.2, now=later)["cached"]
    monkeypatch.setattr(calibration, "_boot_id", lambda: "another-boot")
    assert not calibration.host_reference(spec, tmp_path, seconds=0.2)["cached"]
    cache = tmp_path / calibration.CACHE / "cpu.json"
    cache.write_text("[not a dict")
    assert not calibration.host_reference(spec, tmp_path, seconds=0.2)["cached"]
    cache.write_text('["a list"]')
    assert not calibration.host_reference(spec, tmp_path, seconds=0.2)["cached"]


def test_predict_shows_ratio_ms_and_the_reference_time(tmp_path):
    from tests.test_cli import hwnas

    # the spot check is tested on its own (a stand-in host; slow: a real one)
    p = hwnas("predict", "--device", "cpu", "--preset", "conformer_s", "--workspace",
              str(tmp_path), "--no-spot-check")
    assert p.returncode == 0, p.stderr
    assert "x reference" in p.stdout and "this host's reference" in p.stdout
    p = hwnas("predict", "--device", "cpu", "--preset", "conformer_s", "--workspace",
              str(tmp_path), "--json", "--no-spot-check")
    out = json.loads(p.stdout)
    r = out["predictions"][0]
    assert out["card"]["reference"]["cached"] is True
    assert r["predicted_p50_ms"] == pytest.approx(r["predicted_ratio"]
                                                   * out["card"]["reference_ms"])


# --- several CPUs in one predictor ---------------------------------------------------------
INTEL = {"vendor": "GenuineIntel", "model_name": "Xeon (synthetic)", "family_model": "6/143/8",
         "isa": ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"],
         "cache_kib": {"l1": 48.0, "l2": 2048.0, "l3": 107520.0}}
AMD = {"vendor": "AuthenticAMD", "model_name": "EPYC (synthetic)", "family_model": "25/1/1",
       "isa": ["avx2"], "cache_kib": {"l1": 32.0, "l2": 512.0, "l3": 32768.0}}


def _as_host(rows, descriptor, ratio):
    """The shipped profile's rows as if measured on a CPU with ``descriptor``,
    where each architecture's ratio is ``ratio(row)`` times the shipped one."""
    out = []
    for r in rows:
        prov = r["provenance"]
        prov = {**(json.loads(prov) if isinstance(prov, str) else prov),
                "descriptor": descriptor}
        out.append({**r, "provenance": prov, "rel_p50": r["rel_p50"] * ratio(r)
                    if r.get("rel_p50") else None})
    return out


def test_a_predictor_learns_two_cpus_from_their_descriptors():
    """Two synthetic microarchitectures whose ratios differ by encoder family
    (convolutions 1.5x slower on the AVX2-only CPU, attention 0.8x): one
    predictor with host features predicts each at its own descriptor, where
    one without them cannot fit both."""
    from hwnas.predict.dataset import from_profiles
    from hwnas.predict.hosts import HOST_FEATURES, host_vector
    from hwnas.workflows.predictor import fitter

    store = open_profile("cpu", None)
    rows = store.rows()
    slower = {"conformer": 0.8, "transformer": 0.8, "contextnet": 1.5, "quartznet": 1.5}

    def amd_ratio(r):
        return slower.get(r["encoder"], 1.1)

    data = from_profiles([(_as_host(rows, INTEL, lambda r: 1.0), store.manifest),
                          (_as_host(rows, AMD, amd_ratio), {"reference": {"nominal_ms": 6.1}})])
    assert data.hosts.shape == (len(data), len(HOST_FEATURES))
    assert len(data.info["hosts"]) == 2 and data.label == "rel_p50"
    ho = holdout_mask(data.ids)
    train, test = data.subset(~ho), data.subset(ho)
    model = fitter(objective="log", seed=0)(train)
    assert model.multi_host
    assert model.card["features"] == len(feature_names()) + len(HOST_FEATURES)
    for desc, ref in ((INTEL, store.manifest["reference"]["nominal_ms"]), (AMD, 6.1)):
        mine = test.hosts[:, 2] == (1.0 if desc is INTEL else 0.0)   # avx512 or not
        here = model.at_host(host_vector(desc, "onnxruntime 1.32.0", ref))
        got = accuracy(test.y[mine], here.predict([test.archs[i] for i in np.flatnonzero(mine)]))
        assert got["within_10pct"] >= 0.8, (desc["vendor"], got)
    # without host features the two CPUs' labels contradict each other
    plain = LatencyPredictor.fit(train.archs, train.y)
    amd = test.hosts[:, 2] == 0.0
    off = accuracy(test.y[amd], plain.predict([test.archs[i] for i in np.flatnonzero(amd)]))
    assert off["within_10pct"] < 0.6, off
    with pytest.raises(ValueError, match="needs the host's descriptor"):
        model.predict(test.archs[:2])


def test_a_multi_host_predictor_saves_loads_and_is_trained_from_the_cli(tmp_path, capsys):
    """`hwnas predictor train --also NAME` learns a second CPU's profile."""
    import shutil

    from hwnas.predict.latency import predictor_dir

    shutil.copytree(open_profile("cpu", None).folder, tmp_path / "profiles" / "cpu-amd")
    assert main(["predictor", "train", "--device", "cpu", "--also", "cpu-amd",
                 "--workspace", str(tmp_path), "--rounds", "30"]) == 0
    loaded = LatencyPredictor.load(predictor_dir(tmp_path, "cpu"))
    assert loaded.multi_host and len(loaded.card["hosts"]) >= 1
    assert main(["predictor", "train", "--device", "cpu", "--also", "nope",
                 "--workspace", str(tmp_path)]) != 0
    assert "nope" in capsys.readouterr().err


def test_the_search_asks_a_multi_host_predictor_at_this_hosts_descriptor(tmp_path):
    from hwnas.adapters.devicefile import load_device
    from hwnas.adapters.host import cpu_descriptor
    from hwnas.predict.dataset import from_profiles
    from hwnas.predict.hosts import host_vector
    from hwnas.predict.latency import predictor_dir
    from hwnas.workflows.predictor import fitter
    from hwnas.workflows.target import target_predictor

    store = open_profile("cpu", None)
    rows = store.rows()[:400]
    data = from_profiles([(_as_host(rows, INTEL, lambda r: 1.0), store.manifest),
                          (_as_host(rows, AMD, lambda r: 1.3), {"reference": {
                              "nominal_ms": 6.1}})])
    model = fitter(objective="log", seed=0, rounds=40)(data)
    model.card.update(label="rel_p50", hosts=data.info["hosts"], device="cpu")
    model.save(predictor_dir(tmp_path, "cpu"))
    spec = load_device("cpu", tmp_path)
    here = model.at_host(host_vector(cpu_descriptor(), None, 3.0))
    host = StandInHost(here, lambda a: 1.0)
    said = []
    tl = target_predictor("cpu", tmp_path, spec, say=said.append, batch=host.batch)
    assert any("learnt 2 CPUs; predicting at this host's descriptor" in s for s in said)
    assert tl.corrected and tl.predictor.host is not None
    archs = default_space().sample_distinct(5, 3)
    assert np.all(np.isfinite(tl.ms(archs)))


def test_a_worse_predictor_never_replaces_a_better_one(tmp_path, capsys):
    """Trained again with worse settings: saved beside, the better one stays;
    --replace installs it and keeps the earlier one."""
    from hwnas.predict.latency import predictor_dir

    ws = ["--workspace", str(tmp_path)]
    assert main(["predictor", "train", "--device", "cpu", "--rounds", "60", *ws]) == 0
    good = (predictor_dir(tmp_path, "cpu") / "model.json").read_bytes()
    capsys.readouterr()
    assert main(["predictor", "train", "--device", "cpu", "--rounds", "1", *ws]) == 0
    assert "kept the predictor" in capsys.readouterr().out
    assert (predictor_dir(tmp_path, "cpu") / "model.json").read_bytes() == good
    (beside,) = (tmp_path / "predictors").glob("cpu.candidate-*")
    assert (beside / "card.json").is_file()
    assert main(["predictor", "train", "--device", "cpu", "--rounds", "1", "--replace",
                 *ws]) == 0
    assert "replaced the predictor" in capsys.readouterr().out
    (kept,) = (tmp_path / "predictors").glob("cpu.replaced-*")
    assert (kept / "model.json").read_bytes() == good
