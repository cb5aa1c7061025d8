"""The workspace fuzzer: a small workspace built with the real commands, every
file in it found by walking it (no list of files is kept here, so a state file
added later is covered), each corrupted in eight or nine ways, and after each
corruption every command that read that file on the intact workspace run again.

A run passes when it ends without a traceback, a failure ends with exactly one
``hwnas: error:`` line (the last), no byte of an uncorrupted file is lost (it
is where it was, or set aside somewhere in the workspace, or the command
rewrites it on an intact workspace too), and nothing is written outside the
workspace.

Which command reads which file is learnt, not listed: each command runs once
on the intact workspace under an audit hook that records the files it opens,
the SQLite databases it connects to and the folders it lists.

``python -m tests.fuzz [--all]`` builds a workspace, runs the cases and prints
their count, the time and any problems. Without ``--all`` it runs what the
test suite runs: for each kind of file, every corruption and every command
that reads it at least once (paired in turn); ``--all``: every corruption
with every such command.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.paths import file_sha256

# the tiny corpora: enough to train, score and report in about a second
CORPUS_TINY = (12, 4, 4)
TTS_TINY = (12, 4)
SPACE = ('[choices]\nencoder = ["lstm"]\nnum_layers = [1]\nd_model = [96]\ndecoder = ["ctc"]\n'
         'n_filters = [40]\nfrontend = ["logmel"]\n')
FOREIGN = b'{"foo": 1}\n'


@contextlib.contextmanager
def tiny_corpora():
    from hwnas.data import corpus
    from hwnas.tts import data as tts_data

    old = corpus.SIZES["tiny"], tts_data.SIZES["tiny"]
    corpus.SIZES["tiny"], tts_data.SIZES["tiny"] = CORPUS_TINY, TTS_TINY
    try:
        yield
    finally:
        corpus.SIZES["tiny"], tts_data.SIZES["tiny"] = old


def commands(ws: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(the commands that build the workspace, the commands run after a
    corruption), by name; argv without --workspace."""
    space = str(ws / "space.toml")
    journal = f"journal:{ws}/runs/search/j.log"
    search = ["search", "--target", "cpu", "--trials", "2", "--cer-steps", "2", "--size", "tiny",
              "--space", space, "--no-verify", "--no-export", "--no-baselines",
              "--final-budget", "0", "--spot-budget", "5s"]
    profile = ["profile", "--device", "cpu", "--n", "12", "--min-runs", "5", "--min-seconds",
               "0.02", "--warmup-runs", "1"]
    train = ["train", "--preset", "conformer_xs", "--steps", "2", "--size", "tiny"]
    supernet = ["supernet", "train", "--family", "lstm", "--budget", "3s", "--size", "tiny",
                "--space", space]
    tts = ["tts", "train", "--preset", "lightspeech_like", "--budget", "3s", "--size", "tiny"]
    build = {"profile": profile, "train": train, "search": search + ["--study", "s"],
             "search on a journal": search + ["--study", "j", "--storage", journal],
             "supernet train": supernet, "tts train": tts}
    readers = {**build,
               "profile show": ["profile", "show", "--device", "cpu"],
               "predict": ["predict", "--device", "cpu", "--preset", "conformer_xs",
                           "--spot-budget", "5s"],
               "predictor show": ["predictor", "show", "--device", "cpu"],
               "report": ["report", "s"],
               "report of a journal": ["report", "j", "--storage", journal],
               "score": ["score", "runs/train/RUN"],
               "supernet list": ["supernet", "list"],
               "devices": ["devices"],
               "data build": ["data", "build", "--size", "tiny"],
               "tts data": ["tts", "data", "--size", "tiny"]}
    return build, readers


def build_workspace(ws: Path) -> None:
    """The workspace, made by the commands users run (about 45 s)."""
    from tests.test_search import _fast_cpu

    ws.mkdir(parents=True, exist_ok=True)
    _fast_cpu(ws)
    (ws / "space.toml").write_text(SPACE)
    for name, argv in commands(ws)[0].items():
        res = run(argv, ws)
        if res.code != 0:
            raise RuntimeError(f"building the workspace: {name} exited {res.code}:\n{res.err}")


# --- running a command in this process, watched -----------------------------------------------

@dataclass
class Watch:
    """What an audit hook saw while recording: files opened, folders listed,
    databases connected to, and writes outside the workspace."""
    root: Path | None = None
    read: set[Path] = field(default_factory=set)
    listed: set[Path] = field(default_factory=set)
    outside: list[str] = field(default_factory=list)


WATCH = Watch()
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# what a command may write outside its workspace: the null device and the
# temporary files libraries make and remove
ALLOWED_OUTSIDE = ("/dev/null", "/proc/", tempfile.gettempdir())


