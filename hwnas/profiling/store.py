"""The profile store: ``profiles/<device>/`` holds Parquet shards of rows
(one row per architecture and format) and a small ``manifest.json``.

No row is lost or duplicated, even after kill -9:
  1. each finished row is appended to ``journal.jsonl`` and fsync'ed;
  2. ``compact`` writes the journal's rows as a new shard (temp + rename),
     then the manifest listing it (temp + rename), then empties the journal.
On open, journal rows already in a shard are an interrupted step 3 and are
dropped. Recovery never deletes anything: a readable shard the manifest does
not list (an interrupted step 2, a lost or hand-edited manifest) is adopted
into it; what cannot be read (a cut temp file, a garbage shard, a manifest
that is not JSON, a journal with unreadable lines) is moved to
``set-aside/`` and named in ``notes``, which the commands print. Rows are
keyed by ``arch_id:format``; a failed row may be superseded by a later
attempt (``replace_failed``), and readers see the latest row per key.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from hwnas import tasks
from hwnas.paths import set_aside, write_atomic
from hwnas.profiling.row import COLUMNS, JSON_COLUMNS

SCHEMA_VERSION = 1
COMPACT_EVERY = 25


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
        self.notes: list[str] = []   # what recovery found and did, one line each
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        fresh = {"device": device, "schema_version": SCHEMA_VERSION, "columns": COLUMNS,
                 "shards": [], "rows": 0, "created": now, "updated": now,
                 "device_file": device_file}
        if not self.manifest_path.is_file():
            if not create and not self._has_data():
                raise ValueError(f"no profile for device {device!r} in {self.folder}")
            self.manifest = fresh
            self._rebuilt = "is missing" if self._has_data() else None
        else:
            self._rebuilt = None
            self.manifest = self._read_manifest(fresh)
            if self.manifest.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"{self.manifest_path}: profile schema "
                                 f"{self.manifest.get('schema_version')}, this hwnas reads "
                                 f"{SCHEMA_VERSION}")
        self._recover()
        if "reference" not in self.manifest and self._has_data():
            self._recover_reference()
        if self.writable and (self.notes or not self.manifest_path.is_file()):
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write_manifest()

    def _has_data(self) -> bool:
        return self.journal_path.is_file() or any(self.folder.glob("rows-*.parquet*"))

    def _read_manifest(self, fresh: dict[str, Any]) -> dict[str, Any]:
        """The manifest, or (when it is not a JSON object of the expected shape)
        a fresh one rebuilt from the shards, the bad file set aside by a writer."""
        try:
            m = json.loads(self.manifest_path.read_text())
            problem = None if isinstance(m, dict) and isinstance(m.get("shards", []), list) \
                and all(isinstance(x, dict) and isinstance(x.get("file"), str)
                        for x in m.get("shards", [])) else "not a profile manifest"
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            problem = f"not valid JSON ({getattr(e, 'msg', type(e).__name__)})"
        except OSError as e:
            raise ValueError(f"{self.manifest_path}: cannot read: {e.strerror or e}") from None
        if problem is None:
            return {**fresh, **m, "shards": list(m.get("shards", []))}
        moved = self._set_aside(self.manifest_path)
        self._rebuilt = f"is {problem}" + (f" (kept as {moved})" if moved else "")
        return fresh

    def _set_aside(self, path: Path) -> Path | None:
        """Move ``path`` into ``set-aside/`` (a writer only; a reader changes nothing)."""
        if not self.writable:
            return None
        return set_aside(path, self.folder / "set-aside")

    # -- recovery -------------------------------------------------------------
    def _recover(self) -> None:
        shards = []
        for s in self.manifest["shards"]:   # listed shards that are gone: say so
            if (self.folder / s["file"]).is_file():
                shards.append(s)
            else:
                self.notes.append(f"{self.folder / s['file']}: listed in the manifest but "
                                  f"missing ({s.get('rows', '?')} rows); left out")
        listed = {s["file"] for s in shards}
        adopted = []
        for p in sorted(self.folder.glob("rows-*.parquet*")):
            if p.name in listed or not p.is_file():
                continue
            n = self._readable_rows(p) if p.name.endswith(".parquet") else None
            if n is not None:    # complete and readable: its rows are kept by listing it
                shards.append({"file": p.name, "rows": n})
                adopted.append((p.name, n))
            else:                # a cut temp file or garbage: its rows are in the journal
                moved = self._set_aside(p)
                self.notes.append(f"{p}: not a readable shard; "
                                  + (f"moved to {moved}" if moved else "ignored"))
        for s in list(shards):
            if s["file"] in listed and self._readable_rows(self.folder / s["file"]) is None:
                shards.remove(s)
                moved = self._set_aside(self.folder / s["file"])
                self.notes.append(f"{self.folder / s['file']}: listed shard cannot be read; "
                                  + (f"moved to {moved}" if moved else "left out"))
        what = (f"{len(adopted)} shard(s) ({sum(n for _, n in adopted)} rows: "
                f"{', '.join(a for a, _ in adopted[:3])}{', ...' if len(adopted) > 3 else ''})")
        if self._rebuilt:
            self.notes.insert(0, f"{self.manifest_path} {self._rebuilt}: rebuilt from "
                              + (f"{what} and the journal" if adopted else "the journal"))
        elif adopted:
            self.notes.insert(0, f"{self.folder}: adopted {what} the manifest did not list")
        shards.sort(key=lambda s: s["file"])
        self.manifest = {**self.manifest, "shards": shards,
                         "rows": sum(int(s.get("rows") or 0) for s in shards)}
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

    def _recover_reference(self) -> None:
        """A rebuilt manifest lost the reference's nominal time; every row
        normalised with it holds it as norm_p50_ms / rel_p50, so it is read
        back from them (a new calibration would put new rows on another scale)."""
        ratios = [r["norm_p50_ms"] / r["rel_p50"] for r in self.rows(decode=False)
                  if r.get("norm_p50_ms") and r.get("rel_p50")]
        if ratios:
            nominal = float(sorted(ratios)[len(ratios) // 2])
            self.manifest = {**self.manifest, "reference": {
                "nominal_ms": nominal, "recovered_from": f"{len(ratios)} rows"}}
            self.notes.append(f"{self.folder}: the reference's nominal time "
                              f"({nominal:.3f} ms) recovered from {len(ratios)} rows")

    def _readable_rows(self, path: Path) -> int | None:
        """Row count of a Parquet shard with the key columns, None if unreadable."""
        import pyarrow.parquet as pq

        try:
            meta = pq.read_metadata(path)
            names = set(meta.schema.names)
        except Exception:  # noqa: BLE001 - any failure to parse means "not a shard"
            return None
        return meta.num_rows if {"key", "date", "status"} <= names else None

    def _write_manifest(self) -> None:
        write_atomic(self.manifest_path, json.dumps(self.manifest, indent=2) + "\n")

    def _read_journal(self) -> list[dict[str, Any]]:
        """Journal rows; a line that does not parse (a line cut by kill -9, or
        damage) is skipped, counted in ``_journal_bad`` and, when the journal is
        next emptied, kept by setting the journal aside instead."""
        self._journal_bad = 0
        if not self.journal_path.is_file():
            return []
        rows, seen = [], set()
        with open(self.journal_path, "rb") as f:
            for line in f:
                try:
                    r = json.loads(line)
                    ok = isinstance(r, dict) and isinstance(r.get("key"), str) \
                        and isinstance(r.get("date"), str) and not set(r) - set(COLUMNS)
                except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                    ok = False
                if not ok:
                    if line.strip():
                        self._journal_bad += 1
                    continue
                if (r["key"], r["date"]) not in seen:
                    seen.add((r["key"], r["date"]))
                    rows.append(normalise(r))
        if self._journal_bad:
            self.notes.append(f"{self.journal_path}: {self._journal_bad} unreadable line(s) "
                              "skipped (kept: the journal is set aside, not emptied)")
        return rows

    def _drop_journal(self) -> None:
        if not self.journal_path.exists():
            return
        if self._journal_bad:
            self._set_aside(self.journal_path)
            self._journal_bad = 0
        else:
            self.journal_path.unlink()

    def _read_shard(self, name: str, columns: list[str] | None = None) -> dict[str, list]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from hwnas.errors import first_line

        try:
            return pq.read_table(self.folder / name, columns=columns).to_pydict()
        except (OSError, ValueError, pa.ArrowException) as e:
            # its footer read (the manifest lists it) but a page does not: the
            # shard is damaged inside; say which, in one line, and touch nothing
            raise ValueError(f"{self.folder / name}: a damaged Parquet shard "
                             f"({first_line(e, 120)}); move it out of {self.folder} to "
                             f"read the other rows") from None

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
            self._drop_journal()
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        number = max([_shard_number(p.name) for p in self.folder.glob("rows-*.parquet*")]
                     + [_shard_number(s["file"]) for s in self.manifest["shards"]] + [0]) + 1
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
        self._drop_journal()

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


def _shard_number(name: str) -> int:
    digits = name[5:].split(".", 1)[0].split("-", 1)[0]
    return int(digits) if digits.isdigit() else 0


def profile_dir(workspace: Path, device: str) -> Path:
    return Path(workspace) / "profiles" / device


def profile_name(device: str, task: str = tasks.DEFAULT) -> str:
    """The profile a task's measurements on ``device`` go to: speech
    recognisers under the device's name, TTS models under ``<device>.tts``
    (a predictor learns one task's graphs)."""
    return device if task == tasks.DEFAULT else f"{device}.{task}"


def open_profile(device: str, workspace: Path | None) -> ProfileStore:
    """The workspace's profile of ``device``, else the shipped one. A
    workspace folder holding measurements but no readable manifest is still
    the workspace's profile (rebuilt in memory, see ``notes``), never
    silently replaced by the shipped one."""
    from hwnas.paths import find_data

    if workspace is not None:
        mine = profile_dir(workspace, device)
        if mine.is_dir() and ((mine / "manifest.json").is_file()
                              or (mine / "journal.jsonl").is_file()
                              or any(mine.glob("rows-*.parquet*"))):
            return ProfileStore(mine, device)
    root = find_data("profiles", device, workspace, "manifest.json")
    if root is not None:
        return ProfileStore(root, device)
    raise ValueError(f"no profile for device {device!r}; measure one with "
                     f"`hwnas profile --device {device} --n 100`")
