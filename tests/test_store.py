"""The profile store: Parquet shards + manifest + fsync'ed journal; no row
lost or duplicated across crashes at any step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from hwnas.profiling import store as store_mod
from hwnas.profiling.store import ProfileStore

from .helpers import garbage, stored


def row(i: int, status: str = "ok", date: str | None = None) -> dict:
    return {"key": f"a{i:04d}:onnx", "arch_id": f"a{i:04d}", "format": "onnx",
            "status": status, "p50_ms": float(i), "n": 50, "graph": "chunk",
            "encoder": "conformer", "arch": {"encoder": "conformer"}, "flags": [],
            "date": date or f"2026-01-01T00:00:{i % 60:02d}.000+00:00"}


def test_append_compact_read(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "COMPACT_EVERY", 3)
    s = ProfileStore(tmp_path / "cpu", "cpu", create=True)
    for i in range(7):
        s.append(row(i))
    assert len(list((tmp_path / "cpu").glob("rows-*.parquet"))) == 2
    s.compact()
    s2 = ProfileStore(tmp_path / "cpu", "cpu", writable=True)
    rows = s2.rows()
    assert len(rows) == 7 == s2.manifest["rows"]
    assert rows[3]["p50_ms"] == 3.0 and rows[3]["arch"] == {"encoder": "conformer"}
    with pytest.raises(ValueError, match="already stored"):
        s2.append(row(3))
    with pytest.raises(ValueError, match="unknown profile column"):
        s2.append({**row(99), "bogus": 1})


def test_missing_profile_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no profile for device"):
        ProfileStore(tmp_path / "nope", "nope")


def test_failed_rows_can_be_superseded(tmp_path):
    s = ProfileStore(tmp_path / "d", "d", create=True)
    s.append(row(1, "failed"))
    with pytest.raises(ValueError):
        s.append(row(1, "ok", date="2026-01-02T00:00:00.000+00:00"))
    s.append(row(1, "ok", date="2026-01-02T00:00:00.000+00:00"), replace_failed=True)
    s.compact()
    rows = ProfileStore(tmp_path / "d", "d").rows()
    assert [r["status"] for r in rows] == ["ok"]


def test_recovery_from_each_interrupted_step(tmp_path):
    folder = tmp_path / "d"
    s = ProfileStore(folder, "d", create=True)
    for i in range(4):
        s.append(row(i))
    # step 2 interrupted: a shard written but not listed in the manifest
    s.compact()
    manifest = json.loads((folder / "manifest.json").read_text())
    for i in range(4, 6):
        s.append(row(i))
    journal = (folder / "journal.jsonl").read_text()
    s.compact()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "journal.jsonl").write_text(journal)
    reader = ProfileStore(folder, "d")   # a reader sees the rows and changes nothing
    assert len(reader.rows()) == 6 and (folder / "rows-00002.parquet").exists()
    with pytest.raises(ValueError, match="read-only"):
        reader.append(row(50))
    r = ProfileStore(folder, "d", writable=True)
    assert sorted(x["arch_id"] for x in r.rows()) == [f"a{i:04d}" for i in range(6)]
    # the unlisted shard is adopted, never deleted; its journal copies are dropped
    assert (folder / "rows-00002.parquet").exists() and len(r._journal) == 0
    assert any("adopted 1 shard(s) (2 rows: rows-00002.parquet)" in n for n in r.notes)
    # step 3 interrupted: listed in a shard and still in the journal
    r.compact()
    (folder / "journal.jsonl").write_text(journal)
    r = ProfileStore(folder, "d", writable=True)
    assert len(r.rows()) == 6
    # a line cut mid-write by kill -9
    with open(folder / "journal.jsonl", "a") as f:
        f.write('{"key": "a0099:onnx", "arch')
    assert len(ProfileStore(folder, "d").rows()) == 6


CHILD = r"""
import sys
from pathlib import Path
from hwnas.profiling.store import ProfileStore
import hwnas.profiling.store as m
m.COMPACT_EVERY = 3
s = ProfileStore(Path(sys.argv[1]), "d", create=True)
for i in range(int(sys.argv[2]), 1000):
    k = f"a{i:04d}:onnx"
    if k in s.keys():
        continue
    s.append({"key": k, "arch_id": f"a{i:04d}", "format": "onnx", "status": "ok",
              "date": f"2026-01-01T00:00:00.{i:03d}+00:00"})
    print(i, flush=True)