def _path(p) -> Path | None:
    if isinstance(p, int) or p is None:
        return None
    try:
        return Path(os.fsdecode(p)).absolute()
    except (TypeError, ValueError):
        return None


def _inside(p: Path, root: Path) -> bool:
    return p == root or root in p.parents


def _hook(event: str, args: tuple) -> None:
    root = WATCH.root
    if root is None:
        return
    if event == "open":
        p = _path(args[0])
        if p is None:
            return
        mode, flags = args[1], args[2]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
            flags & WRITE_FLAGS)
        if _inside(p, root):
            WATCH.read.add(p)
        elif writes and not _allowed(p):
            WATCH.outside.append(f"open {p} {mode or flags}")
    elif event == "sqlite3.connect":
        p = _path(args[0])
        if p is not None and _inside(p, root):
            WATCH.read.add(p)
    elif event in ("os.listdir", "os.scandir"):
        p = _path(args[0] if args else ".")
        if p is not None and _inside(p, root):
            WATCH.listed.add(p)
    elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir",
                   "shutil.rmtree", "shutil.move", "os.truncate"):
        for a in args[:2]:
            p = _path(a)
            if p is not None and not _inside(p, root) and not _allowed(p):
                WATCH.outside.append(f"{event} {p}")


def _allowed(p: Path) -> bool:
    s = str(p)
    root = WATCH.root
    # the system's temporary folder, less the part the workspace lives in
    if root is not None and s.startswith(tempfile.gettempdir()) and not _inside(
            p, root.parent):
        return True
    return s.startswith(ALLOWED_OUTSIDE[:2])


_HOOKED = False


@dataclass
class Result:
    code: int | None
    out: str
    err: str
    read: set[Path]
    listed: set[Path]
    outside: list[str]
    seconds: float


class _Overtime(BaseException):
    """Not an Exception: code that survives a failed measurement must not
    swallow it."""


def run(argv: list[str], ws: Path, timeout: int = 120) -> Result:
    """``hwnas ARGV --workspace WS`` in this process, with output captured,
    under the audit hook, killed by SIGALRM after ``timeout`` seconds."""
    global _HOOKED
    from cli.main import main

    if not _HOOKED:
        sys.addaudithook(_hook)
        _HOOKED = True
    argv = [_one(ws / "runs" / "train") if a == "runs/train/RUN" else a for a in argv]
    out, err = io.StringIO(), io.StringIO()
    WATCH.root, WATCH.read, WATCH.listed, WATCH.outside = ws.absolute(), set(), set(), []
    cwd = os.getcwd()

    def overtime(*_):
        raise _Overtime(f"still running after {timeout} s")

    old = signal.signal(signal.SIGALRM, overtime)
    signal.alarm(timeout)
    start = time.perf_counter()
    try:
        os.chdir(ws)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([*argv, "--workspace", str(ws)])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException as e:   # noqa: BLE001 - an escaped exception is the finding
                import traceback

                err.write("Traceback (escaped main):\n" + "".join(
                    traceback.format_exception(e)))
                code = None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(cwd)
        WATCH.root = None
    return Result(code, out.getvalue(), err.getvalue(), WATCH.read, WATCH.listed,
                  WATCH.outside, time.perf_counter() - start)


def _one(folder: Path) -> str:
    found = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return str(found[0]) if found else str(folder / "none")


# --- the workspace's files, their state and their restoration ---------------------------------

def files(ws: Path) -> dict[str, tuple[int, int, str]]:
    """Every regular file: relative path -> (size, mtime_ns, sha256)."""
    out = {}
    for dirpath, _, names in os.walk(ws):
        for n in names:
            p = Path(dirpath) / n
            if p.is_symlink() or not p.is_file():
                continue
            st = p.stat()
            out[p.relative_to(ws).as_posix()] = (st.st_size, st.st_mtime_ns, file_sha256(p))
    return out


def restore(ws: Path, pristine: Path) -> None:
    """Make WS byte for byte the copy PRISTINE again: changed files copied back,
    anything new removed."""
    for dirpath, dirs, names in os.walk(ws, topdown=True):
        d = Path(dirpath)
        rel = d.relative_to(ws)
        for n in list(dirs):
            if not (pristine / rel / n).is_dir():
                _remove(d / n)
                dirs.remove(n)
        for n in names:
            if not (pristine / rel / n).is_file():
                _remove(d / n)
    for dirpath, dirs, names in os.walk(pristine):
        rel = Path(dirpath).relative_to(pristine)
        for n in dirs:
            (ws / rel / n).mkdir(exist_ok=True)
        for n in names:
            src, dst = Path(dirpath) / n, ws / rel / n
            s = src.stat()
            try:
                d = dst.stat()
                same = d.st_size == s.st_size and d.st_mtime_ns == s.st_mtime_ns
            except (FileNotFoundError, NotADirectoryError):
                same = False
            if not same or dst.is_dir():
                if dst.is_dir() and not dst.is_symlink():
                    shutil.rmtree(dst)
                shutil.copy2(src, dst)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink()


