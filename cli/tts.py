"""`hwnas tts data|train|presets`: the TTS task (a FastSpeech 2-like space)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._common import parse_budget, workspace
from .options import COUNT, SEED

EPILOG = """examples:
  hwnas tts presets                          the FastSpeech 2-like baseline and others
  hwnas tts data --lang en --size small      phonemes, durations and mels from eSpeak NG
  hwnas tts train --preset lightspeech_like --budget 5m
  hwnas tts train --arch arch.json --budget 2m --out runs/tts/mine
  hwnas tts score runs/tts/mine --asr runs/train/RUN   intelligibility (CER) by an ASR run
  hwnas export runs/tts/mine/arch.json --weights runs/tts/mine/weights.pt --format tflite
  hwnas profile --task tts --device cpu --n 20   RTF of sampled TTS models (resumable)
  hwnas predictor train --task tts --device cpu  a TTS latency predictor from that profile
  hwnas search --task tts --target cpu --max-rtf 0.002 --trials 12 --tts-budget 60s

A TTS architecture's JSON says "task": "tts"; export and profile take it as
they take a speech recogniser. The device graph reads 61 phonemes and writes
500 mel frames (5 s): its real-time factor is a call's latency over 5 s.
"""


def _arch(args: argparse.Namespace) -> Any:
    from hwnas.tts.arch import TTSArch, preset

    if bool(args.preset) == bool(args.arch):
        raise ValueError("give one of --preset NAME or --arch FILE")
    if args.preset:
        return preset(args.preset)
    path = Path(args.arch)
    if not path.is_file():
        raise ValueError(f"--arch {path}: no such file")
    return TTSArch.from_json(path.read_text())


def _bar(title: str, quiet: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(f"[bold]{title}"), BarColumn(), TextColumn("{task.description}"),
                    TimeElapsedColumn(), disable=quiet)


def cmd_data(args: argparse.Namespace) -> int:
    from hwnas.state import read_json
    from hwnas.tts import data

    with _bar("synthesising", args.json) as progress:
        task = progress.add_task("", total=None)

        def on(done: int, total: int) -> None:
            progress.update(task, total=total, completed=done, description=f"{done}/{total}")

        root = data.build(workspace(args), args.lang, args.size, args.seed, args.workers, on)
    info = read_json(root / "phonemes.json", data.PHONEMES)
    out = {"data": str(root), "phonemes": len(info["phonemes"]), "voice": info.get("voice")}
    print(json.dumps(out) if args.json else
          f"built {root}: {out['phonemes']} phonemes (incl. pad, unknown), voice {out['voice']}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from hwnas.tts.run import train_run

    arch = _arch(args)
    budget = parse_budget(args.budget)
    out = Path(args.out) if args.out else workspace(args) / "runs" / "tts" / arch.id
    with _bar("training", args.json) as progress:
        synth = progress.add_task("data", total=None)
        task = progress.add_task("", total=budget, visible=False)

        def on_data(done: int, total: int) -> None:
            progress.update(synth, total=total, completed=done,
                            description=f"data {done}/{total}")

        def on_step(step: int, cpu: float, loss: float) -> None:
            progress.update(synth, visible=False)
            progress.update(task, visible=True, completed=min(cpu, budget),
                            description=f"step {step}  mel L1 (normalised) {loss:.3f}")

        summary = train_run(workspace(args), arch, out, lang=args.lang, size=args.size,
                            seed=args.seed, cpu_seconds=budget, on_data=on_data,
                            on_step=on_step)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    d = summary["dev"]
    print(f"{arch.id}: {summary['steps']} steps in {summary['cpu_seconds']} CPU-s")
    print(f"  dev (true durations): mel L1 {d['mel_l1']}, MCD {d['mcd_db']} dB, "
          f"duration error {d['dur_mae_frames']} frames/phoneme")
    print(f"  listen: {out}/wav/   picture: {out}/mel.png")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from hwnas.paths import write_atomic
    from hwnas.tts.intelligibility import score

    for what, path in (("run", args.run), ("--asr", args.asr)):
        if not Path(path).is_dir():
            raise ValueError(f"{what} {path}: no such folder")
    if args.n < 1:
        raise ValueError("--n must be >= 1")
    res = score(Path(args.run), Path(args.asr), args.n)
    write_atomic(Path(args.run) / "intelligibility.json", json.dumps(res, indent=2) + "\n")
    if args.json:
        print(json.dumps(res, sort_keys=True))
        return 0
    print(f"{res['utterances']} dev sentences through the recogniser {args.asr}:")
    for k, label in (("model", "TTS model + Griffin-Lim"),
                     ("espeak_griffin_lim", "eSpeak's mels + Griffin-Lim (vocoder ceiling)"),
                     ("espeak", "eSpeak's audio (ceiling)")):
        print(f"  {label:<48} CER {res[k]['cer']:.3f}  WER {res[k]['wer']:.3f}")
    print(f"written to {Path(args.run) / 'intelligibility.json'}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from hwnas import tasks
    from hwnas.tts.arch import PRESETS, preset

    rows = []
    for name in PRESETS:
        a = preset(name)
        rows.append({"preset": name, "id": a.id, **tasks.stats(a), "arch": a.to_dict()})
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return 0
    for r in rows:
        print(f"{r['preset']:<18} {r['id']}  params {r['params'] / 1e6:6.2f} M  "
              f"GFLOPs/call {r['flops'] / 1e9:6.2f}")
    return 0


def _side(a: dict[str, Any], p: str) -> str:
    """One stack of a TTS architecture in a few characters: 2x128 lightconv h2 k9."""
    extra = "".join(f" {k}{a[f'{p}_{n}']}" for k, n in (("h", "heads"), ("k", "kernel"))
                    if a.get(f"{p}_{n}") is not None)
    return f"{a[f'{p}_layers']}x{a[f'{p}_hidden']} {a[f'{p}_block']}{extra}"


#: the options of `hwnas search` that a TTS search reads; the others are refused
TTS_USES = {"target", "task", "objectives", "max_rtf", "trials", "tts_budget", "seed", "study",
            "tts_size", "space", "storage", "format", "no_export", "no_verify", "asr_run",
            "json", "workspace"}


def cmd_search(args: argparse.Namespace) -> int:
    """`hwnas search --task tts`: see hwnas.tts.search."""
    from rich.table import Table

    from hwnas.tts.search import TTSSearchRequest, run_search

    from ._common import console, measure_with_progress, read_space
    from .options import refuse_given

    refuse_given(args, set(args.option_defaults) - TTS_USES,
                 "--task tts does not use it (a TTS search is NSGA-II in this process on "
                 "mcd,rtf,params; see `hwnas tts --help`)")
    default = ("cer", "rtf", "params") if args.asr_run else ("mcd", "rtf", "params")
    objectives = default if args.objectives == "cer,latency" else \
        tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    req = TTSSearchRequest(
        target=args.target, workspace=workspace(args), max_rtf=args.max_rtf,
        objectives=objectives, trials=args.trials, train_s=parse_budget(args.tts_budget),
        size=args.tts_size, seed=args.seed, study=args.study if args.study != "hwnas" else "tts",
        storage=args.storage, space=read_space(args) if args.space else None,
        verify=not args.no_verify, export=not args.no_export, format=args.format,
        asr_run=Path(args.asr_run) if args.asr_run else None)
    req.check()
    con = console()

    def say(line: str) -> None:
        if not args.json:
            con.print(line)

    def on_trial(rec: dict[str, Any]) -> None:
        if not args.json:
            mcd = f"MCD {rec['dev_mcd_db']:.2f} dB" if "dev_mcd_db" in rec else ""
            rtf = f"{rec['rtf']:.4f}" if rec.get("rtf") is not None else "-"
            con.print(f"trial {rec['trial']:>3} {rec['arch_id']}: RTF {rtf} (measured), "
                      f"{rec['params'] / 1e6:.2f} M params; {rec['verdict']} {mcd}")

    def drive(run: Any) -> None:
        measure_with_progress(run, f"measuring on {args.target}", quiet=True)

    summary = run_search(req, say, on_trial, drive)
    if args.json:
        print(json.dumps(summary, sort_keys=True, default=str))
        return 0
    t = Table(title=f"Pareto set ({len(summary['pareto'])}): dev quality with true durations, "
                    "RTF measured on the target over the 5 s bucket")
    heard = any("cer" in r for r in summary["pareto"])
    for col in ("trial", "arch", "MCD dB", "mel L1", *(("CER heard",) if heard else ()),
                "params M", "RTF", "RTF 95% hi", "verdict"):
        t.add_column(col)
    for r in summary["pareto"]:
        a = r["arch"]
        desc = f"enc {_side(a, 'enc')}, dec {_side(a, 'dec')}, dur {a['var_hidden']}"
        t.add_row(str(r["trial"]), desc, f"{r['mcd_db']:.2f}", f"{r['mel_l1']:.3f}",
                  *((f"{r['cer']:.3f} (eSpeak {r['cer_ceiling']:.3f})",) if heard else ()),
                  f"{r['params'] / 1e6:.2f}", f"{r.get('rtf') or 0:.4f}",
                  f"{r.get('rtf_hi') or 0:.4f}", r.get("verdict", "not verified"))
    con.print(t)
    if "export" in summary:
        e = summary["export"]
        con.print(f"exported trial {e['trial']} ({e['format']}): {e['path']}")
    con.print(f"study: {summary['result']}")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("tts", help="the TTS task: data, training, presets",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="A FastSpeech 2-like acoustic model searched for speed: "
                                   "phoneme durations and mels from eSpeak NG, Griffin-Lim "
                                   "to listen.", epilog=EPILOG)
    ps = p.add_subparsers(dest="tts_command", metavar="SUBCOMMAND", required=True)

    def common(s: argparse.ArgumentParser) -> None:
        s.add_argument("--lang", default="en", help="en, es, de, ru, el, hi (default en)")
        s.add_argument("--size", default="small",
                       help="tiny (120/20) | small (1,200/100) | medium (4,000/200) "
                            "train/dev sentences (default small)")
        s.add_argument("--seed", type=SEED, default=0, help="data and training seed (default 0)")
        s.add_argument("--workspace", metavar="DIR", help="default: $HWNAS_WORKSPACE or .")
        s.add_argument("--json", action="store_true", help="machine-readable output")

    s = ps.add_parser("data", help="synthesise the TTS targets (resumable)")
    common(s)
    s.add_argument("--workers", type=COUNT, default=2, help="parallel workers (default 2)")
    s.set_defaults(func=cmd_data)
    s = ps.add_parser("train", help="train one architecture within a CPU-time budget")
    common(s)
    s.add_argument("--preset", help="a preset name (see `hwnas tts presets`)")
    s.add_argument("--arch", metavar="FILE", help="an architecture JSON file")
    s.add_argument("--budget", default="2m", help="CPU time, one thread: 90s, 5m (default 2m)")
    s.add_argument("--out", metavar="DIR", help="default: <workspace>/runs/tts/<arch id>; "
                   "a run stopped there continues from its snapshot")
    s.set_defaults(func=cmd_train)
    s = ps.add_parser("score", help="intelligibility: CER of the model's speech as a "
                      "reference ASR run hears it, beside eSpeak's ceilings")
    s.add_argument("run", help="a `hwnas tts train` run folder")
    s.add_argument("--asr", required=True, metavar="RUN",
                   help="a `hwnas train` run folder (the reference recogniser)")
    s.add_argument("--n", type=COUNT, default=50, help="dev sentences (default 50)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_score)
    s = ps.add_parser("presets", help="the built-in TTS architectures")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_presets)