"""


@pytest.mark.slow
def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path):
    folder = tmp_path / "d"
    acked: set[str] = set()
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(folder), "0"],
                                stdout=subprocess.PIPE, text=True)
        for _ in range(7 + attempt * 3):
            line = proc.stdout.readline()
            acked.add(f"a{int(line):04d}:onnx")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        rows = ProfileStore(folder, "d").rows()
        keys = [r["key"] for r in rows]
        assert len(keys) == len(set(keys)), "a row was duplicated"
        assert acked <= set(keys), "an acknowledged row was lost"


# -- corrupted state: every measured row stays readable or is set aside; nothing deleted

def _filled(folder, n_shards=2, journal_rows=2):
    s = ProfileStore(folder, "d", create=True)
    i = 0
    for _ in range(n_shards):
        for _ in range(3):
            s.append(row(i))
            i += 1
        s.compact()
    for _ in range(journal_rows):
        s.append(row(i))
        i += 1
    s.set_meta("reference", {"nominal_ms": 5.0})
    return i


CORRUPTIONS = {
    "manifest missing": lambda f: (f / "manifest.json").unlink(),
    "manifest empty": lambda f: (f / "manifest.json").write_text(""),
    "manifest garbage": lambda f: garbage(f / "manifest.json"),
    "manifest truncated": lambda f: (f / "manifest.json").write_text(
        (f / "manifest.json").read_text()[:40]),
    "manifest is a list": lambda f: (f / "manifest.json").write_text("[1, 2]"),
    "manifest lists no shards": lambda f: (f / "manifest.json").write_text(json.dumps(
        {**json.loads((f / "manifest.json").read_text()), "shards": []})),
    "manifest shards wrong type": lambda f: (f / "manifest.json").write_text(json.dumps(
        {**json.loads((f / "manifest.json").read_text()), "shards": "rows-00001.parquet"})),
    "manifest deeply nested": lambda f: (f / "manifest.json").write_text(
        "[" * 100000 + "]" * 100000),
    "listed shard missing": lambda f: (f / "rows-00001.parquet").rename(
        f / "elsewhere.bin"),
    "shard truncated": lambda f: (f / "rows-00002.parquet").write_bytes(
        (f / "rows-00002.parquet").read_bytes()[:50]),
    "shard garbage": lambda f: garbage(f / "rows-00002.parquet"),
    "unknown shard garbage": lambda f: garbage(f / "rows-00007.parquet"),
    "cut temp shard": lambda f: (f / "rows-00003.parquet.tmp").write_bytes(b"PAR1\x00"),
    "journal garbage line": lambda f: open(f / "journal.jsonl", "a").write("garbage\n"),
    "journal wrong type line": lambda f: open(f / "journal.jsonl", "a").write("[1, 2]\n"),
    "journal binary": lambda f: open(f / "journal.jsonl", "ab").write(b"\xff\xfe\x00\n"),
    "journal empty": lambda f: (f / "journal.jsonl").write_text(""),
    "extra unknown files": lambda f: ((f / "notes.txt").write_text("mine"),
                                      (f / "sub").mkdir(), (f / "sub" / "x").write_text("y")),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupted_state_loses_nothing(tmp_path, case):
    folder = tmp_path / "d"
    n = _filled(folder)
    CORRUPTIONS[case](folder)
    before = stored(folder)
    readable = {p.name for p in folder.glob("rows-*.parquet")
                if store_mod.ProfileStore._readable_rows(None, p) is not None}
    # a reader changes nothing on disk
    ProfileStore(folder, "d")
    assert stored(folder) == before
    w = ProfileStore(folder, "d", writable=True)
    w.append(row(100))
    w.compact()
    after = stored(folder)
    # nothing deleted: every earlier file's bytes are still there (moved, or appended to),
    # except the journal, whose rows were written to a shard
    for name, data in before.items():
        bad_manifest = case.startswith("manifest") and case != "manifest missing" \
            and case != "manifest lists no shards"
        if name == "manifest.json" and not bad_manifest:
            continue   # a good manifest is rewritten in place
        if name == "journal.jsonl" and not case.startswith("journal"):
            continue   # its rows went into a shard
        if name == "journal.jsonl" and case == "journal empty":
            continue
        assert any(v.startswith(data) for v in after.values()), f"{name} was deleted"
    keys = {r["key"] for r in ProfileStore(folder, "d").rows()}
    # rows the corruption itself destroyed (a shard's 3, the emptied journal's 2)
    lost_with_shard = {"listed shard missing": 3, "shard truncated": 3, "shard garbage": 3,
                       "journal empty": 2}
    assert len(keys) == n + 1 - lost_with_shard.get(case, 0), sorted(keys)
    assert all(ProfileStore(folder, "d")._readable_rows(folder / s) is not None
               for s in readable)
    if case not in ("extra unknown files", "journal empty"):
        assert w.notes, "recovery said nothing"
    assert ProfileStore(folder, "d").manifest.get("reference", {}).get("nominal_ms") \
        in (5.0, None) or case.startswith("manifest")


def test_rebuilt_manifest_recovers_the_reference_scale(tmp_path):
    folder = tmp_path / "d"
    s = ProfileStore(folder, "d", create=True)
    for i in range(4):
        s.append({**row(i), "rel_p50": 0.1 * (i + 1), "norm_p50_ms": 0.5 * (i + 1)})
    s.set_meta("reference", {"nominal_ms": 5.0})
    s.compact()
    (folder / "manifest.json").unlink()
    w = ProfileStore(folder, "d", create=True)
    assert w.manifest["reference"]["nominal_ms"] == pytest.approx(5.0)
    assert len(w.rows()) == 4


def test_profile_show_names_the_profile_it_shows(tmp_path):
    from tests.test_cli import hwnas


    folder = tmp_path / "profiles" / "cpu"
    _filled(folder)
    (folder / "manifest.json").unlink()
    out = hwnas("profile", "show", "--device", "cpu", "--workspace", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["rows"] == 8 and not got["shipped"] and got["folder"] == str(folder)
    assert "manifest.json is missing: rebuilt from 2 shard(s) (6 rows" in out.stderr


def test_a_shard_damaged_inside_is_one_line_naming_it(tmp_path):
    """A byte flipped in a data page, not the footer: the manifest still lists
    the shard and its footer reads, but its rows do not. Reading says which
    file, in one line, and leaves it where it is."""
    s = ProfileStore(tmp_path / "cpu", "cpu", create=True)
    for i in range(40):
        s.append(row(i))
    s.compact()
    shard = sorted((tmp_path / "cpu").glob("rows-*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    for k in range(8, 200):       # the first column chunk's page header and values
        data[k] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError) as got:
        ProfileStore(tmp_path / "cpu", "cpu").rows()
    assert "damaged Parquet shard" in str(got.value) and shard.name in str(got.value)
    assert "\n" not in str(got.value) and shard.is_file()
