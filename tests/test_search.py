"""The search study: constraints, resume, Pareto, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from hwnas.data import corpus
from hwnas.search.study import (
    SearchConfig,
    open_study,
    pareto,
    run_search,
    select_for_target,
)
from hwnas.space import default_space

SMALL = default_space().with_choices({
    "encoder": ["conformer", "lstm", "contextnet"], "num_layers": [1, 2], "d_model": [96, 144],
    "decoder": ["ctc"], "n_filters": [40]})


def _fake(trained):
    """A stand-in trainer: CER falls with width, depth and budget; deterministic."""
    def runner(arch, budget, state):
        trained.append((arch.id, budget))
        base = 0.5 - 0.001 * arch.d_model * arch.num_layers
        return base + 10.0 / budget, {"spent": budget}

    return runner


def lat(arch):
    return 0.01 * arch.d_model * arch.num_layers


def test_infeasible_trials_are_not_trained_and_the_study_resumes(tmp_path):
    trained = []
    storage = f"sqlite:///{tmp_path / 's.db'}"
    cfg = SearchConfig(target="cpu", max_latency_ms=2.0, trials=12, seed=1, storage=storage,
                       study="t", space=SMALL, rungs=(100.0,))
    study = run_search(cfg, lat, _fake(trained))
    assert len(study.trials) == 12
    feas = [t for t in study.trials if t.user_attrs["trained"]]
    # some broke the latency constraint; a repeated architecture is trained once
    assert len(trained) == len({t.user_attrs["arch_id"] for t in feas}) < 12
    for t in study.trials:
        assert t.user_attrs["latency_source"] == "predicted"
        assert t.user_attrs["trained"] == (t.user_attrs["latency_ms"] <= 2.0)
        assert t.user_attrs["size_mb"] == pytest.approx(t.user_attrs["params"] * 4 / 2**20)
    front = pareto(study)
    assert front and all(r["latency_ms"] <= 2.0 for r in front)
    assert select_for_target(front)["cer"] == min(r["cer"] for r in front)
    # resume: same study, a larger target count -> only the missing trials run
    cfg.trials = 15
    assert len(run_search(cfg, lat, _fake(trained)).trials) == 15
    # same seed, fresh storage -> the same architectures
    cfg2 = SearchConfig(target="cpu", max_latency_ms=2.0, trials=12, seed=1,
                        storage=f"sqlite:///{tmp_path / 's2.db'}", study="t", space=SMALL,
                        rungs=(100.0,))
    again = run_search(cfg2, lat, _fake([]))
    assert [t.user_attrs["arch_id"] for t in again.trials] == \
        [t.user_attrs["arch_id"] for t in study.trials[:12]]
    cfg3 = SearchConfig(target="pixel6", trials=1, storage=storage, study="t", space=SMALL)
    with pytest.raises(ValueError, match="searched for cpu"):
        run_search(cfg3, lat, _fake([]))


def test_successive_halving_inside_the_study_keeps_every_rung(tmp_path):
    trained, seen = [], []
    cfg = SearchConfig(target="cpu", trials=8, generation=8, seed=0, space=SMALL,
                       rungs=(10.0, 30.0), eta=2, storage=f"sqlite:///{tmp_path / 'h.db'}")
    study = run_search(cfg, lat, _fake(trained),
                       on_rung=lambda n, c, r: seen.append((n, r, c.state["spent"])))
    rung1 = [t for t in study.trials if t.user_attrs["stopped_at"] is None]
    stopped = [t for t in study.trials if t.user_attrs["stopped_at"] == 0]
    assert len(rung1) == 4 and len(stopped) == 4  # 8 feasible, half promoted
    for t in rung1:
        rs = t.user_attrs["rungs"]
        assert [r["budget_s"] for r in rs] == [10.0, 30.0]
        assert t.values[0] == rs[-1]["cer"]  # the objective is the last rung's CER
    for t in stopped:
        assert len(t.user_attrs["rungs"]) == 1
    assert len(trained) == 12 and len(seen) == 12
    assert {n for n, r, _ in seen if r == 1} == {t.number for t in rung1}
    # the promoted ones are non-dominated on (CER so far, latency) at rung 0
    worst_kept = max(t.user_attrs["rungs"][0]["cer"] for t in rung1)
    assert any(t.user_attrs["rungs"][0]["cer"] > worst_kept or
               t.user_attrs["latency_ms"] > min(u.user_attrs["latency_ms"] for u in rung1)
               for t in stopped)


def test_a_killed_generation_is_asked_again(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'k.db'}"
    cfg = SearchConfig(target="cpu", trials=4, generation=4, seed=0, space=SMALL,
                       rungs=(10.0,), storage=storage, study="k")
    study = open_study(cfg)
    t = study.ask()  # a process killed mid-generation leaves its trials RUNNING
    arch = SMALL.suggest(t)
    study = run_search(cfg, lat, _fake([]))
    states = [tr.state for tr in study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    done = [tr for tr in study.trials if tr.state == optuna.trial.TrialState.COMPLETE]
    assert done[0].user_attrs["arch_id"] == arch.id  # asked again first


def test_search_on_the_users_corpus(tmp_path, capsys):
    """--train/--dev/--test: trials train on the user's files, the answer is
    scored on the named test sets; the study then refuses another corpus."""
    from tests.test_data import _user_corpora

    c = _user_corpora(tmp_path / "data")
    space = tmp_path / "space.toml"
    space.write_text('[choices]\nencoder = ["lstm"]\nnum_layers = [1]\nd_model = [96]\n'
                     'decoder = ["ctc"]\nn_filters = [40]\nfrontend = ["logmel"]\n')
    argv = ["search", "--target", "cpu", "--trials", "2", "--cer-steps", "2", "--space",
            str(space), "--workspace", str(tmp_path / "ws"), "--no-verify", "--json"]
    user = ["--train", c["train"], "--dev", c["dev"], "--test", c["test"]]
    assert main(argv + user + ["--no-export"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pareto"] and all(set(r["tests"]) == {"cv"} for r in out["pareto"])
    assert "wer_lexicon_beam" in out["pareto"][0]["tests"]["cv"]
    assert main(argv + ["--trials", "3", "--size", "tiny"]) == 1  # the built-in corpus now
    assert "trains on --train librispeech:" in capsys.readouterr().err


def test_search_command_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    space = tmp_path / "space.toml"
    space.write_text('[choices]\nencoder = ["lstm", "conformer"]\nnum_layers = [1]\n'
                     'd_model = [96]\ndecoder = ["ctc"]\nn_filters = [40]\n'
                     'frontend = ["logmel"]\n')
    argv = ["search", "--target", "cpu", "--trials", "3", "--cer-steps", "2,4", "--size", "tiny",
            "--space", str(space), "--workspace", str(tmp_path), "--max-latency", "50"]
    assert main(argv + ["--json", "--no-verify", "--no-export"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 3 and out["latency_source"] == "predicted"
    assert out["selected"] is not None and 0 <= out["selected"]["cer"] <= 1.5
    assert out["export"] is None and out["predictor"].endswith("predictors/cpu")
    assert (tmp_path / "runs" / "search" / "hwnas.db").is_file()
    for r in out["pareto"]:  # every Pareto member scored on both test sets
        assert set(r["tests"]) == {"en/test-clean", "en/test-noisy"}
        assert "wer_lexicon" in r["tests"]["en/test-clean"]
        assert r["rungs"][0]["budget_s"] == 2.0
    # resumed (3 trials already), the Pareto set measured on this CPU, the winner exported
    assert main(argv + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 3
    for r in out["pareto"]:
        assert r["latency_source"] == "measured" and r["predicted_ms"] > 0
        assert r["p90_ms"] >= r["latency_ms"] * 0.5 and r["rtf"] > 0
    assert len(out["pareto"]) + len(out["dropped"]) >= 1
    assert (tmp_path / "profiles" / "cpu" / "manifest.json").is_file()
    if out["selected"]:
        folder = tmp_path / out["export"]
        card = json.loads((folder / "model_card.json").read_text())
        assert card["provenance"]["trial"] == out["selected"]["trial"]
        assert card["metrics"]["latency_source"] == "measured"
        assert card["export"]["format"] == "onnx" and (folder / "model.onnx").is_file()
        assert card["export"]["parity"]["max_abs_diff"] < 1e-4
        assert {"tokenizer.json", "feature_norm.npz"} <= set(card["export"]["files"])
        assert "# Model card" in (folder / "MODEL_CARD.md").read_text()
        assert "| lexicon WER |" in (folder / "MODEL_CARD.md").read_text()
    assert main(argv + ["--no-export"]) == 0
    text = capsys.readouterr().out
    # a measurement flagged as noisy is dropped rather than trusted
    assert "MEASURED" in text or "dropped" in text
    if out["selected"]:  # an export that cannot be made: one line, the study is kept
        assert main(argv + ["--no-verify", "--format", "edgetpu", "--json"]) == 1
        cap = capsys.readouterr()
        assert json.loads(cap.out)["export_error"].startswith("export of")
        err = cap.err.strip().splitlines()
        assert len(err) == 1 and "export of" in err[0] and "arch.json --weights" in err[0]
        run = err[0].split("hwnas export ")[1].split("/arch.json")[0]
        assert (tmp_path / run / "weights.pt").is_file() or Path(run, "weights.pt").is_file()


@pytest.mark.parametrize("argv, message", [
    (["search", "--target", "pixel6", "--cer-steps", "1"],
     "no latency predictor for device 'pixel6'; create one with `hwnas profile"),
    (["search", "--target", "cpu"], "give the training per trial"),
    (["search", "--target", "cpu", "--cer-steps", "1", "--objectives", "cer,speed"],
     "unknown objective"),
])
def test_search_errors_are_one_line(argv, message, tmp_path, capsys):
    assert main(argv + ["--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_new_host_adapts_the_shipped_cpu_predictor_once(tmp_path):
    from hwnas.adapters._base import host_details
    from hwnas.adapters.devicefile import load_device
    from hwnas.search.target import target_predictor

    # the adaptation mechanics, not this host's noise: a copy of the cpu device
    # whose plan does not flag a noisy measurement (as the Android tests do)
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "cpu.toml").write_text(
        'description = "this CPU, ORT, 1 thread"\nadapter = "cpu"\n'
        '[options]\nruntime = "onnxruntime"\nthreads = 1\n'
        '[plan]\nwarmup_runs = 10\nmin_runs = 50\nmin_seconds = 1.0\n'
        'max_ci = inf\nmax_drift = 1.0\n')
    spec = load_device("cpu", tmp_path)
    here = host_details()
    shipped, where, report, same = target_predictor("cpu", tmp_path, spec, here=here)
    assert report is None and where.endswith("predictors/cpu")  # this host measured it
    assert same is spec
    other = {**here, "cpu": "Some Other CPU @ 1.0GHz", "cores": 64}
    said = []
    adapted, where, report, host_spec = target_predictor("cpu", tmp_path, spec, here=other,
                                                         n=5, say=said.append)
    assert host_spec.name.startswith("cpu.host-") and host_spec.adapter == "cpu"
    assert report["measured"] == 5 and "does not describe this host" in said[0]
    assert adapted.card["adaptation"]["from"] == "cpu"
    assert adapted.card["host"]["cpu"] == "Some Other CPU @ 1.0GHz"
    local = tmp_path / "predictors" / spec.name
    assert where.startswith(str(tmp_path / "predictors" / "cpu.host-"))
    assert not local.exists()  # the shipped name is left alone
    rows = list((tmp_path / "profiles").glob("cpu.host-*/manifest.json"))
    assert len(rows) == 1
    # next time on that host: the adapted one, no new measurements
    again, where2, report2, local2 = target_predictor("cpu", tmp_path, spec, here=other, n=5)
    assert report2 is None and where2 == where and local2.name == host_spec.name
    arch = default_space().sample_distinct(1, 9)
    assert again.predict(arch)[0] == pytest.approx(adapted.predict(arch)[0])


def test_a_repeated_architecture_is_not_trained_twice(tmp_path):
    one = default_space().with_choices({
        "encoder": ["lstm"], "num_layers": [1], "d_model": [96], "decoder": ["ctc"],
        "n_filters": [40], "frontend": ["logmel"], "subsampling": ["conv2d4"],
        "streaming": [True], "chunk_ms": [480], "lookahead": [0]})
    assert one.count() == 1
    trained = []
    cfg = SearchConfig(target="cpu", trials=6, generation=3, space=one, rungs=(10.0,),
                       storage=f"sqlite:///{tmp_path / 'd.db'}")
    study = run_search(cfg, lat, _fake(trained))
    assert len(trained) == 1  # six trials, one architecture, trained once
    assert [t.user_attrs["run_trial"] for t in study.trials[1:]] == [0] * 5
    assert len({t.values[0] for t in study.trials}) == 1
    assert len(pareto(study)) == 1 and pareto(study)[0]["run_trial"] == 0
