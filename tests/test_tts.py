"""The TTS task: its space, eSpeak-timed targets, the model and its device
graph, export, training and resume, profiling, and the command line."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from cli.main import main
from hwnas import tasks
from hwnas.data.synth import Voice, synthesize, synthesize_timed
from hwnas.tts import data
from hwnas.tts.arch import FRAME_BUCKET, PHONEME_BUCKET, TTSArch, default_space, preset
from hwnas.tts.model import build, device_graph, regulate
from hwnas.tts.train import TTSTrainConfig, train

SMALL = dict(enc_layers=1, enc_hidden=64, dec_layers=1, dec_hidden=64, var_hidden=32,
             var_kernel=3)


def small(enc_block: str = "transformer", dec_block: str = "sepconv", **kw) -> TTSArch:
    fields = {**SMALL, "enc_block": enc_block, "dec_block": dec_block, "n_phonemes": 40, **kw}
    for side in ("enc", "dec"):
        block = fields[f"{side}_block"]
        fields.setdefault(f"{side}_heads", None if block == "sepconv" else 2)
        fields.setdefault(f"{side}_kernel", None if block == "transformer" else 5)
    return TTSArch.from_dict(fields)


@pytest.fixture(scope="module")
def tiny_tts(tmp_path_factory):
    """A built tiny TTS data folder (about 140 eSpeak sentences)."""
    ws = tmp_path_factory.mktemp("tts-ws")
    return ws, data.build(ws, "en", "tiny", 0, workers=2)


# --- the space --------------------------------------------------------------
def test_count_equals_brute_force_on_a_reduced_space():
    space = default_space().with_choices({
        "enc_layers": [1, 2], "enc_hidden": [64, 192], "enc_kernel": [1, 5],
        "dec_layers": [1], "dec_hidden": [64], "dec_block": ["transformer", "dynconv"],
        "dec_kernel": [5, 9], "var_hidden": [32], "var_kernel": [3]})
    names = [d.name for d in space.decisions]
    valid = set()
    for values in itertools.product(*[(*d.choices, None) for d in space.decisions]):
        arch = TTSArch(**dict(zip(names, values)))
        if space.contains(arch):
            valid.add(arch.id)
    assert len(valid) == space.count() > 0
    assert default_space().count() > 1_000_000


def test_rules_of_the_space_hold_for_samples():
    space = default_space()
    for a in space.sample_distinct(200, seed=3):
        for side in ("enc", "dec"):
            block, width = getattr(a, f"{side}_block"), getattr(a, f"{side}_hidden")
            heads, kernel = getattr(a, f"{side}_heads"), getattr(a, f"{side}_kernel")
            assert (heads is None) == (block == "sepconv")
            assert heads is None or width % heads == 0
            assert (kernel is None) == (block == "transformer")
        assert tasks.arch_from_dict(json.loads(a.to_json())) == a
    with pytest.raises(ValueError, match="enc_heads"):   # heads do not apply to sepconv
        small(enc_block="sepconv", enc_heads=2)
    with pytest.raises(ValueError, match="not a tts architecture"):
        TTSArch.from_dict({**preset("fastspeech2").to_dict(), "task": "asr"})


# --- targets from eSpeak ----------------------------------------------------
@pytest.mark.parametrize("text,voice", [("the quick brown fox jumps over", "en-us"),
                                        ("привет мир как дела", "ru"),
                                        ("नमस्ते दुनिया", "hi")])
def test_phoneme_events_time_the_audio_and_durations_sum_to_it(text, voice):
    wave, marks = synthesize_timed(text, Voice(voice))
    assert np.array_equal(wave, synthesize(text, Voice(voice)))   # events change nothing
    starts = [s for _, s in marks]
    assert len(marks) >= 5 and starts == sorted(starts)
    assert 0 <= starts[0] < starts[-1] <= (len(wave) + 1) / 16000   # resampling rounds
    u, _ = data.make("x", text, Voice(voice))
    assert u.durations.sum() == u.mel.shape[0] and (u.durations >= 0).all()
    assert len(u.durations) == len(u.phonemes)


def test_durations_from_start_times():
    # frame t is centred at 10 t + 12.5 ms
    assert data.durations([0.0, 0.05, 0.1], 20).tolist() == [4, 5, 11]
    # a start past the end, and out of order, still sum to the frames
    d = data.durations([0.0, 0.3, 0.2, 9.0], 25)
    assert d.sum() == 25 and (d >= 0).all()


# --- model and device graph -------------------------------------------------
@pytest.mark.parametrize("block", ["transformer", "sepconv", "lightconv", "dynconv"])
def test_batched_training_forward_equals_the_single_utterance_graph(block):
    torch.manual_seed(0)
    model = build(small(block, block)).eval()
    ids = torch.randint(2, 40, (3, 12))
    ids[1, 9:] = 0          # padding
    dur = torch.randint(0, 6, (3, 12)) * (ids != 0)
    dur[0] = 6              # the longest: utterance 1 has padded frames in the batch
    with torch.no_grad():
        batched, _, _ = model(ids, dur)
        one, _, _ = model(ids[1:2, :9], dur[1:2, :9])
    n = int(dur[1].sum())
    assert torch.allclose(batched[1, :n], one[0, :n], atol=1e-5)
    assert batched[1, n:].abs().max() == 0


def test_length_regulator_repeats_each_phoneme_its_duration():
    h = torch.arange(3, dtype=torch.float32)[None, :, None] + 1
    for B in (1, 2):
        y, mask = regulate(h.expand(B, 3, 1), torch.tensor([[2, 0, 3]] * B), 7)
        assert y[0, :, 0].tolist() == [1, 1, 3, 3, 3, 0, 0]
        assert mask[0].tolist() == [1, 1, 1, 1, 1, 0, 0]


def test_device_graph_has_fixed_buckets():
    g = device_graph(build(small()))
    assert [tuple(s.shape) for s in g.inputs] == [(1, PHONEME_BUCKET, 40)]
    mel, frames = g(*g.example_inputs())
    assert mel.shape == (1, FRAME_BUCKET, 80) and 0 <= float(frames) <= FRAME_BUCKET


@pytest.mark.parametrize("block", ["transformer", "sepconv", "lightconv", "dynconv"])
def test_onnx_export_matches_pytorch(block, tmp_path):
    from hwnas.export import export

    art = export(small(block, block), "onnx", tmp_path)
    assert art.parity["max_abs_diff"] < 1e-4
    assert art.outputs == ["mel", "frames"]


@pytest.mark.slow
def test_tflite_export_of_sampled_architectures_matches_pytorch(tmp_path):
    from hwnas.export import export

    space = default_space()
    archs = [preset("lightspeech_like")] + [space.sample(random.Random(i)) for i in (2,)]
    for a in archs:
        art = export(a, "tflite", tmp_path)
        assert art.parity["max_abs_diff"] < 1e-4, a


# --- training ---------------------------------------------------------------
def test_stopped_and_resumed_training_equals_an_uninterrupted_run(tiny_tts, tmp_path):
    _, root = tiny_tts
    phon = data.PhonemeSet.of(root)
    tr, dv = data.load_split(root, "train")[:24], data.load_split(root, "dev")[:4]
    arch = small()
    kw = dict(batch_frames=1500, dev_utts=2, seed=1)
    whole = train(arch, tr, dv, phon, TTSTrainConfig(steps=6, **kw))
    snap = tmp_path / "snap.pt"
    train(arch, tr, dv, phon, TTSTrainConfig(steps=3, snapshot=snap, **kw))
    resumed = train(arch, tr, dv, phon, TTSTrainConfig(steps=6, snapshot=snap, **kw))
    assert resumed.steps == whole.steps == 6
    for k, v in whole.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert resumed.dev == whole.dev
    with pytest.raises(ValueError, match="another architecture"):
        train(small("sepconv"), tr, dv, phon, TTSTrainConfig(steps=7, snapshot=snap, **kw))


@pytest.mark.parametrize("block", ["transformer", "sepconv", "lightconv", "dynconv"])
def test_a_tts_training_step_and_its_evaluation_make_no_tensor_off_the_models_device(block):
    """What makes TTS training run on a GPU, checked without one (as the
    recogniser's test): under ``torch.device("meta")`` a tensor made without
    naming its device is a meta tensor, which fails against the model's."""
    from hwnas.tts.train import loss_of

    torch.manual_seed(0)
    model = build(small(block, block))
    ids = torch.randint(2, 40, (2, 10))
    dur = torch.randint(1, 4, (2, 10))
    mel = torch.randn(2, int(dur.sum(1).max()), 80)
    with torch.device("meta"):
        l1, dl = loss_of(model, (ids, dur, mel))
        (l1 + dl).backward()
        model.eval()
        with torch.no_grad():
            model.synthesize(ids[0])


def test_tts_training_records_its_device_and_refuses_a_snapshot_of_the_other_kind(
        tiny_tts, tmp_path):
    _, root = tiny_tts
    phon = data.PhonemeSet.of(root)
    tr, dv = data.load_split(root, "train")[:12], data.load_split(root, "dev")[:2]
    snap = tmp_path / "snap.pt"
    kw = dict(batch_frames=1500, dev_utts=1, seed=1, snapshot=snap)
    res = train(small(), tr, dv, phon, TTSTrainConfig(steps=1, device="cpu", **kw))
    assert res.to_dict()["device"] == "cpu" and res.to_dict()["clock"] == "cpu_seconds"
    assert res.precision == "fp32"   # auto on a CPU
    d = torch.load(snap, weights_only=True)
    d["clock"] = "device_seconds"
    torch.save(d, snap)
    with pytest.raises(ValueError, match="trained on an accelerator.*same kind of device"):
        train(small(), tr, dv, phon, TTSTrainConfig(steps=2, **kw))


@pytest.mark.slow
def test_cli_trains_writes_audio_and_profiles(tiny_tts, tmp_path, capsys):
    ws, _ = tiny_tts
    out = tmp_path / "run"
    arch = tmp_path / "arch.json"
    arch.write_text(small().to_json())
    assert main(["tts", "train", "--arch", str(arch), "--size", "tiny", "--budget", "4s",
                 "--workspace", str(ws), "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["steps"] > 0 and res["dev"]["mcd_db"] > 0
    assert (out / "mel.png").stat().st_size > 10_000
    assert len(list((out / "wav").glob("*-model.wav"))) == 3
    # the trained architecture exports with its weights
    from hwnas.export import export

    trained = tasks.arch_from_json((out / "arch.json").read_text())
    art = export(trained, "onnx", tmp_path / "exp", weights=out / "weights.pt")
    assert art.parity["max_abs_diff"] < 1e-4
    # measured through the CPU adapter into the TTS profile
    assert main(["profile", "--task", "tts", "--device", "cpu", "--n", "2", "--workspace",
                 str(ws), "--json"]) == 0
    capsys.readouterr()
    from hwnas.profiling.store import open_profile

    rows = open_profile("cpu.tts", ws).rows()
    assert len(rows) == 2 and all(r["arch_id"].startswith("tts-") for r in rows)
    assert all(r["status"] in ("ok", "flagged") and r["rtf"] > 0 for r in rows)
    assert not (Path(ws) / "profiles" / "cpu").exists()   # the speech profile is untouched


def test_the_shared_commands_take_a_tts_architecture(tmp_path, capsys):
    arch = tmp_path / "tts.json"
    arch.write_text(small().to_json())
    assert main(["stats", str(arch), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == tasks.stats(small())["params"]
    assert main(["export", str(arch), "--format", "onnx", "--out", str(tmp_path / "x")]) == 0
    assert "max |diff|" in capsys.readouterr().out
    assert main(["train", str(arch), "--budget", "5s", "--workspace", str(tmp_path)]) != 0
    assert "is a TTS architecture; this command takes ASR ones" in capsys.readouterr().err


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["tts", "train", "--workspace", str(tmp_path)]) != 0
    assert "one of --preset" in capsys.readouterr().err
    assert main(["tts", "train", "--preset", "nope", "--workspace", str(tmp_path)]) != 0
    assert "unknown TTS preset" in capsys.readouterr().err


# --- predictor and search ---------------------------------------------------
def test_latency_predictor_learns_tts_graphs_and_refuses_speech_ones():
    from hwnas.asr import preset as asr_preset
    from hwnas.predict.features import feature_matrix, feature_names
    from hwnas.predict.latency import LatencyPredictor
    from hwnas.tts.cost import analytic

    space = default_space()
    archs = space.sample_distinct(60, seed=1)
    X = feature_matrix(archs)
    assert X.shape == (60, len(feature_names("tts")))
    # the analytic FLOPs agree with PyTorch's FLOP counter on the device graph
    flops = analytic(space.columns(archs[:3]))["flops"]
    for a, f in zip(archs[:3], flops):
        assert abs(f / tasks.stats(a)["flops"] - 1) < 0.05
    y = 1e-8 * analytic(space.columns(archs))["flops"] + 0.5
    model = LatencyPredictor.fit(archs[:50], y[:50], rounds=50)
    assert model.card["task"] == "tts"
    err = np.abs(model.predict(archs[50:]) / y[50:] - 1)
    assert np.median(err) < 0.2
    with pytest.raises(ValueError, match="learned tts graphs"):
        model.predict([asr_preset("conformer_xs")])
    with pytest.raises(ValueError, match="mix"):
        feature_matrix([archs[0], asr_preset("conformer_xs")])


TINY_SPACE = ("[choices]\nenc_layers = [1]\nenc_hidden = [64]\ndec_layers = [1]\n"
              "dec_hidden = [64, 128]\nvar_hidden = [32]\n")


@pytest.mark.slow
def test_tts_search_measures_trains_verifies_exports_and_resumes(tiny_tts, tmp_path, capsys):
    """The shared search with a TTS task: the presets first (as baselines), each
    trial measured on the target, trained, verified by a second measurement,
    the answer exported with its model card, the study continued, reported."""
    ws, _ = tiny_tts
    space = tmp_path / "space.toml"
    space.write_text(TINY_SPACE)
    base = ["search", "--task", "tts", "--target", "cpu", "--tts-size", "tiny",
            "--tts-budget", "3s", "--space", str(space), "--workspace", str(ws), "--json",
            "--max-rtf", "0.05"]
    assert main([*base, "--trials", "2"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["trials"] == 2 and first["pareto"]
    assert first["predictor"].startswith("measured on cpu")
    for r in first["pareto"]:
        assert r["verdict"] == "met" and r["measurements"] >= 2, r
        assert r["quality_key"] == "mcd" and r["mcd"] == r["dev"]["mcd_db"] > 0
        assert r["latency_source"] == "measured" and 0 < r["rtf"] < 0.05
    card = json.loads((Path(first["export"]) / "model_card.json").read_text())
    assert card["model"]["task"] == "tts" and card["metrics"]["dev_mcd"] > 0
    assert card["export"]["parity"]["max_abs_diff"] < 1e-4
    assert (Path(first["export"]) / "mel_norm.npz").is_file()
    assert "## Dev quality" in (Path(first["export"]) / "MODEL_CARD.md").read_text()
    assert main([*base, "--trials", "3"]) == 0      # continues the study: one more trial
    assert json.loads(capsys.readouterr().out)["trials"] == 3
    assert main(["report", "tts", "--workspace", str(ws), "--out", str(tmp_path / "rep"),
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["task"] == "tts" and rep["quality"] == "MCD (dB)" and rep["trained"] == 3
    assert "Best MCD (dB)" in (tmp_path / "rep" / "report.html").read_text()
    # a recogniser's search cannot continue it
    assert main(["search", "--target", "cpu", "--study", "tts", "--workspace", str(ws)]) != 0
    assert "searched TTS architectures" in capsys.readouterr().err
    # a limit nothing meets: measured, told infeasible, never trained, nothing exported
    assert main([*base, "--trials", "1", "--max-rtf", "1e-7", "--study", "strict"]) == 0
    strict = json.loads(capsys.readouterr().out)
    assert strict["pareto"] == [] and not strict["export"]
    assert not (Path(ws) / "runs" / "search" / "strict" / "trials").exists()
    # what a TTS search does not use is refused in one line
    assert main([*base, "--trials", "1", "--cer-source", "supernet"]) != 0
    assert "--task tts does not use it" in capsys.readouterr().err


@pytest.mark.slow
def test_a_tts_search_by_evolution_on_worker_processes_with_two_rungs_resumes_after_kill(
        tiny_tts, tmp_path):
    """Strategies, successive halving and executors are the search's, whatever the
    task: evolution proposes, two rungs halve, worker processes train. kill -9
    mid-search and a rerun finishes with exactly the trials asked for."""
    import signal
    import subprocess
    import sys

    ws, _ = tiny_tts
    space = tmp_path / "space.toml"
    space.write_text(TINY_SPACE.replace("enc_hidden = [64]", "enc_hidden = [64, 128]"))
    cmd = [sys.executable, "-m", "hwnas", "search", "--task", "tts", "--target", "cpu",
           "--tts-size", "tiny", "--tts-budget", "1s,2s", "--space", str(space),
           "--workspace", str(ws), "--strategy", "evolution", "--executor", "process",
           "--population", "3", "--trials", "6", "--study", "evo", "--no-baselines"]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    for line in p.stderr:   # kill it once the first generation is told
        if line.startswith("  #"):
            p.send_signal(signal.SIGKILL)
            break
    p.wait(timeout=600)
    assert p.returncode == -signal.SIGKILL
    r = subprocess.run([*cmd, "--json"], env=env, text=True, capture_output=True, timeout=900)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["trials"] == 6 and out["pareto"]
    import optuna

    study = optuna.load_study(study_name="evo",
                              storage=f"sqlite:///{ws / 'runs' / 'search' / 'evo.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 6 and study.user_attrs["strategy"] == "evolution"
    assert study.user_attrs["task"] == "tts" and study.user_attrs["quality_key"] == "mcd"
    trained = [t for t in done if t.user_attrs.get("rungs")]
    # successive halving: every trained trial ran rung 0; 1/eta of each generation rung 1
    assert trained and all(t.user_attrs["rungs"][0]["budget_s"] == 1 for t in trained)
    assert any(t.user_attrs["stopped_at"] == 0 for t in trained)
    assert any(len(t.user_attrs["rungs"]) == 2 for t in trained)
    assert main(["report", "evo", "--workspace", str(ws), "--out", str(tmp_path / "rep")]) == 0


@pytest.mark.slow
def test_intelligibility_transcribes_model_and_ceilings(tiny_tts, tmp_path, capsys):
    from hwnas.asr import preset as asr_preset
    from hwnas.asr.train import TrainConfig, save_run
    from hwnas.asr.train import train as train_asr
    from hwnas.tts.run import train_run
    from tests.helpers import synthetic_splits

    ws, _ = tiny_tts
    tts_run = tmp_path / "tts"
    train_run(ws, small(), tts_run, size="tiny", steps=2)
    splits_of, tok = synthetic_splits()
    arch = asr_preset("conformer_xs")
    sp = splits_of(arch.frontend, arch.n_filters)
    res = train_asr(arch, sp.train, sp.dev, tok, TrainConfig(steps=1, specaug=False))
    save_run(tmp_path / "asr", res, tok)
    assert main(["tts", "score", str(tts_run), "--asr", str(tmp_path / "asr"), "--n", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["utterances"] == 3 and len(out["examples"]) == 3
    for source in ("model", "espeak", "espeak_griffin_lim"):
        assert out[source]["cer"] >= 0 and out[source]["wer"] >= 0
    assert json.loads((tts_run / "intelligibility.json").read_text()) == out
    assert main(["tts", "score", str(tmp_path / "nope"), "--asr", str(tmp_path)]) != 0
    capsys.readouterr()
    # intelligibility as the search's quality objective
    space = tmp_path / "space.toml"
    space.write_text("[choices]\nenc_layers = [1]\nenc_hidden = [64]\ndec_layers = [1]\n"
                     "dec_hidden = [64]\nvar_hidden = [32]\n")
    assert main(["search", "--task", "tts", "--target", "cpu", "--tts-size", "tiny",
                 "--tts-budget", "2s", "--space", str(space), "--workspace", str(ws),
                 "--asr-run", str(tmp_path / "asr"), "--trials", "1", "--study", "heard",
                 "--no-export", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["objectives"] == ["cer", "rtf", "params"]
    assert found["pareto"] and 0 <= found["pareto"][0]["cer"]
    assert main(["search", "--task", "tts", "--target", "cpu", "--objectives", "cer,rtf",
                 "--workspace", str(ws)]) != 0
    assert "needs --asr-run" in capsys.readouterr().err
