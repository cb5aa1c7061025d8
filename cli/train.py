"""`hwnas train`: train one architecture on the built-in corpus, or on the
user's own (LibriSpeech, Common Voice, Kaldi layouts), and score it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import (
    add_corpus_args,
    corpus_splits,
    open_corpus,
    parse_budget,
    read_arch,
    workspace,
)
from .interrupt import interrupted_status
from .options import COUNT, SEED, add_device_args

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
--restart starts over, keeping the earlier run in <run>/set-aside/.
"""


def _resume(args: argparse.Namespace, out_dir: Any, arch: Any, cfg: Any, tok: Any,
            meta: dict, err: Any) -> dict | None:
    """The state in ``cfg.snapshot`` to continue from (None: a fresh start)."""
    from hwnas.asr.train import load_snapshot, set_aside_run
    from hwnas.paths import write_atomic

    snap = cfg.snapshot
    data = json.dumps({k: v for k, v in meta.items() if k != "problems"}, sort_keys=True)
    stamp = out_dir / "checkpoint.json"
    if snap.is_file() and not args.restart:
        try:
            recorded = stamp.read_text()
        except (OSError, UnicodeDecodeError):
            raise ValueError(f"{stamp} (the data this run trains on) is missing or unreadable; "
                             "--restart sets that run aside and starts over") from None
        if recorded != data:
            raise ValueError(f"{out_dir} holds a run on other data; --restart sets that run "
                             "aside and starts over")
        try:
            state = load_snapshot(snap, arch, cfg, tok.vocab_size)
        except ValueError as e:
            raise ValueError(f"{e}; --restart sets the run aside and starts over") from None
        if not args.json:
            err.print(f"continuing the run in {out_dir} from step {state['step']} "
                      f"({state['cpu']:.0f} CPU s); --restart starts over", highlight=False)
        return state
    kept = set_aside_run(out_dir)  # a fresh start never overwrites a trained run
    if kept is not None:
        err.print(f"the earlier run in {out_dir} is kept in {kept}", highlight=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(stamp, data)
    return None


def cmd_train(args: argparse.Namespace) -> int:
    import hashlib

    import torch
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hwnas.asr.train import TrainConfig, evaluate, save_run, train


    torch.set_num_threads(1)
    if args.beam < 1:
        raise ValueError("--beam must be >= 1")
    if args.budget is not None and args.steps is not None:
        raise ValueError("give --budget or --steps, not both")
    if args.budget is None and args.steps is None:
        raise ValueError("give a budget: --budget 3m (CPU time) or --steps N")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    from hwnas.nn.fit import resolve_precision, train_device

    device = train_device(args.train_device)
    cfg = TrainConfig(steps=args.steps, seed=args.seed, device=str(device),
                      precision=resolve_precision(args.precision, device),
                      cpu_seconds=parse_budget(args.budget) if args.budget else None)
    arch = read_arch(args)
    ws = workspace(args)
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
    if cfg.precision != "fp32":   # a run of another precision is another run
        meta["precision"], tag = cfg.precision, f"{tag}-{cfg.precision}"
    out_dir = ws / "runs" / "train" / f"{arch.id}-s{args.seed}{tag}"
    cfg.snapshot = out_dir / "checkpoint.pt"  # written every CPU-minute, on Ctrl-C, at the end
    resume = _resume(args, out_dir, arch, cfg, tok, meta, err)
    total = cfg.steps if cfg.steps is not None else cfg.cpu_seconds
    unit = "steps" if cfg.steps is not None else \
        "CPU s" if device.type == "cpu" else "device s"
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
        except KeyboardInterrupt as e:
            progress.stop()
            err.print(f"interrupted; the run is saved in {out_dir}: the same command "
                      "continues it", highlight=False)
            return interrupted_status(e)
    for name, (fs, lexicon) in tests.items():
        res.tests[name] = evaluate(res.model, res.model.arch, fs, tok, res.norm,
                                   lexicon=lexicon, beam=args.beam)
    summary = save_run(out_dir, res, tok, {**meta, "seed": args.seed})
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    clock = "CPU s" if device.type == "cpu" else "device s"
    print(f"{arch.id} {arch.encoder}/{arch.decoder}: {res.steps} steps in {res.cpu_seconds:.0f} "
          f"{clock} on {res.device['device_name']} ({res.precision})")
    print("learning curve (dev CER on the first 100 dev utterances):")
    for p in res.curve:
        print(f"  step {p['step']:>5}  {p['cpu_s']:>7.1f} {clock}  loss {p['loss']:.3f}  "
              f"dev CER {p['dev_cer']:.3f}")
    print(f"dev: CER {res.dev['cer']:.3f}  WER {res.dev['wer']:.3f}")
    for lang, r in (res.dev.get("by_lang") or {}).items():
        print(f"  {lang}: CER {r['cer']:.3f}  WER {r['wer']:.3f}")
    for name, r in res.tests.items():
        lex = (f"WER (lexicon beam) {r['wer_lexicon_beam']:.3f}  " if "wer_lexicon_beam" in r
               else "")
        print(f"{name:<14} CER {r['cer']:.3f}  WER {r['wer']:.3f}  {lex}"
              f"WER (snapped) {r['wer_lexicon']:.3f}  ({r['n']} utterances)")
    print(f"saved {out_dir}")
    return 0


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("train", help="train an architecture (built-in or your corpus); CER/WER",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train one architecture under a time budget (CPU time; "
                                   "on a GPU, device time) or a step budget on the built-in "
                                   "corpus or your own; print the learning curve and CER/WER "
                                   "per test set.", epilog=TRAIN_EPILOG)
    s.add_argument("arch", nargs="?", metavar="ARCH.json", help="architecture JSON, or - ")
    s.add_argument("--preset", metavar="NAME", help="a named preset instead")
    s.add_argument("--budget", help="training time: 90s, 3m, 1h (CPU time on a CPU; on a GPU, "
                                    "device time: wall time with the GPU synchronised)")
    s.add_argument("--steps", type=COUNT, help="updates instead of a time budget (deterministic)")
    add_corpus_args(s)
    s.add_argument("--seed", type=SEED, default=0, help="training seed (default 0)")
    add_device_args(s)
    s.add_argument("--restart", action="store_true",
                   help="start over instead of continuing this run's saved snapshot")
    s.add_argument("--beam", type=COUNT, default=1,
                   help="beam width for the test sets (default 1: greedy; attention decoders: "
                        "greedy uses their CTC head, a beam the attention decoder)")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_train)
