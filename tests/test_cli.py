from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from hwnas.asr import ArchConfig, default_space, preset

ROOT = Path(__file__).resolve().parents[1]


def hwnas(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hwnas", *args], capture_output=True,
                          text=True, input=stdin, timeout=300, cwd=ROOT)


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwnas: error:"), p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


def test_version_and_help():
    import hwnas as pkg

    assert hwnas("--version").stdout.strip() == f"hwnas {pkg.__version__}"
    out = hwnas("--help").stdout
    for cmd in ("space", "stats", "export"):
        assert cmd in out
    assert "--format" in hwnas("export", "--help").stdout


def test_space_commands_json():
    assert json.loads(hwnas("space", "count", "--json").stdout)["count"] == default_space().count()
    shown = json.loads(hwnas("space", "show", "--json").stdout)
    assert [d["name"] for d in shown["decisions"]][:4] == ["frontend", "n_filters",
                                                          "subsampling", "encoder"]
    presets = [json.loads(x) for x in hwnas("space", "presets", "--json").stdout.splitlines()]
    assert {p["name"] for p in presets} >= {"conformer_s", "lstm_rnnt"}
    assert "conformer_s" in hwnas("space", "presets").stdout


def test_sample_200_is_valid_distinct_and_identical_across_runs():
    a = hwnas("space", "sample", "--n", "200", "--seed", "7", "--json")
    b = hwnas("space", "sample", "--n", "200", "--seed", "7", "--json")
    assert a.returncode == 0 and a.stdout == b.stdout
    archs = [ArchConfig.from_json(line) for line in a.stdout.splitlines()]
    assert len(archs) == 200 and len({x.id for x in archs}) == 200
    assert [json.loads(line)["id"] for line in a.stdout.splitlines()] == [x.id for x in archs]
    assert {x.encoder for x in archs} == {"conformer", "transformer", "lstm", "blstm",
                                          "cnn_lstm", "contextnet"}
    assert {x.decoder for x in archs} == {"ctc", "rnnt", "las", "transformer"}
    assert {x.attention for x in archs} - {None} == {"mhsa", "relpos", "local", "linear"}
    assert {x.frontend for x in archs} == {"logmel", "mfcc", "learnable"}


