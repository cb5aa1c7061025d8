"""The search study: constraints, resume, Pareto, one-line errors."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from hwnas.data import corpus
from hwnas.search.study import SearchConfig, pareto, run_search, select_for_target
from hwnas.space import default_space

SMALL = default_space().with_choices({
    "encoder": ["conformer", "lstm", "contextnet"], "num_layers": [1, 2], "d_model": [96, 144],
    "decoder": ["ctc"], "n_filters": [40]})


def test_infeasible_trials_are_not_trained_and_the_study_resumes(tmp_path):
    trained = []

    def cer(arch):
        trained.append(arch.id)
        return 0.5 - 0.001 * arch.d_model * arch.num_layers

    def lat(arch):
        return 0.01 * arch.d_model * arch.num_layers

    storage = f"sqlite:///{tmp_path / 's.db'}"
    cfg = SearchConfig(target="cpu", max_latency_ms=2.0, trials=12, seed=1, storage=storage,
                       study="t", space=SMALL)
    study = run_search(cfg, lat, cer)
    assert len(study.trials) == 12
    feas = [t for t in study.trials if t.user_attrs["trained"]]
    assert len(trained) == len(feas) < 12  # some broke the latency constraint
    for t in study.trials:
        assert t.user_attrs["latency_source"] == "predicted"
        assert t.user_attrs["trained"] == (t.user_attrs["latency_ms"] <= 2.0)
    front = pareto(study)
    assert front and all(r["latency_ms"] <= 2.0 for r in front)
    assert select_for_target(front)["cer"] == min(r["cer"] for r in front)
    # resume: same study, a larger target count -> only the missing trials run
    cfg.trials = 15
    assert len(run_search(cfg, lat, cer).trials) == 15
    # same seed, fresh storage -> the same architectures
    cfg2 = SearchConfig(target="cpu", max_latency_ms=2.0, trials=12, seed=1,
                        storage=f"sqlite:///{tmp_path / 's2.db'}", study="t", space=SMALL)
    again = run_search(cfg2, lat, cer)
    assert [t.user_attrs["arch_id"] for t in again.trials] == \
        [t.user_attrs["arch_id"] for t in study.trials[:12]]
    cfg3 = SearchConfig(target="pixel6", trials=1, storage=storage, study="t", space=SMALL)
    with pytest.raises(ValueError, match="searched for cpu"):
        run_search(cfg3, lat, cer)


def test_search_command_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    space = tmp_path / "space.toml"
    space.write_text('[choices]\nencoder = ["lstm", "conformer"]\nnum_layers = [1]\n'
                     'd_model = [96]\ndecoder = ["ctc"]\nn_filters = [40]\n'
                     'frontend = ["logmel"]\n')
    argv = ["search", "--target", "cpu", "--trials", "3", "--cer-steps", "2", "--size", "tiny",
            "--space", str(space), "--workspace", str(tmp_path), "--max-latency", "50"]
    assert main(argv + ["--json", "--no-verify"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 3 and out["latency_source"] == "predicted"
    assert out["selected"] is not None and 0 <= out["selected"]["cer"] <= 1.5
    assert (tmp_path / "runs" / "search" / "hwnas.db").is_file()
    # resumed (3 trials already), then the Pareto set measured on this CPU
    assert main(argv + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trials"] == 3
    for r in out["pareto"]:
        assert r["latency_source"] == "measured" and r["predicted_ms"] > 0
    assert len(out["pareto"]) + len(out["dropped"]) >= 1
    assert (tmp_path / "profiles" / "cpu" / "manifest.json").is_file()
    assert main(argv) == 0
    text = capsys.readouterr().out
    # a measurement flagged as noisy is dropped rather than trusted
    assert "MEASURED" in text or "dropped" in text


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