# --- corruptions ------------------------------------------------------------------------------

def _json_of(data: bytes):
    """The file's JSON (an object or list), its JSON lines, or None."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        lines = [json.loads(ln) for ln in data.splitlines() if ln.strip()]
    except (ValueError, UnicodeDecodeError):
        return None
    return lines if lines and len(data.splitlines()) > 1 else None


def _shift(v):
    """A value of another JSON type."""
    if isinstance(v, bool) or v is None:
        return "yes"
    if isinstance(v, (int, float)):
        return f"{v}"
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return {"0": v}
    return 7


def _wrong_fields(p: Path) -> None:
    data = _json_of(p.read_bytes())
    if isinstance(data, dict):
        p.write_text(json.dumps({k: _shift(v) for k, v in data.items()}))
    elif isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        p.write_text("".join(json.dumps({k: _shift(v) for k, v in x.items()}) + "\n"
                             for x in data))
    else:
        p.write_text(json.dumps([_shift(x) for x in data] if isinstance(data, list) else 7))


def _random(p: Path) -> None:
    n = max(p.stat().st_size, 64)
    p.write_bytes(hashlib.shake_256(p.name.encode()).digest(n))


def _flip(p: Path) -> None:
    b = bytearray(p.read_bytes())
    if b:
        b[len(b) // 2] ^= 0xFF
    p.write_bytes(bytes(b))


def _directory(p: Path) -> None:
    p.unlink()
    p.mkdir()
    (p / "x").write_text("a folder where a file was\n")


CORRUPTIONS = {
    "deleted": lambda p: p.unlink(),
    "emptied": lambda p: p.write_bytes(b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "random bytes": _random,
    "JSON of the wrong type": lambda p: p.write_text("[1, 2]\n"),
    "wrong field types": _wrong_fields,          # JSON files only
    "a foreign line appended": lambda p: p.open("ab").write(FOREIGN),
    "replaced by a directory": _directory,
    "one byte flipped": _flip,                   # files that are not JSON
}


def corruptions_for(p: Path) -> list[str]:
    is_json = _json_of(p.read_bytes()) is not None
    return [c for c in CORRUPTIONS
            if not (c == "wrong field types" and not is_json)
            and not (c == "one byte flipped" and is_json)]


# --- kinds of file and who reads them ----------------------------------------------------------

KIND = re.compile(r"[0-9a-f]{6,}|\d+")


def kind(rel: str) -> str:
    """A file's kind: its path with numbers and ids folded (one trial's
    result.json stands for every trial's)."""
    return KIND.sub("#", rel)


def representatives(paths) -> dict[str, str]:
    out: dict[str, str] = {}
    for rel in sorted(paths):
        out.setdefault(kind(rel), rel)
    return out


@dataclass
class Baseline:
    """The intact workspace: its files, who reads each, what each command
    rewrites on its own."""
    pristine: Path
    state: dict[str, tuple[int, int, str]]
    readers: dict[str, list[str]]
    rewrites: dict[str, set[str]]


def learn(ws: Path, pristine: Path, readers: dict[str, list[str]]) -> Baseline:
    state = files(ws)
    who: dict[str, list[str]] = {rel: [] for rel in state}
    rewrites = {}
    for name, argv in readers.items():
        res = run(argv, ws)
        if res.code != 0:
            raise RuntimeError(f"{name} fails on the intact workspace ({res.code}):\n{res.err}")
        for rel in state:
            p = (ws / rel).absolute()
            if p in res.read or p.parent in res.listed:
                who[rel].append(name)
        after = files(ws)
        rewrites[name] = {rel for rel, v in state.items() if after.get(rel, (0, 0, ""))[2] != v[2]}
        restore(ws, pristine)
    return Baseline(pristine, state, who, rewrites)


# --- one case ---------------------------------------------------------------------------------

