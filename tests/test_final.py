"""Baselines in the loop and the final phase: the search's answer is judged
against the hand-designed presets at equal final training."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwnas import tasks
from hwnas.asr import default_space
from hwnas.asr.delay import narrow
from hwnas.search.baselines import for_search
from hwnas.search.study import SearchConfig, best_baseline, judge, run_search
from hwnas.workflows.final import FinalBudget, decide, not_slower
from tests.helpers import fake_trainer

ROOT = Path(__file__).resolve().parents[1]
PRESETS = tasks.get("asr").presets()


def lat(arch):
    return 0.001 * arch.d_model * arch.num_layers


def test_baselines_enter_the_first_generation_adapted_to_the_flags(tmp_path):
    """--streaming --max-delay 300: every preset that can stream comes in with
    240 ms chunks (480 ms would wait 495 ms for its audio), 16 blocks become the
    space's 8, the bidirectional one is left out, each change stated."""
    space, _ = narrow(default_space(), streaming=True, max_delay_ms=300)
    cfg = SearchConfig(target="cpu", objectives=("cer", "delay"), max_delay_ms=300, trials=8,
                       population_size=4, space=space, rungs=(10.0,),
                       storage=f"sqlite:///{tmp_path / 'b.db'}", study="b")
    found, notes = for_search(space, lambda a: judge(cfg, a, lat), PRESETS)
    by = {b.name: b for b in found}
    assert set(by) == {"conformer_s_streaming", "conformer_xs", "lstm_rnnt", "contextnet_s",
                       "transformer_ctc"}
    assert all(b.arch.streaming and b.arch.chunk_ms == 240 and space.contains(b.arch)
               for b in found)
    assert "num_layers 16 -> 8" in by["conformer_s_streaming"].change
    assert "chunk_ms 480 -> 240" in by["conformer_s_streaming"].change
    assert by["conformer_xs"].change.startswith("made streaming")
    assert by["lstm_rnnt"].change == ""                      # in the space as it is
    assert any("blstm_ctc" in n and "cannot stream" in n for n in notes)
    assert any("conformer_s:" in n and "same architecture" in n for n in notes)
    # they are the first generation, whole (5 > a population of 4), marked as baselines
    cfg.baselines = tuple(found)
    study = run_search(cfg, lat, fake_trainer([]))
    first = sorted(study.trials, key=lambda t: t.number)[:5]
    assert [t.user_attrs["arch_id"] for t in first] == [b.arch.id for b in found]
    assert [t.user_attrs["baseline"] for t in first] == [b.name for b in found]
    assert not any(t.user_attrs.get("baseline") for t in study.trials[5:])
    base = best_baseline(study)
    assert base["baseline"] == min(first, key=lambda t: t.user_attrs["cer"]).user_attrs[
        "baseline"]


def test_baselines_train_stand_alone_where_the_others_are_screened(tmp_path):
    """With a screen (supernet weights), the others may stop at an inherited
    score; a baseline always trains, so the answer can be set beside it."""
    space, _ = narrow(default_space(), streaming=True, max_delay_ms=500)
    cfg = SearchConfig(target="cpu", objectives=("cer", "delay"), max_delay_ms=500, trials=10,
                       population_size=5, space=space, rungs=(10.0,),
                       storage=f"sqlite:///{tmp_path / 'sc.db'}", study="sc")
    found, _ = for_search(space, lambda a: judge(cfg, a, lat), PRESETS)
    cfg.baselines = tuple(found)
    seen = []

    def screen(cands):   # scores everything it is given, keeps none for training
        seen.extend(c.arch.id for c in cands)
        for c in cands:
            c.screen.append({"source": "inherited", "cer": 0.5, "cpu_s": 0.1})
        return []

    study = run_search(cfg, lat, fake_trainer([]), screen=screen)
    ids = {b.arch.id for b in found}
    assert seen and not ids & set(seen)
    for t in study.trials:
        if t.user_attrs.get("baseline"):
            assert t.user_attrs["cer_source"] == "trained" and t.user_attrs["rungs"]
    assert best_baseline(study) is not None


