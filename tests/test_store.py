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
    assert not (folder / "rows-00002.parquet").exists()
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
