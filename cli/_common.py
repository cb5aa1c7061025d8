"""What the command modules share: errors, consoles, the workspace, reading
architectures and spaces, budgets, the corpus options, and progress bars over
profile runs and feature computation."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def console():
    from rich.console import Console

    # piped output (logs, CI) gets a wide table rather than rich's 80 columns
    return Console() if sys.stdout.isatty() else Console(width=160)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, sort_keys=True))


def workspace(args: argparse.Namespace) -> Path:
    from hwnas.paths import workspace as resolve

    return resolve(args.workspace)


def read_space(args: argparse.Namespace):
    from hwnas.tasks import default_space

    space = default_space(getattr(args, "task", "asr"))
    return space.with_toml(args.space) if getattr(args, "space", None) else space


def read_arch(args: argparse.Namespace, tasks: tuple[str, ...] = ("asr",)):
    """The architecture of ARCH.json or --preset; ``tasks`` are those the
    command takes (a TTS architecture's JSON says "task": "tts")."""
    from hwnas.asr import preset
    from hwnas.tasks import arch_from_json, require

    if getattr(args, "preset", None):
        if args.arch:
            raise CLIError("give either ARCH.json or --preset, not both")
        return preset(args.preset)
    if not args.arch:
        raise CLIError("give an architecture: ARCH.json (or - for stdin) or --preset NAME")
    if args.arch == "-":
        text = sys.stdin.read()
    else:
        text = _arch_text(args.arch)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and all(ln.lstrip().startswith("{") for ln in lines):
        try:
            json.loads(text)
        except json.JSONDecodeError:
            raise CLIError(f"{args.arch} holds {len(lines)} JSON lines; give one architecture "
                           "(e.g. `head -n 1`)") from None
    try:
        return require(arch_from_json(text), tasks, args.arch)
    except ValueError as e:
        raise CLIError(f"{args.arch}: {e}" if "architecture;" not in str(e) else str(e)) \
            from None


def read_archs(path: str) -> list[Any]:
    from hwnas.asr.arch import parse_archs
    return parse_archs(sys.stdin.read() if path == "-" else _arch_text(path), path)


def _arch_text(path: str) -> str:
    from hwnas.paths import read_text

    try:
        return read_text(path)
    except FileNotFoundError:
        raise CLIError(f"architecture file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CLIError(f"cannot read {path}: {e}") from None


def plan_overrides(args: argparse.Namespace, base: Any) -> Any:
    over = {k: getattr(args, k) for k in ("warmup_runs", "min_runs", "min_seconds")
            if getattr(args, k) is not None}
    return base.replace(**over) if over else base


def measure_with_progress(run: Any, title: str, quiet: bool = False
                          ) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Run a ProfileRun under a rich progress bar (on stderr). On Ctrl-C raises
    KeyboardInterrupt(new_rows); DeviceUnavailable gets ``.stored`` = new rows."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from hwnas.adapters import DeviceUnavailable

    err = Console(stderr=True)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                        TimeRemainingColumn(), TextColumn("{task.fields[last]}"),
                        console=err, transient=quiet)
    counts: Counter[str] = Counter()
    state: dict[str, Any] = {"task": None}

    def on_start(todo: int, stored: int) -> None:
        for note in run.notes:   # recovery of the store: shown even with --json
            err.print(f"hwnas: {note}", markup=False, highlight=False, soft_wrap=True)
        state["task"] = progress.add_task(title, total=todo, last="")
        if stored and not quiet:
            err.print(f"{stored} rows already stored in {run.folder}; "
                      f"{todo} measurements to go")

    rows: list[dict[str, Any]] = []
    try:
        with progress:
            for row in run.run(on_start=on_start):
                counts[row["status"]] += 1
                rows.append(row)
                last = (f"{row['arch_id']} {row['p50_ms']:.2f} ms" if row.get("p50_ms")
                        is not None else f"{row['arch_id']} {row['status']}")
                progress.update(state["task"], advance=1, last=last)
    except KeyboardInterrupt as e:
        raise type(e)(len(rows)) from None   # Ctrl-C or SIGTERM, with the rows stored
    except DeviceUnavailable as e:
        e.stored = len(rows)  # type: ignore[attr-defined]
        raise
    return rows, counts


def parse_budget(text: str) -> float:
    """'3m', '90s', '1h', '2.5m' or plain seconds -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m:
        raise ValueError(f"budget {text!r}: give e.g. 90s, 3m or 1h")
    value = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if value <= 0:
        raise ValueError("the budget must be positive")
    return value


def add_corpus_args(s: argparse.ArgumentParser) -> None:
    """The corpus options `hwnas train` and `hwnas search` share."""
    from .options import SEED

    s.add_argument("--langs", default="en", help="comma-separated built-in languages (en)")
    s.add_argument("--size", default="small", help="built-in corpus size (default small)")
    s.add_argument("--corpus-seed", type=SEED, default=0, dest="corpus_seed",
                   help="built-in corpus seed (default 0)")
    s.add_argument("--charset", choices=("langs", "all"), default="langs",
                   help="output characters: langs (default: the letters of --langs; one "
                        "language, its own set) or all (one multilingual set of every "
                        "built-in language); recorded in the run")
    s.add_argument("--train", metavar="SPEC", help="your own training corpus instead of the "
                   "built-in one: librispeech:DIR, commonvoice:DIR/SPLIT.tsv or kaldi:DIR")
    s.add_argument("--dev", metavar="SPEC", help="with --train: the held-out corpus")
    s.add_argument("--test", metavar="[NAME=]SPEC", action="append",
                   help="with --train: a test set (repeat for several)")
    s.add_argument("--strict", action="store_true",
                   help="refuse a corpus with a bad file or transcript (default: skip and "
                        "report them)")


def open_corpus(args: argparse.Namespace, ws: Any) -> Any:
    """The built-in corpus (built on first use), or --train/--dev/--test files."""
    from hwnas.training.prepare import open_corpus as open_

    return open_(ws, langs=args.langs, size=args.size, corpus_seed=args.corpus_seed,
                 train=args.train, dev=args.dev, test=args.test, strict=args.strict,
                 charset=args.charset)


def say_skipped(err: Any, problems: dict[str, list], where: str) -> None:
    """A line per dataset with skipped utterances, the first one named."""
    from hwnas.data.loaders import problem_text

    for name, items in problems.items():
        err.print(f"[yellow]{name}: {len(items)} utterance(s) skipped[/] (first: "
                  f"{problem_text(*items[0])}){where}", highlight=False)


def with_feature_progress(err: Any, work: Any) -> Any:
    """``work(on_item)`` under a progress bar per dataset whose features are computed."""
    from rich.progress import Progress

    with Progress(console=err, transient=True) as progress:
        tasks: dict[str, Any] = {}

        def on_item(name: str, n: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"features {name} ({total} utterances)",
                                                total=total)
            progress.update(tasks[name], completed=n)

        return work(on_item)


def corpus_splits(corpus: Any, frontend: str, n_filters: int, err: Any) -> Any:
    """``corpus.splits`` with progress bars while features are computed; the
    utterances skipped are reported once."""
    first_time = not corpus.has_splits(frontend, n_filters)
    sp = with_feature_progress(err, lambda cb: corpus.splits(frontend, n_filters, cb))
    if first_time:
        say_skipped(err, sp.problems, "; all are listed in result.json")
    return sp
