"""The profile store: ``profiles/<device>/`` holds Parquet shards of rows
(one row per architecture and format) and a small ``manifest.json``.

No row is lost or duplicated, even after kill -9:
  1. each finished row is appended to ``journal.jsonl`` and fsync'ed;
  2. ``compact`` writes the journal's rows as a new shard (temp + rename),
     then the manifest listing it (temp + rename), then empties the journal.
On open, a shard the manifest does not list is an interrupted step 2 and is
removed (its rows are still in the journal); journal rows already in a listed
shard are an interrupted step 3 and are dropped. Rows are keyed by
``arch_id:format``; a failed row may be superseded by a later attempt
(``replace_failed``), and readers see the latest row per key.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from hwnas.paths import write_atomic

SCHEMA_VERSION = 1
COMPACT_EVERY = 25

# column -> Arrow type name; nested values (arch, provenance, ...) are JSON strings
COLUMNS: dict[str, str] = {
    "key": "string", "arch_id": "string", "format": "string", "status": "string",
    "error": "string", "graph": "string",
    "p50_ms": "float64", "p90_ms": "float64", "p99_ms": "float64", "mean_ms": "float64",
    "std_ms": "float64", "min_ms": "float64", "max_ms": "float64", "cv": "float64",
    "n": "int64", "robust_cv": "float64", "drift": "float64", "attempts": "int64",
    "flags": "string", "audio_ms": "float64", "rtf": "float64", "memory_mb": "float64",
    "init_ms": "float64", "first_ms": "float64", "model_bytes": "int64", "params": "int64",
    "flops": "int64", "ref_p50_ms": "float64", "rel_p50": "float64",
    "norm_p50_ms": "float64", "export_s": "float64", "measure_s": "float64", "encoder": "string",
    "decoder": "string", "streaming": "bool", "arch": "string", "provenance": "string",
    "extra": "string", "seed": "int64", "date": "string",
}
JSON_COLUMNS = ("flags", "arch", "provenance", "extra")


def _schema() -> Any:
    import pyarrow as pa

    types = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64(),
             "bool": pa.bool_()}
    return pa.schema([(k, types[t]) for k, t in COLUMNS.items()])


def normalise(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k in COLUMNS:
        v = row.get(k)
        if k in JSON_COLUMNS and v is not None and not isinstance(v, str):
            v = json.dumps(v, sort_keys=True)
        out[k] = v
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown profile column(s): {', '.join(sorted(unknown))}")
    return out


class ProfileStore:
    def __init__(self, folder: Path, device: str, *, create: bool = False,
                 device_file: str | None = None, writable: bool | None = None) -> None:
        """``create`` makes a missing profile; only a writer (``writable``,
        implied by ``create``) cleans up after an interrupted writer -- a reader
        (``hwnas profile show`` while a profile runs) changes nothing."""
        self.folder = Path(folder)
        self.writable = create if writable is None else writable
        self.device = device
        self.manifest_path = self.folder / "manifest.json"
        self.journal_path = self.folder / "journal.jsonl"
        if not self.manifest_path.is_file():
            if not create:
                raise ValueError(f"no profile for device {device!r} in {self.folder}")
            self.folder.mkdir(parents=True, exist_ok=True)
            now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            self.manifest = {"device": device, "schema_version": SCHEMA_VERSION,
                             "columns": COLUMNS, "shards": [], "rows": 0, "created": now,
                             "updated": now, "device_file": device_file}
            write_atomic(self.manifest_path, json.dumps(self.manifest, indent=2) + "\n")
        else:
            self.manifest = json.loads(self.manifest_path.read_text())
            if self.manifest.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"{self.manifest_path}: profile schema "
                                 f"{self.manifest.get('schema_version')}, this hwnas reads "
                                 f"{SCHEMA_VERSION}")
        self._recover()

    # -- recovery -------------------------------------------------------------
    def _recover(self) -> None:
        listed = {s["file"] for s in self.manifest["shards"]}
        if self.writable:
            for p in self.folder.glob("rows-*.parquet*"):
                if p.name not in listed:
                    p.unlink()  # written but never listed: its rows are still in the journal
        self._shard_keys: set[str] = set()
        stored: set[tuple[str, str]] = set()
        self._failed: set[str] = set()
        for s in self.manifest["shards"]:
            cols = self._read_shard(s["file"], ["key", "date", "status"])
            for k, d, st in zip(cols["key"], cols["date"], cols["status"]):
                self._shard_keys.add(k)
                stored.add((k, d))
                (self._failed.add if st == "failed" else self._failed.discard)(k)
        self._journal = [r for r in self._read_journal() if (r["key"], r["date"]) not in stored]
        for r in self._journal:
            (self._failed.add if r["status"] == "failed" else self._failed.discard)(r["key"])

    def _read_journal(self) -> list[dict[str, Any]]:
        if not self.journal_path.is_file():
            return []
        rows, seen = [], set()
        with open(self.journal_path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by kill -9 mid-write: its row was never acknowledged
                if (r.get("key"), r.get("date")) not in seen:
                    seen.add((r["key"], r["date"]))
                    rows.append(r)
        return rows

    def _read_shard(self, name: str, columns: list[str] | None = None) -> dict[str, list]:
        import pyarrow.parquet as pq

        return pq.read_table(self.folder / name, columns=columns).to_pydict()

    # -- writing --------------------------------------------------------------
    def keys(self) -> set[str]:
        return self._shard_keys | {r["key"] for r in self._journal}

    def failed_keys(self) -> set[str]:
        return set(self._failed)

    def append(self, row: dict[str, Any], replace_failed: bool = False) -> None:
        if not self.writable:
            raise ValueError(f"{self.folder} was opened read-only")
        row = normalise(row)
        if not row["key"] or not row["date"]:
            raise ValueError("a profile row needs a key and a date")
        if row["key"] in self.keys() and not (replace_failed and row["key"] in self._failed):
            raise ValueError(f"row {row['key']} is already stored")
        line = json.dumps(row, sort_keys=True) + "\n"
        with open(self.journal_path, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._journal.append(row)
        (self._failed.add if row["status"] == "failed" else self._failed.discard)(row["key"])
        if len(self._journal) >= COMPACT_EVERY:
            self.compact()

    def compact(self) -> None:
        if not self.writable:
            raise ValueError(f"{self.folder} was opened read-only")
        if not self._journal:
            if self.journal_path.exists():
                self.journal_path.unlink()
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        number = max([int(s["file"][5:10]) for s in self.manifest["shards"]] or [0]) + 1
        name = f"rows-{number:05d}.parquet"
        table = pa.Table.from_pylist(self._journal, schema=_schema())
        tmp = self.folder / (name + ".tmp")
        pq.write_table(table, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        tmp.replace(self.folder / name)
        shards = self.manifest["shards"] + [{"file": name, "rows": table.num_rows}]
        self.manifest = {**self.manifest, "shards": shards,
                         "rows": sum(s["rows"] for s in shards),
                         "updated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
        write_atomic(self.manifest_path, json.dumps(self.manifest, indent=2) + "\n")
        self._shard_keys.update(r["key"] for r in self._journal)
        self._journal = []
        self.journal_path.unlink(missing_ok=True)

    def set_meta(self, key: str, value: Any) -> None:
        """Record ``key`` in the manifest (e.g. the reference workload's nominal time)."""
        self.manifest = {**self.manifest, key: value}
        write_atomic(self.manifest_path, json.dumps(self.manifest, indent=2) + "\n")

    # -- reading --------------------------------------------------------------
    def rows(self, decode: bool = True) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for s in self.manifest["shards"]:
            cols = self._read_shard(s["file"])
            out.extend(dict(zip(cols, vals)) for vals in zip(*cols.values()))
        out.extend(dict(r) for r in self._journal)
        latest = {r["key"]: r for r in out}   # a retried key: the later row wins
        out = list(latest.values())
        if decode:
            for r in out:
                for k in JSON_COLUMNS:
                    if isinstance(r.get(k), str):
                        r[k] = json.loads(r[k])
        return out

    def __len__(self) -> int:
        return len(self.keys())


def profile_dir(workspace: Path, device: str) -> Path:
    return Path(workspace) / "profiles" / device


def open_profile(device: str, workspace: Path | None) -> ProfileStore:
    """The workspace's profile of ``device``, else the shipped one."""
    from hwnas.paths import find_data

    root = find_data("profiles", device, workspace, "manifest.json")
    if root is not None:
        return ProfileStore(root, device)
    raise ValueError(f"no profile for device {device!r}; measure one with "
                     f"`hwnas profile --device {device} --n 100`")