def test_a_preset_whose_family_or_decoder_the_space_lacks_is_left_out():
    space = default_space().with_choices({"encoder": ["lstm", "conformer"],
                                          "decoder": ["ctc"], "num_layers": [1, 2]})
    cfg = SearchConfig(target="cpu", space=space)
    found, notes = for_search(space, lambda a: judge(cfg, a, lat), PRESETS)
    assert {b.name for b in found} == {"conformer_xs"}
    assert any(n == "blstm_ctc: left out: this space has no encoder blstm" for n in notes)
    assert any(n == "lstm_rnnt: left out: this space has no decoder rnnt" for n in notes)
    assert any(n.startswith("contextnet_s: left out: this space has no encoder contextnet "
                            "and no decoder rnnt") for n in notes)


def test_a_baseline_that_breaks_a_limit_at_every_chunk_is_left_out_with_the_reason():
    space, _ = narrow(default_space(), streaming=True, max_delay_ms=500)
    cfg = SearchConfig(target="cpu", max_latency_ms=0.5, space=space)
    found, notes = for_search(space, lambda a: judge(cfg, a, lat), PRESETS)
    assert {b.name for b in found} == {"lstm_rnnt"} or all(
        lat(b.arch) <= 0.5 for b in found)
    assert any("conformer_s_streaming: left out: predicted compute" in n
               and "--max-latency" in n for n in notes)


def test_the_final_budget_is_a_share_of_the_whole_training():
    third = FinalBudget()
    # 900 s spent by the search: the final phase gets 450 more, shared by 3 finalists
    # that already hold 120, 120 and 40
    b = third.per_finalist(900.0, [120.0, 120.0, 40.0], 120.0)
    assert b == round((450 + 280) / 3)
    assert sum(b - d for d in (120, 120, 40)) == pytest.approx(450, abs=1.5)
    assert third.per_finalist(30.0, [0.0], 120.0) == 120.0   # never below the longest rung
    assert FinalBudget(share=None, each=600.0).per_finalist(900.0, [120.0], 120.0) == 600.0
    assert FinalBudget(share=0).off and not third.off


def test_final_budget_as_users_type_it():
    from cli._common import parse_budget

    def parse(text, unit="cpu_seconds"):
        return FinalBudget.parse(text, unit, parse_budget)

    assert parse("1/3").share == pytest.approx(1 / 3) and parse("25%").share == 0.25
    assert parse("0.5").share == 0.5 and parse("0").off
    assert parse("10m") == FinalBudget(share=None, each=600.0)
    assert parse("300", "steps") == FinalBudget(share=None, each=300.0)
    for bad in ("soon", "1/0", "abc%"):
        with pytest.raises(ValueError, match="--final-budget"):
            parse(bad)


def _row(cer, delay, ci=None, baseline=None, lat_ms=1.0):
    return {"arch_id": f"a{cer}", "cer": cer, "delay_ms": delay, "latency_ms": lat_ms,
            "delay_ci": ci, "baseline": baseline, "verdict": "met"}


def test_the_answer_is_the_best_found_that_beats_the_best_baseline_or_the_baseline():
    from hwnas.search.study import select_for_target

    base = _row(0.20, 495.0, (495.0, 495.4), baseline="conformer_xs")
    # lower CER at a shorter delay: it beats the baseline
    best, line = decide([base, _row(0.15, 255.0, (255.0, 255.2))], ("cer", "delay"),
                        select_for_target)
    assert best["cer"] == 0.15 and "beats the best baseline, conformer_xs" in line
    # lower CER, but later: it does not; neither does a worse one that is sooner
    best, line = decide([base, _row(0.15, 975.0, (975.0, 975.3)),
                         _row(0.30, 255.0, (255.0, 255.1))], ("cer", "delay"),
                        select_for_target)
    assert best is base and line.endswith("the answer is the baseline")
    assert "no searched architecture beats the best baseline, conformer_xs" in line
    # equal delay within the measurement's interval counts as equal
    a = _row(0.1, 495.3, (495.1, 495.5))
    assert not_slower(a, base, ("delay",)) and not not_slower(
        _row(0.1, 496.0, (495.8, 496.2)), base, ("delay",))
    # a second baseline on the front (the fastest, barely trained) is not the one to beat
    slow_learner = _row(0.92, 256.0, (255.9, 256.1), baseline="lstm_rnnt")
    best, line = decide([slow_learner, base, _row(0.30, 255.0, (255.0, 255.1))],
                        ("cer", "delay"), select_for_target)
    assert best is base and "best baseline, conformer_xs" in line
    # no baseline in the answer: the lowest CER, no line
    best, line = decide([_row(0.3, 255.0), _row(0.2, 495.0)], ("cer", "delay"),
                        select_for_target)
    assert best["cer"] == 0.2 and line is None


