"""`hwnas tts data|train|presets`: the TTS task (a FastSpeech 2-like space)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ._common import parse_budget, workspace
from .options import COUNT, SEED, add_device_args

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
                            on_step=on_step, device=args.train_device,
                            precision=args.precision)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return 0
    d = summary["dev"]
    print(f"{arch.id}: {summary['steps']} steps in {summary['cpu_seconds']} "
          f"{'device' if summary.get('clock') == 'device_seconds' else 'CPU'}-s, "
          f"{summary.get('precision', 'fp32')}")
    print(f"  dev (true durations): mel L1 {d['mel_l1']}, MCD {d['mcd_db']} dB, "
          f"duration error {d['dur_mae_frames']} frames/phoneme")
    print(f"  listen: {out}/wav/   picture: {out}/mel.png")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from hwnas.paths import write_atomic
    from hwnas.tasks.intelligibility import score

    for what, path in (("run", args.run), ("--asr", args.asr)):
        if not Path(path).is_dir():
            raise ValueError(f"{what} {path}: no such folder")
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


#: the options of `hwnas search` a TTS search does not read (refused when given):
#: a recogniser's corpus, CER rungs, supernets, streaming and the final phase
ASR_ONLY = {"cer_budget", "cer_steps", "rung_floors", "cer_source", "supernet_budget",
            "finetune", "screen_utts", "streaming", "max_delay", "final_budget", "spot_budget",
            "langs", "size", "corpus_seed", "train", "dev", "test", "strict", "charset"}


def search_parts(args: argparse.Namespace, ws: Path) -> dict[str, Any]:
    """What `hwnas search --task tts` puts into the search's request: its
    data, rungs (--tts-budget), objectives and study name."""
    from hwnas.tts.units import TTSData

    from ._common import console
    from .options import refuse_given

    refuse_given(args, set(args.option_defaults) & ASR_ONLY,
                 "--task tts does not use it (TTS trials train on the built-in TTS data, "
                 "--tts-size; rungs are --tts-budget; see `hwnas tts --help`)")
    if args.asr_run and not Path(args.asr_run).is_dir():
        raise ValueError(f"--asr-run {args.asr_run}: no such folder")
    default = ("cer", "rtf", "params") if args.asr_run else ("mcd", "rtf", "params")
    objectives = default if args.objectives == "cer,latency" else \
        tuple(o.strip() for o in args.objectives.split(",") if o.strip())
    if "cer" in objectives and not args.asr_run:
        raise ValueError("the cer objective (intelligibility) needs --asr-run RUN, a "
                         "`hwnas train` run that transcribes the synthesised speech")
    if not {"mcd", "cer"} & set(objectives):
        raise ValueError("a TTS search needs a quality objective: mcd or cer")
    data = TTSData(ws, size=args.tts_size, seed=args.seed,
                   asr_run=str(Path(args.asr_run).resolve()) if args.asr_run else None)
    if not args.json:
        data.say = console().print
    rungs = tuple(parse_budget(p) for p in args.tts_budget.split(",") if p.strip())
    return {"corpus": data, "rungs": rungs, "objectives": objectives,
            "study": args.study if args.study != "hwnas" else "tts"}


def print_search(summary: dict[str, Any], target: str) -> None:
    """A TTS search's answer: its Pareto set, verified on the target."""
    from rich.table import Table

    from ._common import console

    con = console()
    front = summary["pareto"]
    t = Table(title=f"Pareto set ({len(front)}): dev quality with true durations, RTF "
                    f"measured on {target} over the 5 s bucket", title_justify="left")
    heard = any("cer_ceiling" in (r.get("dev") or {}) for r in front)
    for col in ("trial", "arch", "MCD dB", "mel L1", *(("CER heard",) if heard else ()),
                "params M", "RTF", "RTF 95% hi", "verdict"):
        t.add_column(col)
    for r in front:
        a, dev = r["arch"], r.get("dev") or {}
        ci = r.get("latency_ci")
        hi = ci[1] / r["latency_ms"] * r["rtf"] if ci and r.get("rtf") else None
        t.add_row(f"{r['trial']}*" if r.get("baseline") else str(r["trial"]),
                  f"enc {_side(a, 'enc')}, dec {_side(a, 'dec')}, dur {a['var_hidden']}",
                  f"{dev.get('mcd_db', math.nan):.2f}", f"{dev.get('mel_l1', math.nan):.3f}",
                  *((f"{dev['cer']:.3f} (eSpeak {dev['cer_ceiling']:.3f})",) if heard else ()),
                  f"{r['params'] / 1e6:.2f}", f"{r.get('rtf') or 0:.4f}",
                  f"{hi:.4f}" if hi is not None else "-", r.get("verdict", "not verified"))
    con.print(t)
    for line in (summary.get("note"), summary.get("versus_baseline")):
        if line:
            con.print(line)
    for r in summary["dropped"]:
        con.print(f"dropped {r['arch_id']}: {r['reason']}")
    if summary.get("export"):
        con.print(f"exported with its model card: {summary['export']}")
    elif not front:
        con.print("no trained trial is on the feasible front yet; add trials or relax "
                  "the constraints")


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
    s.add_argument("--budget", default="2m", help="CPU time, one thread (device time on a "
                   "GPU): 90s, 5m (default 2m)")
    add_device_args(s)
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
