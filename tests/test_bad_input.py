"""Bad input and corrupted state, as a careless or hostile user gives them: each
case exits non-zero with one ``hwnas: error:`` line, no traceback, and leaves
the workspace as it was (nothing deleted or changed that the command was not
meant to write). Run in-process (fast); a traceback fails the test as an
exception."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli.main import main
from hwnas.asr import default_space, preset

ARCH = preset("conformer_xs").to_dict()
ONE = ('[choices]\nencoder=["lstm"]\nnum_layers=[1]\nd_model=[96]\ndecoder=["ctc"]\n'
       'n_filters=[40]\nfrontend=["logmel"]\nsubsampling=["conv2d4"]\nstreaming=[true]\n'
       'chunk_ms=[480]\nlookahead=[0]\n')


def _arch(**over):
    return json.dumps({k: v for k, v in {**ARCH, **over}.items() if k != "id"})


def _torch_file(path: Path, obj) -> None:
    import torch

    torch.save(obj, path)


def _foreign_sqlite(path: Path) -> None:
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'ada')")
    con.commit()
    con.close()


def _norm(path: Path) -> None:
    import numpy as np

    np.savez(path, mean=np.zeros(80, dtype=np.float32), std=np.ones(80, dtype=np.float32))


def _run_arch():
    from hwnas.asr import ArchConfig
    from hwnas.data.tokens import CharTokenizer

    tok = CharTokenizer.for_languages(["en"])
    return ArchConfig.from_dict(ARCH).replace(vocab_size=tok.vocab_size), tok


def _weights(path: Path) -> None:
    from hwnas.asr.models import build

    _torch_file(path, build(_run_arch()[0]).state_dict())


# a complete run folder as `hwnas train` leaves it, less what each case breaks
RUN = {"run/result.json": lambda p: p.write_text(json.dumps(
           {"arch": _run_arch()[0].to_dict(), "corpus": {"kind": "builtin"}})),
       "run/weights.pt": _weights,
       "run/tokenizer.json": lambda p: p.write_text(_run_arch()[1].to_json()),
       "run/feature_norm.npz": _norm}


def test_the_run_folder_the_cases_break_is_complete(tmp_path):
    from hwnas.asr.train import load_run

    _write(tmp_path, RUN)
    model, arch, tok, norm = load_run(tmp_path / "run")
    assert arch.to_dict() == _run_arch()[0].to_dict() and norm[0].shape == (80,)


# name -> (files to write: {relative path: text | bytes | callable(path)}, argv, needle)
CASES: dict[str, tuple[dict, list[str], str]] = {
    # --- the space -------------------------------------------------------------------------
    "space repeated value": ({"s.toml": "[choices]\nd_model = [128, 128]\n"},
                             ["space", "count", "--space", "s.toml"], "repeat 128"),
    "space value of the wrong shape": ({"s.toml": "[choices]\nd_model = [[1, 2]]\n"},
                                       ["space", "count", "--space", "s.toml"],
                                       "must be an integer"),
    "space table instead of list": ({"s.toml": "[choices]\nd_model = {a = 1}\n"},
                                    ["space", "count", "--space", "s.toml"], "non-empty list"),
    "space choices not a table": ({"s.toml": "choices = 5\n"},
                                  ["space", "count", "--space", "s.toml"], "table of lists"),
    "space not TOML": ({"s.toml": "[choices\n"}, ["space", "show", "--space", "s.toml"],
                       "not valid TOML"),
    "space binary": ({"s.toml": b"\xff\xfe\x00garbage"}, ["space", "count", "--space", "s.toml"],
                     "s.toml"),
    "space missing": ({}, ["space", "count", "--space", "nope.toml"], "not found"),
    "space unknown decision": ({"s.toml": "[choices]\ncolour = [1]\n"},
                               ["space", "count", "--space", "s.toml"], "unknown decision"),
    "space value out of bounds": ({"s.toml": "[choices]\nd_model = [1000000000]\n"},
                                  ["space", "count", "--space", "s.toml"], "<= 4096"),
    "sample more than exist": ({"one.toml": ONE},
                               ["space", "sample", "--n", "2", "--space", "one.toml"],
                               "the space holds 1"),
    # --- architectures ---------------------------------------------------------------------
    "arch d_model 1e9": ({"a.json": _arch(d_model=10 ** 9)},
                         ["predict", "--device", "cpu", "a.json"], "<= 4096"),
    "arch too large to build, stats": ({"a.json": _arch(d_model=4096, num_layers=64,
                                                         vocab_size=100_000)},
                                       ["stats", "a.json"], "GiB to build and use"),
    "arch too large to build, export": ({"a.json": _arch(d_model=4096, num_layers=64,
                                                          vocab_size=100_000)},
                                        ["export", "a.json", "--format", "onnx", "--out", "o"],
                                        "GiB to build and use"),
    "arch num_layers 1e6": ({"a.json": _arch(num_layers=10 ** 6)},
                            ["stats", "a.json"], "<= 64"),
    "arch vocabulary 1e12": ({"a.json": _arch(vocab_size=10 ** 12)},
                             ["predict", "--device", "cpu", "a.json"], "vocab_size"),
    "arch deeply nested": ({"a.json": "[" * 100000 + "]" * 100000},
                           ["predict", "--device", "cpu", "a.json"], "nested too deeply"),
    "arch garbage": ({"a.json": b"\x00\x01\x02"}, ["stats", "a.json"], "a.json"),
    "arch empty": ({"a.json": ""}, ["predict", "--device", "cpu", "a.json"], "a.json"),
    "arch list": ({"a.json": "[1, 2]"}, ["stats", "a.json"], "JSON object"),
    "arch missing": ({}, ["predict", "--device", "cpu", "nope.json"], "not found"),
    # --- weights ---------------------------------------------------------------------------
    "weights random bytes": ({"w.pt": bytes(range(256)) * 3},
                             ["export", "--preset", "conformer_xs", "--format", "onnx", "--out",
                              "o", "--weights", "w.pt"], "not a PyTorch weights file"),
    "weights text": ({"w.pt": "hello\n"}, ["export", "--preset", "conformer_xs", "--format",
                                           "onnx", "--out", "o", "--weights", "w.pt"],
                     "not a PyTorch weights file"),
    "weights empty": ({"w.pt": b""}, ["export", "--preset", "conformer_xs", "--format", "onnx",
                                      "--out", "o", "--weights", "w.pt"],
                      "not a PyTorch weights file"),
    "weights a list": ({"w.pt": lambda p: _torch_file(p, [1, 2, 3])},
                       ["export", "--preset", "conformer_xs", "--format", "onnx", "--out", "o",
                        "--weights", "w.pt"], "not a state dict"),
    "weights another model": ({"w.pt": lambda p: _torch_file(p, {"x": __import__("torch")
                                                                 .zeros(3)})},
                              ["export", "--preset", "conformer_xs", "--format", "onnx",
                               "--out", "o", "--weights", "w.pt"], "do not fit"),
    "weights missing": ({}, ["export", "--preset", "conformer_xs", "--format", "onnx", "--out",
                             "o", "--weights", "nope.pt"], "nope.pt"),
    "export unknown format": ({}, ["export", "--preset", "conformer_xs", "--format", "png",
                                   "--out", "o"], "png"),
    # --- profile and devices ---------------------------------------------------------------
    "profile min-runs 1": ({}, ["profile", "--device", "cpu", "--n", "1", "--min-runs", "1"],
                           "min_runs must be >= 2"),
    "profile min-seconds negative": ({}, ["profile", "--device", "cpu", "--n", "1",
                                          "--min-seconds", "-1"],
                                     "--min-seconds: must be a finite number >= 0"),
    "profile warmup negative": ({}, ["profile", "--device", "cpu", "--n", "1", "--warmup-runs",
                                     "-2"], "--warmup-runs: must be an integer >= 0"),
    "profile n 0": ({}, ["profile", "--device", "cpu", "--n", "0"], "--n: must be"),
    "profile repeats 0": ({}, ["profile", "--device", "cpu", "--n", "1", "--repeats", "0"],
                          "--repeats"),
    "profile unknown device": ({}, ["profile", "--device", "toaster", "--n", "1"],
                               "no device 'toaster'"),
    "profile unknown format": ({}, ["profile", "--device", "cpu", "--n", "1", "--format",
                                    "edgetpu"], "not edgetpu"),
    "device file plan min_runs 1": ({"devices/bad.toml": 'adapter = "cpu"\n[plan]\nmin_runs = 1\n'},
                                    ["profile", "--device", "bad", "--n", "1"],
                                    "min_runs must be >= 2"),
    "device file plan wrong type": ({"devices/bad.toml": 'adapter = "cpu"\n[plan]\n'
                                                         'max_ci = "tight"\n'},
                                    ["profile", "--device", "bad", "--n", "1"],
                                    "max_ci must be a float"),
    "device file bad reference": ({"devices/bad.toml": 'adapter = "cpu"\n[options]\n'
                                                       'reference = "nope"\n'},
                                  ["profile", "--device", "bad", "--n", "1"],
                                  "reference must be a preset"),
    "device file garbage": ({"devices/bad.toml": b"\xff\x00[[[["},
                            ["profile", "--device", "bad", "--n", "1"], "bad.toml"),
    "device file unknown adapter": ({"devices/bad.toml": 'adapter = "toaster"\n'},
                                    ["profile", "--device", "bad", "--n", "1"],
                                    "adapter must be one of"),
    # --- search ----------------------------------------------------------------------------
    "search max-latency 0": ({}, ["search", "--target", "cpu", "--max-latency", "0"],
                             "--max-latency: must be a finite number > 0"),
    "search max-latency negative": ({}, ["search", "--target", "cpu", "--max-latency", "-3"],
                                    "--max-latency: must be a finite number > 0"),
    "search max-params 0": ({}, ["search", "--target", "cpu", "--max-params", "0"],
                            "--max-params: must be an integer >= 1"),
    "search max-size 0": ({}, ["search", "--target", "cpu", "--max-size", "0"],
                          "--max-size: must be a finite number > 0"),
    "search unknown format": ({}, ["search", "--target", "cpu", "--format", "png"],
                              "unknown --format"),
    "search both budgets": ({}, ["search", "--target", "cpu", "--cer-budget", "1m",
                                 "--cer-steps", "10"], "not both"),
    "search study as a relative path": ({}, ["search", "--target", "cpu", "--study", "../../x"],
                                        "must be a name"),
    "search study as an absolute path": ({}, ["search", "--target", "cpu", "--study", "/tmp/x"],
                                         "must be a name"),
    "search storage not a URL": ({}, ["search", "--target", "cpu", "--storage", "notaurl://"],
                                 "not a database URL"),
    "search storage in a missing folder": ({}, ["search", "--target", "cpu", "--storage",
                                                "sqlite:////nonexistent/dir/x.db"],
                                           "cannot open it"),
    "search garbage study database": ({"runs/search/g.db": bytes(range(256)) * 20},
                                      ["search", "--target", "cpu", "--study", "g"],
                                      "file is not a database"),
    "search truncated study database": ({"runs/search/t.db": b"SQLite format 3\x00\x10"},
                                        ["search", "--target", "cpu", "--study", "t"],
                                        "cannot open it"),
    "search foreign SQLite database": ({"theirs.db": _foreign_sqlite},
                                       ["search", "--target", "cpu", "--storage",
                                        "sqlite:///theirs.db"], "database of something else"),
    "report foreign SQLite database": ({"theirs.db": _foreign_sqlite},
                                       ["report", "x", "--storage", "sqlite:///theirs.db"],
                                       "database of something else"),
    "score garbage result.json": ({**RUN, "run/result.json": b"\x00\xff garbage"},
                                  ["score", "run"], "(result.json:"),
    "score result.json of the wrong type": ({**RUN, "run/result.json": "[1, 2]"},
                                            ["score", "run"], "(result.json:"),
    "score garbage weights": ({**RUN, "run/weights.pt": b"\x00\xff garbage"},
                              ["score", "run"], "(weights.pt:"),
    "score weights of another model": ({**RUN, "run/weights.pt": lambda p: _torch_file(
        p, {"encoder.w": __import__("torch").zeros(2)})}, ["score", "run"], "(weights.pt:"),
    "score missing feature statistics": ({k: v for k, v in RUN.items()
                                          if k != "run/feature_norm.npz"},
                                         ["score", "run"], "(feature_norm.npz:"),
    "search trials 0": ({}, ["search", "--target", "cpu", "--trials", "0", "--no-verify"],
                        "--trials: must be an integer >= 1"),
    "search bad objective": ({}, ["search", "--target", "cpu", "--objectives", "cer,speed"],
                             "unknown objective"),
    "search bad budget": ({}, ["search", "--target", "cpu", "--cer-budget", "soon"],
                          "soon"),
    "search bad steps": ({}, ["search", "--target", "cpu", "--cer-steps", "a,b"],
                         "give step counts"),
    "search edge-tpu without hardware": ({}, ["search", "--target", "edge-tpu",
                                              "--max-latency", "100"], "edgetpu_compiler"),
    # --- report ----------------------------------------------------------------------------
    "report no study": ({}, ["report", "nope"], "no study database"),
    "report top 0": ({"runs/search/r.db": b""}, ["report", "r", "--top", "0"], "--top"),
    "report garbage database": ({"runs/search/g.db": bytes(range(256)) * 20},
                                ["report", "g"], "file is not a database"),
    "report bad storage": ({}, ["report", "x", "--storage", "notaurl://"], "not a database URL"),
    # --- training and predictors -----------------------------------------------------------
    "train both steps and budget": ({"a.json": _arch()},
                                    ["train", "a.json", "--steps", "5", "--budget", "1m"],
                                    "not both"),
    "train steps 0": ({"a.json": _arch()}, ["train", "a.json", "--steps", "0"],
                      "--steps: must be an integer >= 1"),
    "predictor rounds 0": ({}, ["predictor", "train", "--device", "cpu", "--rounds", "0"],
                           "--rounds: must be an integer >= 1"),
    "predictor eta nan": ({}, ["predictor", "train", "--device", "cpu", "--eta", "nan"],
                          "--eta: must be a finite number > 0"),
    "predictor card a list": ({"predictors/cpu/card.json": "[]", "predictors/cpu/model.json": "{}"},
                              ["predict", "--device", "cpu", "--preset", "conformer_xs"],
                              "not a predictor card"),
    "predictor card a string": ({"predictors/cpu/card.json": '"x"',
                                 "predictors/cpu/model.json": "{}"},
                                ["predictor", "show", "--device", "cpu"], "not a predictor card"),
    "predictor card wrong type": ({"predictors/cpu/card.json": json.dumps(
        {"schema_version": "1", "features": 3, "objective": "log"}),
        "predictors/cpu/model.json": "{}"},
        ["predictor", "show", "--device", "cpu"], "'schema_version' should be an integer"),
    # --- options out of range ----------------------------------------------------------------
    "supernet family empty": ({}, ["supernet", "train", "--family", "", "--budget", "1s"],
                              "--family: name one or more"),
    "supernet score utts -1": ({}, ["supernet", "score", "--preset", "conformer_xs", "--utts",
                                    "-1"], "--utts: must be an integer >= 1"),
    "tts data workers 0": ({}, ["tts", "data", "--workers", "0"],
                           "--workers: must be an integer >= 1"),
    "space sample seed 1e20": ({}, ["space", "sample", "--seed", "100000000000000000000"],
                               "--seed: must be an integer from 0"),
    "search tts with --streaming": ({}, ["search", "--target", "cpu", "--task", "tts",
                                         "--streaming"], "--streaming: --task tts does not use"),
    "search asr with --tts-size": ({}, ["search", "--target", "cpu", "--tts-size", "tiny"],
                                   "only --task tts uses it"),
    "train on a GPU that is not here": ({}, ["train", "--preset", "conformer_xs", "--steps",
                                             "1", "--train-device", "cuda"],
                                        "training device cuda: no CUDA device here"),
    "train on a device that is no device": ({}, ["train", "--preset", "conformer_xs",
                                                 "--steps", "1", "--train-device", "tpu"],
                                            "give auto, cpu, cuda or cuda:N"),
    "train fp16 on the CPU": ({}, ["train", "--preset", "conformer_xs", "--steps", "1",
                                   "--train-device", "cpu", "--precision", "fp16"],
                              "fp16 training needs a CUDA device"),
    "search on a GPU that is not here": ({}, ["search", "--target", "cpu", "--train-device",
                                              "cuda:1"], "training device cuda:1: no CUDA"),
    "tts train on a GPU that is not here": ({}, ["tts", "train", "--preset", "fastspeech2",
                                                 "--train-device", "cuda"],
                                            "training device cuda: no CUDA device here"),
    "tts train fp16 on the CPU": ({}, ["tts", "train", "--preset", "fastspeech2", "--train-device",
                                       "cpu", "--precision", "fp16"],
                                  "fp16 training needs a CUDA device"),
    "supernet train on a GPU that is not here": ({}, ["supernet", "train", "--budget", "1s",
                                                      "--train-device", "cuda"],
                                                 "training device cuda: no CUDA device here"),
    "search --streaming, space without": ({"s.toml": "[choices]\nstreaming = [false]\n"},
                                          ["search", "--target", "cpu", "--streaming",
                                           "--space", "s.toml"], "no streaming architectures"),
    # --- device files ----------------------------------------------------------------------
    "device threads 1e23": ({"devices/big.toml": 'adapter = "cpu"\n[options]\n'
                                                 'threads = 99999999999999999999999\n'},
                            ["profile", "--device", "big", "--n", "1"],
                            "option threads must be from 1 to 1024"),
    "device plan an integer": ({"devices/p.toml": 'adapter = "cpu"\nplan = 7\n'},
                               ["profile", "--device", "p", "--n", "1"],
                               "[plan] must be a table"),
    "device adb_server injected": ({"devices/ph.toml": 'adapter = "android"\n[options]\n'
                                                       'adb_server = "5037; touch x"\n'},
                                   ["profile", "--device", "ph", "--n", "1"],
                                   "adb_server must be HOST:PORT"),
    # --- study storage ---------------------------------------------------------------------
    # --- a FIFO where a file is expected: one line, never a wait ---------------------------
    "arch a FIFO": ({"a.json": lambda p: os.mkfifo(p)}, ["stats", "a.json"],
                    "not a regular file"),
    "space a FIFO": ({"s.toml": lambda p: os.mkfifo(p)}, ["space", "count", "--space", "s.toml"],
                     "a FIFO, not a regular file"),
    "device file a FIFO": ({"devices/f.toml": lambda p: os.mkfifo(p)},
                           ["profile", "--device", "f", "--n", "1"], "not a regular file"),
    "archs a FIFO": ({"a.jsonl": lambda p: os.mkfifo(p)},
                     ["predict", "--device", "cpu", "a.jsonl"], "not a regular file"),
    "journal of a number": ({"runs/search/j.log": "42\n"},
                            ["report", "s", "--storage", "journal:runs/search/j.log"],
                            "not an Optuna journal"),
    "journal with a foreign line": ({"runs/search/j.log": json.dumps(
        {"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]})
        + '\n{"foo": 1}\n'}, ["report", "s", "--storage", "journal:runs/search/j.log"],
        "foreign line 2"),
    "journal in a missing folder": ({}, ["report", "s", "--storage", "journal:no/dir/x.log"],
                                    "does not exist"),
    "predictor adapt to itself": ({}, ["predictor", "adapt", "--from", "cpu", "--device",
                                       "cpu"], "same device"),
    "predictor of nothing": ({}, ["predictor", "show", "--device", "toaster"],
                             "no latency predictor"),
}


def _write(ws: Path, files: dict) -> None:
    for rel, content in files.items():
        p = ws / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(p)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)


def _snapshot(ws: Path) -> dict[str, bytes]:
    return {p.relative_to(ws).as_posix(): p.read_bytes() for p in ws.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_changes_nothing(case, tmp_path, monkeypatch, capsys):
    files, argv, needle = CASES[case]
    ws = tmp_path / "ws"
    ws.mkdir()
    _write(ws, files)
    monkeypatch.chdir(ws)   # relative paths in argv are the workspace's files
    before = _snapshot(ws)
    try:
        code = main(argv + (["--workspace", str(ws)]
                            if argv[0] not in ("space", "stats", "export") else []))
    except SystemExit as e:   # argparse's usage errors keep their standard form
        code = e.code
        err = capsys.readouterr().err
        assert code == 2 and "usage:" in err and needle in err, err
    else:
        err = capsys.readouterr().err
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert code != 0
        assert len(lines) == 1 and lines[0].startswith("hwnas: error:"), err
        assert needle in lines[0], lines[0]
    assert "Traceback" not in err
    after = _snapshot(ws)
    assert {k: v for k, v in after.items() if k in before} == before, "an input was changed"
    new = sorted(set(after) - set(before))
    assert not [n for n in new if not n.startswith(("cache/",))], f"wrote {new}"


def test_the_cases_cover_enough():
    assert len(CASES) >= 60


def test_sampling_a_one_architecture_space_never_loops():
    one = default_space().with_choices({
        "encoder": ["lstm"], "num_layers": [1], "d_model": [96], "decoder": ["ctc"],
        "n_filters": [40], "frontend": ["logmel"], "subsampling": ["conv2d4"],
        "streaming": [True], "chunk_ms": [480], "lookahead": [0]})
    assert one.count() == 1 and len(one.sample_distinct(1, 0)) == 1
    with pytest.raises(ValueError, match="holds 1"):
        one.sample_distinct(2, 0)
