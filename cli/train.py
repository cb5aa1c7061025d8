"""`hwnas train`: train one architecture on the built-in corpus, or on the
user's own (LibriSpeech, Common Voice, Kaldi layouts), and score it."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

TRAIN_EPILOG = """examples:
  hwnas train --preset conformer_xs --budget 3m          3 CPU-minutes on built-in English
  hwnas train arch.json --steps 500 --langs en,es --json
  hwnas train --preset lstm_rnnt --budget 90s --seed 1
  hwnas train --preset conformer_xs --budget 30m \\
      --train librispeech:/data/LibriSpeech/train-clean-100 \\
      --dev librispeech:/data/LibriSpeech/dev-clean \\
      --test clean=librispeech:/data/LibriSpeech/test-clean \\
      --test cv=commonvoice:/data/cv/en/test.tsv --test kaldi:data/eval

The built-in corpus is built first if it is missing (hwnas data build). The
budget counts CPU time of this process on one thread; --steps N is the
deterministic alternative (the same seed gives the same weights and CER).
With --train, the tokenizer is the training transcripts' characters and the
lexicon (for the lexicon-constrained WER) their words; a missing transcript
or unreadable audio is skipped and reported with its path (--strict refuses
the corpus instead). Results, weights, tokenizer and feature statistics go to
<workspace>/runs/train/<arch-id>-s<seed>[-<data hash>]/.

