"""`hwnas train`: train one architecture on the built-in corpus and score it."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

TRAIN_EPILOG = """examples:
  hwnas train --preset conformer_xs --budget 3m          3 CPU-minutes on built-in English
  hwnas train arch.json --steps 500 --langs en,es --json
  hwnas train --preset lstm_rnnt --budget 90s --seed 1

The built-in corpus is built first if it is missing (hwnas data build). The
budget counts CPU time of this process on one thread; --steps N is the
deterministic alternative (the same seed gives the same weights and CER).
Results, weights, tokenizer and feature statistics go to
<workspace>/runs/train/<arch-id>-s<seed>/.
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


def cmd_train(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hwnas.data.corpus import SIZES, corpus_dir, words
    from hwnas.data.tokens import CharTokenizer
    from hwnas.training.prepare import builtin_features
    from hwnas.training.trainer import TrainConfig, concat, evaluate, save_run, train

    from .hil import _workspace
    from .main import _read_arch

    torch.set_num_threads(1)
    if args.beam < 1:
        raise ValueError("--beam must be >= 1")
    if (args.budget is None) == (args.steps is None):
        raise ValueError("give a budget: --budget 3m (CPU time) or --steps N")
    cfg = TrainConfig(steps=args.steps, seed=args.seed,
                      cpu_seconds=parse_budget(args.budget) if args.budget else None)
    arch = _read_arch(args)
    langs = [x.strip() for x in args.langs.split(",") if x.strip()]
    if args.size not in SIZES:
        raise ValueError(f"unknown size {args.size!r}; one of {', '.join(SIZES)}")
    ws = _workspace(args)
    err = Console(stderr=True)
    quiet = args.json
    if not quiet:
        err.print("corpus and features (built and cached on first use) ...")
    sets = builtin_features(ws, langs, args.size, args.corpus_seed, arch.frontend,
                            arch.n_filters)
    root = corpus_dir(ws, args.size, args.corpus_seed)
    train_set = concat([sets[(lang, "train")] for lang in langs], "train")
    dev_set = concat([sets[(lang, "dev")] for lang in langs], "dev")
    tok = CharTokenizer.for_languages(langs)
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

        res = train(arch, train_set, dev_set, tok, cfg, on_point, on_step)
    for lang in langs:
        lex = list(words(lang))
        for split in ("test-clean", "test-noisy"):
            res.tests[f"{lang}/{split}"] = evaluate(res.model, res.model.arch, sets[(lang, split)],
                                                    tok, res.norm, lexicon=lex, beam=args.beam)
    out_dir = ws / "runs" / "train" / f"{arch.id}-s{args.seed}"
    summary = save_run(out_dir, res, tok, {"langs": langs, "corpus": str(root),
                                           "seed": args.seed,
                                           "problems": len(train_set.problems)})
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


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("train", help="train an architecture on the built-in corpus; CER/WER",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train one architecture under a CPU-time or step budget "
                                   "on the built-in corpus; print the learning curve and "
                                   "CER/WER per test set.", epilog=TRAIN_EPILOG)
    s.add_argument("arch", nargs="?", metavar="ARCH.json", help="architecture JSON, or - ")
    s.add_argument("--preset", metavar="NAME", help="a named preset instead")
    s.add_argument("--budget", help="CPU time: 90s, 3m, 1h")
    s.add_argument("--steps", type=int, help="updates instead of a time budget (deterministic)")
    s.add_argument("--langs", default="en", help="comma-separated built-in languages (en)")
    s.add_argument("--size", default="small", help="built-in corpus size (default small)")
    s.add_argument("--corpus-seed", type=int, default=0, dest="corpus_seed",
                   help="built-in corpus seed (default 0)")
    s.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    s.add_argument("--beam", type=int, default=1,
                   help="beam width for the test sets (default 1: greedy; attention decoders: "
                        "greedy uses their CTC head, a beam the attention decoder)")
    s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_train)


