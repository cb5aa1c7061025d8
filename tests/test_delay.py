"""Latency as a user feels it: the delay arithmetic, the delay constraint in
the search, and its verification as measured."""

from __future__ import annotations

import itertools

import pytest

from hwnas.asr import default_space, delay, preset
from hwnas.asr.decisions import SUBSAMPLING_FACTOR
from hwnas.search.study import SearchConfig, run_search
from tests.helpers import fake_trainer, small

SPACE = default_space()
CHUNKS = SPACE._by_name["chunk_ms"].choices
LOOKAHEADS = SPACE._by_name["lookahead"].choices


def _stream(subsampling: str, chunk_ms: int, lookahead: int):
    return preset("lstm_rnnt").replace(subsampling=subsampling, chunk_ms=chunk_ms,
                                       lookahead=lookahead)


COMBOS = [(s, c, la) for s, c, la in itertools.product(SUBSAMPLING_FACTOR, CHUNKS, LOOKAHEADS)
          if c % (10 * SUBSAMPLING_FACTOR[s]) == 0]


def test_every_combination_of_the_space_is_covered():
    # 4 subsamplings x 3 chunks x 3 look-aheads, less the chunks conv2d6 (60 ms frames)
    # and conv2d8 (80 ms) cannot cut: 240, 480 and 960 are multiples of 60 and 80 too
    assert len(COMBOS) == len(SUBSAMPLING_FACTOR) * len(CHUNKS) * len(LOOKAHEADS) == 36


@pytest.mark.parametrize("subsampling, chunk_ms, lookahead", COMBOS)
def test_algorithmic_delay_is_chunk_plus_lookahead_plus_window(subsampling, chunk_ms,
                                                               lookahead):
    arch = _stream(subsampling, chunk_ms, lookahead)
    frame_ms = 10 * SUBSAMPLING_FACTOR[subsampling]
    assert delay.algorithmic_delay_ms(arch) == chunk_ms + lookahead * frame_ms + 15
    assert delay.audio_ms(arch) == chunk_ms
    assert delay.emission_delay_ms(arch, 2.5) == chunk_ms + lookahead * frame_ms + 17.5
    assert delay.rtf(arch, 2.4) == pytest.approx(2.4 / chunk_ms)
    # the same audio the chunk graph takes: its input frames (10 ms hops) plus the
    # window past the last hop, from the cost model the predictor reads ...
    from hwnas.predict.features import costs

    assert costs(arch)["in_frames"] * 10 + delay.FRONTEND_MS == \
        delay.algorithmic_delay_ms(arch)


@pytest.mark.parametrize("subsampling", list(SUBSAMPLING_FACTOR))
def test_the_chunk_graph_takes_exactly_the_counted_audio(subsampling):
    # ... and from the built device graph itself
    from hwnas.asr.models import build, device_graph
    from hwnas.nn.frontend import HOP, N_FFT, SAMPLE_RATE

    assert (N_FFT - HOP) * 1000 // SAMPLE_RATE == delay.FRONTEND_MS
    arch = small("conformer", "ctc", "mhsa", "logmel", streaming=True, num_layers=1,
                 subsampling=subsampling, chunk_ms=480, lookahead=2)
    feats = next(s for s in device_graph(build(arch)).inputs if s.name == "features")
    assert feats.shape[1] * 10 + delay.FRONTEND_MS == delay.algorithmic_delay_ms(arch)


def test_full_context_waits_for_the_whole_utterance():
    arch = preset("conformer_xs")
    assert delay.algorithmic_delay_ms(arch) == 4800 + 15
    assert delay.describe(arch)["chunk_ms"] is None and delay.lookahead_ms(arch) == 0