def _updated(old: Path, new: Path) -> bool:
    """A file changed in place without losing anything: appended to, a JSON object with
    every field it had (a manifest that gained rows, a report redone from more
    measurements), or a SQLite database with at least the rows it had in each
    table (a study that gained a record)."""
    try:
        if new.read_bytes().startswith(old.read_bytes()):   # appended to (a journal)
            return True
        head = old.read_bytes()[:16]
        if head == b"SQLite format 3\x00":
            a, b = _table_rows(old), _table_rows(new)
            return all(b.get(t, -1) >= n for t, n in a.items())
        a, b = json.loads(old.read_bytes()), json.loads(new.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(a, dict) and isinstance(b, dict) and set(a) <= set(b)


def _table_rows(db: Path) -> dict[str, int]:
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
    except sqlite3.Error as e:
        raise ValueError(str(e)) from None
    finally:
        con.close()


def check(res: Result, reader: str, base: Baseline, corrupted: str, ws: Path) -> list[str]:
    """What went wrong in one run, in words (empty: nothing)."""
    problems = []
    text = res.out + res.err
    if res.code is None or "Traceback" in text:
        tail = "\n".join(res.err.strip().splitlines()[-6:])
        problems.append(f"traceback:\n{tail}")
    elif res.code != 0:
        lines = [ln for ln in res.err.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("hwnas: error:")]
        if res.code == 2 and any(ln.startswith("usage:") for ln in lines):
            problems.append("a usage error: " + lines[-1])
        elif len(errors) != 1 or lines[-1] != errors[0]:
            problems.append(f"exit {res.code} without one closing `hwnas: error:` line: "
                            f"{lines[-3:]!r}")
    if res.outside:
        problems.append(f"wrote outside the workspace: {res.outside[:3]}")
    after = files(ws)
    hashes = {v[2] for v in after.values()}
    lost = [rel for rel, v in base.state.items()
            if rel != corrupted and after.get(rel, (0, 0, ""))[2] != v[2]
            and v[2] not in hashes and rel not in base.rewrites[reader]
            and not _updated(base.pristine / rel, ws / rel)]
    if lost:
        problems.append(f"lost {lost[:4]}{' ...' if len(lost) > 4 else ''}")
    return problems


@dataclass
class Finding:
    file: str
    corruption: str
    reader: str
    problems: list[str]
    err: str


def plan(base: Baseline, ws: Path, every: bool) -> list[tuple[str, str, str]]:
    """(file, corruption, command) to run: for each kind of file read by a
    command, one file; ``every``: each corruption with each command that
    reads it; else a covering set: each corruption once and each command
    once, paired in turn (about an eighth of the runs)."""
    cases = []
    for rel in representatives(r for r, who in base.readers.items() if who).values():
        cs, rs = corruptions_for(ws / rel), base.readers[rel]
        if every:
            cases += [(rel, c, r) for c in cs for r in rs]
        else:
            cases += [(rel, cs[i % len(cs)], rs[i % len(rs)])
                      for i in range(max(len(cs), len(rs)))]
    return cases


def fuzz(ws: Path, pristine: Path, base: Baseline, every: bool, progress=None):
    """Run the cases; returns (cases run, findings)."""
    readers = commands(ws)[1]
    n, findings = 0, []
    for rel, corruption, reader in plan(base, ws, every):
        CORRUPTIONS[corruption](ws / rel)
        res = run(readers[reader], ws)
        problems = check(res, reader, base, rel, ws)
        n += 1
        if progress:
            progress(n, rel, corruption, reader, res, problems)
        if problems:
            findings.append(Finding(rel, corruption, reader, problems, res.err))
        restore(ws, pristine)
    return n, findings


def prepare(root: Path) -> tuple[Path, Path, Baseline]:
    ws, pristine = root / "ws", root / "pristine"
    build_workspace(ws)
    shutil.copytree(ws, pristine, symlinks=True)
    restore(ws, pristine)
    return ws, pristine, learn(ws, pristine, commands(ws)[1])


def _main() -> int:
    every = "--all" in sys.argv
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, tiny_corpora():
        ws, pristine, base = prepare(Path(tmp))
        built = time.perf_counter() - start
        reps = representatives(rel for rel, who in base.readers.items() if who)
        print(f"workspace: {len(base.state)} files, {len(reps)} kinds read by a command, "
              f"built and learnt in {built:.0f} s", flush=True)

        def progress(i, rel, corruption, reader, res, problems):
            mark = "FAIL" if problems else "ok"
            print(f"{i:4d} {mark:4s} {res.seconds:5.1f}s {reader:20s} {corruption:24s} {rel}",
                  flush=True)

        n, findings = fuzz(ws, pristine, base, every, progress)
    print(f"\n{n} cases ({'every corruption with every reader' if every else 'covering'}) in "
          f"{time.perf_counter() - start:.0f} s; {len(findings)} findings")
    for f in findings:
        print(f"\n* {f.file} {f.corruption}, {f.reader}:")
        for p in f.problems:
            print("  " + p.replace("\n", "\n  "))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(_main())