SEARCH = """
import sys
sys.path.insert(0, {root!r})
from hwnas.data import corpus
corpus.SIZES["tiny"] = (12, 4, 4)
from cli.main import main
sys.exit(main({argv!r}))
"""


def _search_cmd(ws: Path, space: Path, *extra: str) -> list[str]:
    argv = ["search", "--target", "cpu", "--trials", "4", "--population", "4",
            "--cer-steps", "2,4", "--size", "tiny", "--space", str(space), "--workspace",
            str(ws), "--no-verify", "--no-export", "--final-budget", "150", "--study", "f",
            *extra]
    return [sys.executable, "-c", SEARCH.format(root=str(ROOT), argv=argv)]


@pytest.mark.slow
def test_the_final_phase_trains_the_finalists_to_the_final_budget_and_resumes_after_kill(
        tmp_path):
    """The finalists (Pareto set + best baseline) train to 150 steps each in
    final/<arch id>/; kill -9 during the final phase, rerun: the same answer
    and the same final CERs as a run never interrupted (steps are deterministic)."""
    space = tmp_path / "space.toml"
    space.write_text('[choices]\nencoder = ["lstm", "conformer"]\nnum_layers = [1, 2]\n'
                     'd_model = [96]\ndecoder = ["ctc"]\nn_filters = [40]\n'
                     'frontend = ["logmel"]\nstreaming = [true]\n')
    from tests.test_search import _fast_cpu

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    outs = {}
    for name in ("killed", "straight"):
        ws = tmp_path / name
        _fast_cpu(ws)
        if name == "killed":
            p = subprocess.Popen(_search_cmd(ws, space), cwd=ROOT, env=env, text=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for line in p.stderr:   # kill it a moment into the final phase
                if "final phase" in line:
                    time.sleep(1.5)
                    p.send_signal(signal.SIGKILL)
                    break
            p.wait(timeout=600)
            assert p.returncode == -signal.SIGKILL
            assert (ws / "runs" / "search" / "f" / "final").is_dir()
        r = subprocess.run(_search_cmd(ws, space, "--json"), cwd=ROOT, env=env, text=True,
                           capture_output=True, timeout=900)
        assert r.returncode == 0, r.stderr
        outs[name] = json.loads(r.stdout)
    a, b = outs["killed"], outs["straight"]
    assert a["final_budget"] == b["final_budget"] == 150
    assert a["baseline"] is not None and a["baseline"]["baseline"]
    assert [(r["arch_id"], r["cer"]) for r in a["pareto"]] == \
        [(r["arch_id"], r["cer"]) for r in b["pareto"]]
    assert a["selected"]["arch_id"] == b["selected"]["arch_id"]
    for r in a["pareto"]:
        res = json.loads((Path(r["run_dir"]) / "result.json").read_text())
        assert res["steps"] == 150 and res["final_budget"] == 150
        assert r["final_budget"] == 150 and "rung_cer" in r
    # the report shows the final phase and how the answer stands against the baseline
    from cli.main import main

    assert main(["report", "f", "--workspace", str(tmp_path / "killed"), "--out",
                 str(tmp_path / "rep"), "--json"]) == 0
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "Final phase: the answer at equal training" in page
    assert "trained to\n150 steps" in page and "(delivered)" in page
    line = a["versus_baseline"]
    assert html.escape(line[:1].upper() + line[1:]) in page
    # the trials' own runs stay as the search left them
    trials = tmp_path / "killed" / "runs" / "search" / "f" / "trials"
    for d in trials.iterdir():
        assert json.loads((d / "result.json").read_text())["steps"] <= 4
