"""The workspace fuzzer (tests/fuzz.py): its machinery, fast; the fuzzing of a
workspace built by the real commands, slow (about 4 minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import fuzz


def test_kinds_fold_numbers_and_ids_so_a_new_file_is_covered_unlisted():
    reps = fuzz.representatives([
        "runs/search/s/trials/00000-932693f9aa07/result.json",
        "runs/search/s/trials/00001-f662f1e83e43/result.json",
        "cache/features/29a04c3888051b65.npz", "cache/features/d56ffb92e53ae1.npz",
        "some/new/state-file.json"])
    assert reps == {"runs/search/s/trials/#-#/result.json":
                    "runs/search/s/trials/00000-932693f9aa07/result.json",
                    "cache/features/#.npz": "cache/features/29a04c3888051b65.npz",
                    "some/new/state-file.json": "some/new/state-file.json"}


def test_every_file_gets_eight_corruptions_and_json_its_field_types(tmp_path):
    j, b = tmp_path / "card.json", tmp_path / "w.pt"
    j.write_text(json.dumps({"steps": 3, "name": "x", "curve": [1], "ok": True}))
    b.write_bytes(bytes(range(200)))
    assert len(fuzz.corruptions_for(j)) == 8 and "wrong field types" in fuzz.corruptions_for(j)
    assert len(fuzz.corruptions_for(b)) == 8 and "one byte flipped" in fuzz.corruptions_for(b)
    fuzz.CORRUPTIONS["wrong field types"](j)
    assert json.loads(j.read_text()) == {"steps": "3", "name": ["x"], "curve": {"0": [1]},
                                         "ok": "yes"}
    fuzz.CORRUPTIONS["replaced by a directory"](b)
    assert b.is_dir()


def test_restore_undoes_every_change(tmp_path):
    ws, pristine = tmp_path / "ws", tmp_path / "pristine"
    (pristine / "a").mkdir(parents=True)
    (pristine / "a" / "f.json").write_text("{}")
    (pristine / "g.bin").write_bytes(b"xyz")
    import shutil

    shutil.copytree(pristine, ws)
    before = fuzz.files(ws)
    fuzz.CORRUPTIONS["replaced by a directory"](ws / "a" / "f.json")
    (ws / "g.bin").unlink()
    (ws / "new" / "deep").mkdir(parents=True)
    (ws / "stray.txt").write_text("x")
    fuzz.restore(ws, pristine)
    assert {k: v[2] for k, v in fuzz.files(ws).items()} == {k: v[2] for k, v in before.items()}
    assert not (ws / "new").exists()


def _base(ws: Path) -> fuzz.Baseline:
    import shutil

    pristine = ws.parent / f"{ws.name}-pristine"
    shutil.copytree(ws, pristine)
    return fuzz.Baseline(pristine, fuzz.files(ws), {}, {"cmd": set()})


@pytest.mark.parametrize("what", ["traceback", "two error lines", "a lost file",
                                  "a write outside"])
def test_a_finding_is_reported(what, tmp_path):
    """The checks fail where they should: the fuzzer is not a test that cannot fail."""
    (tmp_path / "kept.json").write_text('{"a": 1}')
    (tmp_path / "other.bin").write_bytes(b"data")
    base = _base(tmp_path)
    res = fuzz.Result(1, "", "hwnas: error: one line\n", set(), set(), [], 0.1)
    assert fuzz.check(res, "cmd", base, "other.bin", tmp_path) == []
    if what == "traceback":
        res.err = "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n"
    elif what == "two error lines":
        res.err = "hwnas: error: one\nhwnas: error: two\n"
    elif what == "a lost file":
        (tmp_path / "kept.json").write_text("[]")
    else:
        res.outside = ["open /home/user/x w"]
    assert fuzz.check(res, "cmd", base, "other.bin", tmp_path) != []


def test_a_set_aside_or_updated_file_is_not_lost(tmp_path):
    (tmp_path / "m.json").write_text('{"rows": 1, "hosts": {}}')
    (tmp_path / "snap.pt").write_bytes(b"weights")
    base = _base(tmp_path)
    (tmp_path / "set-aside").mkdir()
    (tmp_path / "snap.pt").replace(tmp_path / "set-aside" / "snap.pt")
    (tmp_path / "m.json").write_text('{"rows": 2, "hosts": {"a": 1}, "more": 3}')
    res = fuzz.Result(0, "", "", set(), set(), [], 0.1)
    assert fuzz.check(res, "cmd", base, "x", tmp_path) == []


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    with fuzz.tiny_corpora():
        yield fuzz.prepare(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.slow
def test_the_fuzzer_finds_nothing(workspace):
    """Every kind of file in a workspace made by the real commands, each
    corruption and each command that reads it at least once: no traceback,
    one line, nothing lost, nothing written outside."""
    ws, pristine, base = workspace
    kinds = fuzz.representatives(r for r, who in base.readers.items() if who)
    # the commands read state of every part: profiles, predictors, studies on
    # SQLite and on a journal, trials, training runs, supernets, TTS, corpora
    for part in ("profiles/", "predictors/", "runs/search/s.db", "runs/search/j.log",
                 "runs/search/s/trials/", "runs/train/", "supernets/", "runs/tts/",
                 "data/builtin-", "data/tts-", "cache/features/", "cache/host-reference/"):
        assert any(k.startswith(part) for k in kinds), part
    with fuzz.tiny_corpora():
        n, findings = fuzz.fuzz(ws, pristine, base, every=False)
    assert n >= 8 * len(kinds)
    assert not findings, "\n".join(f"{f.file} {f.corruption}, {f.reader}: {f.problems}"
                                   for f in findings[:10])


@pytest.mark.slow
def test_a_broken_pareto_trial_is_set_aside_counted_failed_and_the_search_goes_on(workspace):
    """Its run cannot be read: the folder is set aside, the study records why,
    the answer is drawn without it, and every later rerun finishes too."""
    import optuna

    ws, pristine, base = workspace
    search = fuzz.commands(ws)[1]["search"]
    trials = sorted((ws / "runs" / "search" / "s" / "trials").iterdir())
    broken = trials[0]
    (broken / "weights.pt").write_bytes(b"\x00 not weights")
    try:
        with fuzz.tiny_corpora():
            first, again = fuzz.run(search + ["--json"], ws), fuzz.run(search + ["--json"], ws)
        assert first.code == 0 and again.code == 0, first.err[-2000:]
        assert f"counts as failed: {broken}: not a complete training run (weights.pt" \
            in first.err, first.err[-2000:]
        assert not broken.exists()
        kept = list((ws / "runs" / "search" / "s" / "set-aside").glob(f"*-trial-{broken.name}"))
        assert len(kept) == 1 and (kept[0] / "weights.pt").read_bytes() == b"\x00 not weights"
        study = optuna.load_study(study_name="s",
                                  storage=f"sqlite:///{ws}/runs/search/s.db")
        number = int(broken.name.split("-")[0])
        assert "weights.pt" in study.user_attrs[f"broken:{number}"]
        answer = json.loads(again.out)
        assert answer["pareto"] and number not in {r["trial"] for r in answer["pareto"]}
        assert "counts as failed" not in again.err
    finally:
        fuzz.restore(ws, pristine)