def test_a_delay_infeasible_as_predicted_is_not_trained(tmp_path):
    space = SPACE.with_choices({"encoder": ["lstm"], "streaming": [True], "num_layers": [1],
                                "d_model": [96], "decoder": ["ctc"], "lookahead": [0],
                                "subsampling": ["conv2d4"]})
    calls: list = []
    cfg = SearchConfig(target="cpu", objectives=("cer", "delay"), max_delay_ms=300.0,
                       trials=12, rungs=(5.0,), seed=1, space=space, sampler="random",
                       storage=f"sqlite:///{tmp_path / 's.db'}", study="d")
    study = run_search(cfg, lambda a: 1.0, fake_trainer(calls))
    trained = {a for a, _ in calls}
    seen = {t.user_attrs["arch_id"]: t.user_attrs for t in study.trials}
    assert {a["arch"]["chunk_ms"] for a in seen.values()} == {240, 480, 960}
    for arch_id, a in seen.items():
        assert a["delay_ms"] == a["arch"]["chunk_ms"] + 15 + 1.0   # predicted compute 1 ms
        assert a["rtf"] == pytest.approx(1.0 / a["arch"]["chunk_ms"])
        # 240 ms chunks (256 ms) meet 300 ms; 480 and 960 do not and are never trained
        assert a["trained"] == (a["delay_ms"] <= 300) == (arch_id in trained)
    assert trained and len(trained) < len(seen)
    assert study.user_attrs["constraints"]["max_delay_ms"] == 300.0
    assert [t.values[1] for t in study.trials] == [t.user_attrs["delay_ms"]
                                                   for t in study.trials]


def test_verification_drops_a_measured_delay_over_the_limit_with_both_numbers(tmp_path):
    from hwnas.workflows.verify import verify
    from tests.test_search import _fast_cpu

    spec = _fast_cpu(tmp_path)
    base = small("lstm", "ctc", None, "logmel", streaming=True, num_layers=1)
    rows = []
    for i, chunk in enumerate((240, 960)):
        arch = base.replace(chunk_ms=chunk)
        rows.append({"trial": i, "arch_id": arch.id, "arch": arch.to_dict(), "cer": 0.5,
                     "latency_ms": 1.0, "delay_ms": delay.emission_delay_ms(arch, 1.0),
                     "rtf": delay.rtf(arch, 1.0), "params": 1, "size_mb": 0.1})
    kept, dropped, note = verify(rows, spec, tmp_path, None, None, max_delay_ms=500.0)
    assert note is None and [r["arch"]["chunk_ms"] for r in kept] == [240]
    assert [r["arch"]["chunk_ms"] for r in dropped] == [960]
    k, d = kept[0], dropped[0]
    assert k["verdict"] == "met" and k["latency_source"] == "measured"
    assert k["delay_ms"] == pytest.approx(k["algorithmic_ms"] + k["latency_ms"])
    assert k["delay_ci"][0] <= k["delay_ms"] <= k["delay_ci"][1] < 500
    assert k["rtf"] == pytest.approx(k["latency_ms"] / 240)
    assert d["verdict"] == "missed" and d["delay_ms"] > 975
    # the reason names the measured delay and the limit, and what was predicted
    assert d["reason"].startswith(f"missed: measured emission delay {d['delay_ms']:.3f} ms")
    assert "> 500 ms" in d["reason"] and "predicted 976.000 ms" in d["reason"]


@pytest.mark.parametrize("flag", ["--max-delay", "--max-rtf"])
def test_a_limit_that_cannot_mean_anything_is_one_line(flag, capsys, tmp_path):
    from cli.main import main

    with pytest.raises(SystemExit) as e:   # refused by the option's declared range
        main(["search", "--target", "cpu", flag, "0", "--workspace", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"argument {flag}: must be a finite number > 0, got 0")


def test_choices_that_cannot_meet_the_delay_are_left_out_of_the_space():
    def choices(limit):
        sp = delay.within_delay(SPACE, limit)
        return {d.name: d.choices for d in sp.decisions}

    c = choices(500)   # 960 ms chunks wait 975 ms; 480 ms with any look-ahead still fits
    assert c["chunk_ms"] == (240, 480) and c["lookahead"] == (0, 1, 2)
    assert c["streaming"] == (True,) and "blstm" not in c["encoder"]
    c = choices(300)   # 240 ms chunks, and one 40 ms look-ahead frame at most
    assert c["chunk_ms"] == (240,) and c["lookahead"] == (0, 1)
    assert choices(5000)["streaming"] == (False, True)
    with pytest.raises(ValueError, match="shortest chunk of the space waits 255 ms"):
        delay.within_delay(SPACE, 200)
    # what is left: without look-ahead every architecture fits; one look-ahead frame fits
    # with 40 ms frames only, a joint rule the per-trial (predicted) constraint enforces
    archs = delay.within_delay(SPACE, 300).sample_distinct(300, 0)
    alg = {a.id: delay.algorithmic_delay_ms(a) for a in archs}
    assert all(alg[a.id] <= 300 for a in archs if a.lookahead == 0)
    assert {a.subsampling for a in archs if a.lookahead and alg[a.id] > 300} <= {"conv2d6",
                                                                               "conv2d8"}