def test_sample_with_space_file(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[choices]\nencoder = ["lstm"]\n')
    out = hwnas("space", "sample", "--n", "5", "--space", str(f), "--json").stdout
    assert {json.loads(x)["encoder"] for x in out.splitlines()} == {"lstm"}
    one_line_error(hwnas("space", "count", "--space", str(tmp_path / "nope.toml")))


def test_stats_and_export_onnx(tmp_path):
    arch = tmp_path / "a.json"
    arch.write_text(preset("conformer_xs").to_json())
    st = json.loads(hwnas("stats", str(arch), "--json").stdout)
    assert st["params"] > 1e6 and st["flops"] > 1e8
    p = hwnas("export", str(arch), "--format", "onnx", "--out", str(tmp_path / "o"), "--json")
    assert p.returncode == 0, p.stderr
    art = json.loads(p.stdout)
    assert Path(art["path"]).is_file() and art["parity"]["max_abs_diff"] <= 1e-4
    p = hwnas("export", "--preset", "lstm_rnnt", "--format", "onnx", "--out",
              str(tmp_path / "o"))
    assert p.returncode == 0 and "max |diff|" in p.stdout


@pytest.mark.parametrize("content, needle", [
    ("{not json", "invalid JSON"),
    ('{"encoder": "lstm"}', "missing field"),
    (json.dumps({**preset("conformer_xs").to_dict(), "colour": 1}), "unknown field"),
    (json.dumps({**preset("conformer_xs").to_dict(), "encoder": "lstm"}),
     "'attention' must be null"),
    (json.dumps({**preset("lstm_rnnt").to_dict(), "encoder": "blstm"}), "bidirectional"),
    ("[1, 2]", "must be a JSON object"),
])
def test_bad_architecture_is_one_line(tmp_path, content, needle):
    f = tmp_path / "a.json"
    f.write_text(content)
    line = one_line_error(hwnas("export", str(f), "--format", "onnx", "--out", str(tmp_path)))
    assert needle in line


def test_other_bad_input_is_one_line(tmp_path):
    one_line_error(hwnas("export", str(tmp_path / "missing.json"), "--format", "onnx",
                         "--out", str(tmp_path)))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line_error(hwnas("export", "--preset", "conformer_xs", "--format", "onnx",
                                "--out", str(blocker)))
    assert "not a folder" in line
    line = one_line_error(hwnas("export", "--preset", "nope", "--format", "onnx",
                                "--out", str(tmp_path)))
    assert "unknown preset" in line
    two = preset("conformer_xs").to_json() + "\n" + preset("lstm_rnnt").to_json() + "\n"
    f = tmp_path / "two.jsonl"
    f.write_text(two)
    assert "JSON lines" in one_line_error(hwnas("export", str(f), "--format", "onnx",
                                                "--out", str(tmp_path)))
    p = hwnas("export", "--preset", "conformer_xs", "--format", "pdf", "--out", str(tmp_path))
    assert p.returncode == 2 and "Traceback" not in p.stderr


def _fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(path)
    return path / "bin"


@pytest.mark.slow
@pytest.mark.parametrize("editable", [True, False], ids=["editable", "regular"])
def test_install_gives_working_cli(tmp_path, editable):
    """`hwnas --help` needs only the package itself (heavy imports are lazy),
    so a bare virtual environment proves the packaging: console script,
    hwnas.cli mapped from cli/, shipped data, and no top-level `cli` module."""
    import shutil

    src = tmp_path / "src"
    anywhere = shutil.ignore_patterns("*.egg-info", "__pycache__")
    top = {".venv", "runs", ".git", "build", "data", "cache"}  # work folders at the root only

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = set(anywhere(folder, names))
        return skip | (top & set(names)) if Path(folder) == ROOT else skip

    shutil.copytree(ROOT, src, ignore=ignore)
    bin_dir = _fresh_venv(tmp_path / "venv")
    target = ["-e", str(src)] if editable else [str(src)]
    subprocess.run([str(bin_dir / "pip"), "install", "-q", "--no-deps",
                    *target], check=True, capture_output=True, timeout=600, cwd=tmp_path)
    p = subprocess.run([str(bin_dir / "hwnas"), "--help"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "space" in p.stdout
    code = ("import importlib.util, hwnas.paths as p; "
            "assert importlib.util.find_spec('cli') is None; "
            "print(p.shipped_dir('devices'))")
    p = subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    shipped = Path(p.stdout.strip())
    assert (shipped / "README.md").is_file()
    if not editable:
        assert "site-packages" in str(shipped)


def test_workspace_resolution(tmp_path, monkeypatch):
    from hwnas import paths

    monkeypatch.setenv("HWNAS_WORKSPACE", str(tmp_path))
    assert paths.workspace() == tmp_path
    assert paths.workspace(tmp_path / "w") == tmp_path / "w"
    with pytest.raises(ValueError, match="inside the hwnas package"):
        paths.workspace(Path(paths.__file__).parent / "space")
    assert (paths.shipped_dir("devices") / "README.md").is_file()


def test_a_closed_stdout_ends_quietly():
    """`hwnas space sample --n 2000 --json | head -1` (far more than a pipe
    holds): the reader leaves, hwnas ends with 0 and says nothing."""
    p = subprocess.Popen([sys.executable, "-m", "hwnas", "space", "sample", "--n", "2000",
                          "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert p.stdout.readline().strip()
    p.stdout.close()
    assert p.wait(timeout=120) == 0
    assert p.stderr.read() == b""


def test_a_forked_worker_dies_on_sigterm_while_the_command_handles_it():
    """The command turns SIGTERM into a saved snapshot; a process it forks (a
    pool worker) must keep the default, or Pool.terminate waits on it forever."""
    import os
    import signal

    from cli.interrupt import on_sigterm_interrupt

    previous = on_sigterm_interrupt()
    try:
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        pid = os.fork()
        if pid == 0:   # the child: report its disposition, nothing else
            os._exit(0 if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        signal.signal(signal.SIGTERM, previous)
