"""`hwnas score`: CER/WER of a saved run on test sets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._common import corpus_splits, say_skipped, with_feature_progress, workspace
from .options import COUNT


def cmd_score(args: argparse.Namespace) -> int:
    """Score a saved run on test sets named like --test of `hwnas train`, or
    on the test sets of the corpus it trained on."""
    import torch
    from rich.console import Console

    from hwnas.asr.train import evaluate, load_run
    from hwnas.data.loaders import load_spec
    from hwnas.training.prepare import features_of, named_specs, recorded_corpus

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
    ws = workspace(args)
    err = Console(stderr=True, quiet=args.json)
    out: dict[str, Any] = {"run": str(args.run), "arch_id": arch.id, "tests": {},
                           "problems": {}}  # problems: only for --test sets (a run has its own)
    if named:
        datasets = {name: load_spec(spec, strict=args.strict) for name, spec in named}
        sets, out["problems"] = with_feature_progress(err, lambda cb: features_of(
            datasets, arch.frontend, arch.n_filters, ws / "cache" / "features", args.strict, cb))
        say_skipped(err, out["problems"], "; all are listed with --json")
        tests = {name: (fs, lexicon) for name, fs in sets.items()}
    else:  # the corpus it trained on
        sp = corpus_splits(recorded_corpus(args.run, ws), arch.frontend, arch.n_filters, err)
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
    c.add_argument("--beam", type=COUNT, default=1, help="beam width (default 1: greedy)")
    c.add_argument("--strict", action="store_true", help="refuse a test set with a bad file")
    c.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or . "
                                                      "(features are cached there)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=cmd_score)