A run saves a snapshot there every CPU-minute, on Ctrl-C and at the end:
the same command continues a stopped run (with --steps, to the same weights
as an uninterrupted one), and a larger budget continues a finished one.
--restart starts over.
"""


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
    s.add_argument("--langs", default="en", help="comma-separated built-in languages (en)")
    s.add_argument("--size", default="small", help="built-in corpus size (default small)")
    s.add_argument("--corpus-seed", type=int, default=0, dest="corpus_seed",
                   help="built-in corpus seed (default 0)")
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
    from hwnas.data.corpus import SIZES
    from hwnas.training.prepare import BuiltinCorpus, UserCorpus

    if args.train:
        return UserCorpus(ws, args.train, args.dev, args.test, strict=args.strict)
    if args.dev or args.test:
        raise ValueError("--dev/--test go with --train (your own corpus); without --train "
                         "the built-in corpus's splits are used")
    if args.size not in SIZES:
        raise ValueError(f"unknown size {args.size!r}; one of {', '.join(SIZES)}")
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    return BuiltinCorpus(ws, langs, args.size, args.corpus_seed)


def _say_skipped(err: Any, problems: dict[str, list], where: str) -> None:
    """A line per dataset with skipped utterances, the first one named."""
    from hwnas.data.loaders import problem_text

    for name, items in problems.items():
        err.print(f"[yellow]{name}: {len(items)} utterance(s) skipped[/] (first: "
                  f"{problem_text(*items[0])}){where}", highlight=False)


def _with_feature_progress(err: Any, work: Any) -> Any:
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
    sp = _with_feature_progress(err, lambda cb: corpus.splits(frontend, n_filters, cb))
    if first_time:
        _say_skipped(err, sp.problems, "; all are listed in result.json")
    return sp


def _resume(args: argparse.Namespace, out_dir: Any, arch: Any, cfg: Any, tok: Any,
            meta: dict, err: Any) -> dict | None:
    """The state in ``cfg.snapshot`` to continue from (None: a fresh start)."""
    from hwnas.paths import write_atomic
    from hwnas.training.trainer import load_snapshot

    snap = cfg.snapshot
    data = json.dumps({k: v for k, v in meta.items() if k != "problems"}, sort_keys=True)
    stamp = out_dir / "checkpoint.json"
    if snap.is_file() and not args.restart:
        if not stamp.is_file() or stamp.read_text() != data:
            raise ValueError(f"{out_dir} holds a run on other data; --restart replaces it")
        state = load_snapshot(snap, arch, cfg, tok.vocab_size)
        if not args.json:
            err.print(f"continuing the run in {out_dir} from step {state['step']} "
                      f"({state['cpu']:.0f} CPU s); --restart starts over", highlight=False)
        return state
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(stamp, data)
    return None


def cmd_train(args: argparse.Namespace) -> int:
    import hashlib

    import torch
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hwnas.training.trainer import TrainConfig, evaluate, save_run, train

    from .hil import _workspace
    from .main import _read_arch

    torch.set_num_threads(1)
    if args.beam < 1:
        raise ValueError("--beam must be >= 1")
    if args.budget is not None and args.steps is not None:
        raise ValueError("give --budget or --steps, not both")
    if args.budget is None and args.steps is None:
        raise ValueError("give a budget: --budget 3m (CPU time) or --steps N")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    cfg = TrainConfig(steps=args.steps, seed=args.seed,
                      cpu_seconds=parse_budget(args.budget) if args.budget else None)
    arch = _read_arch(args)
    ws = _workspace(args)
    err = Console(stderr=True)
    quiet = args.json
    if not quiet:
        err.print("corpus and features (computed and cached on first use) ...")
    corpus = open_corpus(args, ws)
    sp = corpus_splits(corpus, arch.frontend, arch.n_filters, err)
    train_set, dev_set, tests, tok = sp.train, sp.dev, sp.tests, corpus.tokenizer
    meta = {"corpus": corpus.description, "problems": sp.problems}
    tag = "" if corpus.description["kind"] == "builtin" else \
        "-" + hashlib.sha256(json.dumps(corpus.description).encode()).hexdigest()[:8]
    out_dir = ws / "runs" / "train" / f"{arch.id}-s{args.seed}{tag}"
    cfg.snapshot = out_dir / "checkpoint.pt"  # written every CPU-minute, on Ctrl-C, at the end
    resume = _resume(args, out_dir, arch, cfg, tok, meta, err)
    total = cfg.steps if cfg.steps is not None else cfg.cpu_seconds
    unit = "steps" if cfg.steps is not None else "CPU s"
    progress = Progress(TextColumn(f"[bold]training {arch.encoder}/{arch.decoder}"),
                        BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} " + unit),
                        TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=err,
                        transient=quiet)
    with progress:
        task = progress.add_task("train", total=total, info="")

        def on_step(step: int, cpu_s: float) -> None:
            progress.update(task, completed=step if cfg.steps is not None else min(cpu_s, total))

        def on_point(p: dict[str, float]) -> None:
            progress.update(task, info=f"step {p['step']} loss {p['loss']:.3f} "
                                       f"dev CER {p['dev_cer']:.3f}")

        try:
            res = train(arch, train_set, dev_set, tok, cfg, on_point, on_step, resume=resume)
        except KeyboardInterrupt:
            progress.stop()
            err.print(f"interrupted; the run is saved in {out_dir}: the same command "
                      "continues it", highlight=False)
            return 130
    for name, (fs, lexicon) in tests.items():
        res.tests[name] = evaluate(res.model, res.model.arch, fs, tok, res.norm,
                                   lexicon=lexicon, beam=args.beam)
    summary = save_run(out_dir, res, tok, {**meta, "seed": args.seed})
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    print(f"{arch.id} {arch.encoder}/{arch.decoder}: {res.steps} steps in {res.cpu_seconds:.0f} "
          f"CPU s")
    print("learning curve (dev CER on the first 100 dev utterances):")
    for p in res.curve:
        print(f"  step {p['step']:>5}  {p['cpu_s']:>7.1f} CPU s  loss {p['loss']:.3f}  "
              f"dev CER {p['dev_cer']:.3f}")
    print(f"dev: CER {res.dev['cer']:.3f}  WER {res.dev['wer']:.3f}")
    for name, r in res.tests.items():
        lex = (f"WER (lexicon beam) {r['wer_lexicon_beam']:.3f}  " if "wer_lexicon_beam" in r
               else "")
        print(f"{name:<14} CER {r['cer']:.3f}  WER {r['wer']:.3f}  {lex}"
              f"WER (snapped) {r['wer_lexicon']:.3f}  ({r['n']} utterances)")
    print(f"saved {out_dir}")
    return 0


def _recorded_corpus(run: Path, ws: Path) -> Any:
    """The corpus a saved run trained on, from its result.json."""
    from hwnas.training.prepare import BuiltinCorpus, UserCorpus

    try:
        summary = json.loads((Path(run) / "result.json").read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{run}: not a complete training run ({e})") from None
    c = summary.get("corpus")
    if isinstance(c, str) and "langs" in summary:  # a run written before corpus descriptions
        m = re.fullmatch(r"builtin-(\w+)-s(\d+)", Path(c).name)
        if m:
            return BuiltinCorpus(Path(c).parents[1], summary["langs"], m[1], int(m[2]))
    if isinstance(c, dict) and c.get("kind") == "builtin":
        return BuiltinCorpus(ws, c["langs"], c["size"], c["seed"])
    if isinstance(c, dict) and c.get("kind") == "user":
        tests = [v if k == v else f"{k}={v}" for k, v in c.items()
                 if k not in ("kind", "train", "dev")]
        return UserCorpus(ws, c["train"], c["dev"], tests)
    raise ValueError(f"{run} does not record the corpus it trained on; name test sets "
                     "with --test")


def cmd_score(args: argparse.Namespace) -> int:
    """Score a saved run on test sets named like --test of `hwnas train`, or
    on the test sets of the corpus it trained on."""
    import torch
    from rich.console import Console

    from hwnas.data.loaders import load_spec
    from hwnas.training.prepare import features_of, named_specs
    from hwnas.training.trainer import evaluate, load_run

    from .hil import _workspace

    torch.set_num_threads(1)
    if args.beam < 1:
        raise ValueError("--beam must be >= 1")
    named = named_specs(args.test or [])
    lexicon = None
    if args.lexicon:
        lexicon = sorted(set(Path(args.lexicon).read_text(encoding="utf-8").split()))
        if not lexicon:
            raise ValueError(f"{args.lexicon}: no words in the lexicon file")
    model, arch, tok, norm = load_run(args.run)
    ws = _workspace(args)
    err = Console(stderr=True, quiet=args.json)
    out: dict[str, Any] = {"run": str(args.run), "arch_id": arch.id, "tests": {},
                           "problems": {}}  # problems: only for --test sets (a run has its own)
    if named:
        datasets = {name: load_spec(spec, strict=args.strict) for name, spec in named}
        sets, out["problems"] = _with_feature_progress(err, lambda cb: features_of(
            datasets, arch.frontend, arch.n_filters, ws / "cache" / "features", args.strict, cb))
        _say_skipped(err, out["problems"], "; all are listed with --json")
        tests = {name: (fs, lexicon) for name, fs in sets.items()}
    else:  # the corpus it trained on
        sp = corpus_splits(_recorded_corpus(args.run, ws), arch.frontend, arch.n_filters, err)
        tests = {n: (fs, lexicon or lex) for n, (fs, lex) in sp.tests.items()}
    for name, (fs, lex) in tests.items():
        out["tests"][name] = evaluate(model, arch, fs, tok, norm, lexicon=lex, beam=args.beam)
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    print(f"{arch.id} {arch.encoder}/{arch.decoder} from {args.run}"
          f"{'' if args.beam == 1 else f', beam {args.beam}'}:")
    for name, r in out["tests"].items():
        lex = ""
        if "wer_lexicon_beam" in r:
            lex = f"  WER (lexicon beam) {r['wer_lexicon_beam']:.3f}"
        if "wer_lexicon" in r:
            lex += f"  WER (snapped) {r['wer_lexicon']:.3f}"
        print(f"  {name:<14} CER {r['cer']:.3f}  WER {r['wer']:.3f}{lex}  "
              f"({r['n']} utterances)")
    return 0


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("train", help="train an architecture (built-in or your corpus); CER/WER",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train one architecture under a CPU-time or step budget "
                                   "on the built-in corpus or your own; print the learning "
                                   "curve and "
                                   "CER/WER per test set.", epilog=TRAIN_EPILOG)
    s.add_argument("arch", nargs="?", metavar="ARCH.json", help="architecture JSON, or - ")
    s.add_argument("--preset", metavar="NAME", help="a named preset instead")
    s.add_argument("--budget", help="CPU time: 90s, 3m, 1h")
    s.add_argument("--steps", type=int, help="updates instead of a time budget (deterministic)")
    add_corpus_args(s)
    s.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    s.add_argument("--restart", action="store_true",
                   help="start over instead of continuing this run's saved snapshot")
    s.add_argument("--beam", type=int, default=1,
                   help="beam width for the test sets (default 1: greedy; attention decoders: "
                        "greedy uses their CTC head, a beam the attention decoder)")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_train)

    c = sub.add_parser("score", help="score a trained run on test sets (CER/WER)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="CER and WER of a saved run (a `hwnas train` folder or a "
                                   "search trial's) on your test sets, or without --test on "
                                   "the test sets of the corpus it trained on.",
                       epilog="examples:\n"
                              "  hwnas score runs/train/ed5be732ed08-s0 \\\n"
                              "      --test clean=librispeech:/data/LibriSpeech/test-clean\n"
                              "  hwnas score RUN --test kaldi:data/eval --lexicon words.txt "
                              "--beam 8 --json\n"
                              "  hwnas score runs/search/main/trials/00013-f1379fd4ae6d "
                              "--beam 8   its own corpus's test sets\n")
    c.add_argument("run", metavar="RUN", help="the run folder (weights.pt, tokenizer.json, "
                                              "feature_norm.npz, result.json)")
    c.add_argument("--test", metavar="[NAME=]SPEC", action="append",
                   help="librispeech:DIR, commonvoice:DIR/SPLIT.tsv or kaldi:DIR (repeatable)")
    c.add_argument("--lexicon", metavar="FILE", help="word list (whitespace-separated): "
                   "adds the lexicon-constrained and snapped WERs")
    c.add_argument("--beam", type=int, default=1, help="beam width (default 1: greedy)")
    c.add_argument("--strict", action="store_true", help="refuse a test set with a bad file")
    c.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or . "
                                                      "(features are cached there)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_score)


