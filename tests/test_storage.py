"""Study storage: SQLite and journal files survive kill -9, PostgreSQL works,
optuna-dashboard opens it."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hwnas.asr import default_space
from hwnas.search.study import SearchConfig, run_search
from tests.helpers import fake_trainer

ROOT = Path(__file__).resolve().parents[1]
SPACE = default_space().with_choices({"encoder": ["lstm", "conformer"], "decoder": ["ctc"],
                                      "num_layers": [1, 2, 4], "d_model": [96, 144, 192]})


runner = fake_trainer()


def lat(arch):
    return 0.002 * arch.d_model * arch.num_layers


def _cfg(storage, study, trials):
    return SearchConfig(target="cpu", trials=trials, generation=4, rungs=(5.0, 15.0), eta=2,
                        seed=3, storage=storage, study=study, space=SPACE)


SLOW_SEARCH = """
import sys, time
sys.path.insert(0, {root!r})
from tests.test_storage import _cfg, lat, runner
def slow(arch, budget, state):
    time.sleep(0.4)
    return runner(arch, budget, state)
from hwnas.search.study import run_search
run_search(_cfg({storage!r}, "k", 8), lat, slow)
"""


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_kill_9_mid_generation_then_rerun_resumes(tmp_path, kind):
    import optuna

    from hwnas.search.storage import open_storage
    from hwnas.search.study import open_study

    storage = (f"sqlite:///{tmp_path / 'k.db'}" if kind == "sqlite"
               else f"journal:{tmp_path / 'k.log'}")
    open_study(_cfg(storage, "k", 8))  # the schema exists before two processes open it
    proc = subprocess.Popen([sys.executable, "-c",
                             SLOW_SEARCH.format(root=str(ROOT), storage=storage)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)  # until the first generation is told and the second asked
            trials = optuna.load_study(study_name="k", storage=open_storage(storage)).trials
            done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
            asked = [t for t in trials[4:] if "arch_id" in t.user_attrs]
            if len(done) == 4 and len(asked) == 4:  # (not killed halfway through a suggest)
                break
        else:
            pytest.fail(f"the search did not reach its second generation (exit {proc.poll()})")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    left = optuna.load_study(study_name="k", storage=open_storage(storage)).trials
    orphans = [t for t in left if t.state == optuna.trial.TrialState.RUNNING]
    assert len(orphans) == 4
    study = run_search(_cfg(storage, "k", 8), lat, runner)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 8
    assert states.count(optuna.trial.TrialState.FAIL) == 4
    redone = [t.user_attrs["arch_id"] for t in study.trials[8:]]
    assert sorted(redone) == sorted(t.user_attrs["arch_id"] for t in orphans)


def test_a_journal_study_is_reported_and_a_foreign_file_refused(tmp_path, capsys):
    from cli.main import main

    url = f"journal:{tmp_path / 'j' / 'study.log'}"
    with pytest.raises(ValueError, match="does not exist"):   # nothing made above the file
        run_search(_cfg(url, "j", 4), lat, runner)
    (tmp_path / "j").mkdir()
    assert len(run_search(_cfg(url, "j", 4), lat, runner).trials) == 4
    assert main(["report", "j", "--storage", url, "--out", str(tmp_path / "rep"),
                 "--workspace", str(tmp_path), "--json"]) == 0
    capsys.readouterr()
    sqlite = tmp_path / "k.db"
    run_search(_cfg(f"sqlite:///{sqlite}", "k", 2), lat, runner)
    for bad in (f"journal:{sqlite}", f"journal:{tmp_path}"):
        assert main(["report", "k", "--storage", bad, "--workspace", str(tmp_path)]) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and bad in err


def test_study_in_postgresql(tmp_path):
    url = os.environ.get("HWNAS_TEST_POSTGRES")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run this: .ci/run starts PostgreSQL and sets HWNAS_TEST_POSTGRES")
        pytest.skip("no PostgreSQL server: set HWNAS_TEST_POSTGRES=postgresql+psycopg://...")
    import optuna

    name = f"t-{uuid.uuid4().hex[:8]}"
    first = [t.user_attrs["arch_id"] for t in run_search(_cfg(url, name, 6), lat, runner).trials]
    assert len(first) == 6
    again = run_search(_cfg(url, name, 10), lat, runner)  # resumes in the same database
    loaded = optuna.load_study(study_name=name, storage=url)
    assert len(loaded.trials) == len(again.trials) == 10
    assert loaded.user_attrs["target"] == "cpu"
    assert [t.user_attrs["arch_id"] for t in loaded.trials[:6]] == first
    # the report reads it from there too
    from cli.main import main

    assert main(["report", name, "--storage", url, "--out", str(tmp_path / "rep"),
                 "--workspace", str(tmp_path), "--json"]) == 0
    optuna.delete_study(study_name=name, storage=url)


def _get(app, path):
    from wsgiref.util import setup_testing_defaults

    env = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(env)
    status = []
    body = b"".join(app(env, lambda s, h, exc=None: status.append(s)))
    return status[0], body


def test_the_study_opens_in_optuna_dashboard(tmp_path):
    pytest.importorskip("optuna_dashboard")
    from optuna_dashboard import wsgi

    storage = f"sqlite:///{tmp_path / 'd.db'}"
    run_search(_cfg(storage, "dash", 8), lat, runner)
    app = wsgi(storage)
    status, body = _get(app, "/api/studies")
    assert status.startswith("200")
    studies = json.loads(body)["study_summaries"]
    assert [s["study_name"] for s in studies] == ["dash"]
    status, body = _get(app, f"/api/studies/{studies[0]['study_id']}")
    assert status.startswith("200")
    detail = json.loads(body)
    assert len(detail["trials"]) == 8
    assert any(a["key"] == "arch_id" for a in detail["trials"][0]["user_attrs"])
