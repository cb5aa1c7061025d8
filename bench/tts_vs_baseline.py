"""A TTS architecture against the FastSpeech 2-like preset, at the same
training budget: parameters, measured real-time factor, and dev quality.

    python -m bench.tts_vs_baseline --budget 120            (presets only)
    python -m bench.tts_vs_baseline --budget 120 --arch found.json --asr runs/train/RUN

Both are trained --budget CPU-seconds (one thread, seed 0) on the built-in
English TTS data (small: 1,200 train / 100 dev sentences) and exported to
ONNX with their weights. Latency: the fixed-shape device graph (61 phonemes
in, 500 frames = 5 s out) under ONNX Runtime, one thread, the models called
in alternation (--rounds rounds after warm-up) so that the host's speed
swings fall on both alike; the ratio's 95% interval is a bootstrap over
rounds. RTF = median latency / 5 s. Quality on dev with the true durations:
mel L1 (log-mel) and MCD (dB, see hwnas.tts.quality). Without --arch the
candidate is the `lightspeech_like` preset (LightSpeech's published shape,
not a search result; --arch writes tts_vs_baseline_found.json). With --asr
(a `hwnas train` run), intelligibility too: the CER of 50 dev sentences
synthesised (Griffin-Lim) and transcribed by that recogniser, eSpeak's own
audio beside it as the ceiling.
Results: bench/results/tts_vs_baseline.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas import tasks  # noqa: E402
from hwnas.export import export  # noqa: E402
from hwnas.tts.arch import TTSArch, preset  # noqa: E402
from hwnas.tts.run import train_run  # noqa: E402


def timings(paths: list[Path], rounds: int) -> np.ndarray:
    """(rounds, models) seconds per call, the models interleaved."""
    import onnxruntime as ort

    from hwnas.nn.graph_io import initial_feeds

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    sessions = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
                for p in paths]
    feeds = [initial_feeds([{"name": i.name, "shape": i.shape} for i in s.get_inputs()])
             for s in sessions]
    for s, f in zip(sessions, feeds):       # warm-up
        for _ in range(3):
            s.run(None, f)
    out = np.zeros((rounds, len(paths)))
    for r in range(rounds):
        for j, (s, f) in enumerate(zip(sessions, feeds)):
            t = time.perf_counter()
            s.run(None, f)
            out[r, j] = time.perf_counter() - t
    return out


def ratio_ci(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """median(a) / median(b) with a 95% bootstrap interval over rounds."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (2000, len(a)))
    boots = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    return (float(np.median(a) / np.median(b)), float(np.quantile(boots, 0.025)),
            float(np.quantile(boots, 0.975)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=120.0, help="CPU-seconds per model")
    ap.add_argument("--arch", help="candidate architecture JSON (default: lightspeech_like)")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--size", default="small")
    ap.add_argument("--asr", help="a `hwnas train` run: adds intelligibility CER")
    ap.add_argument("--out", help="default: bench/results/tts_vs_baseline.json, or "
                    "tts_vs_baseline_found.json with --arch")
    args = ap.parse_args()
    args.out = args.out or str(ROOT / "bench" / "results" / (
        "tts_vs_baseline_found.json" if args.arch else "tts_vs_baseline.json"))
    torch.set_num_threads(1)
    cand = TTSArch.from_json(Path(args.arch).read_text()) if args.arch else \
        preset("lightspeech_like")
    models = {"fastspeech2 (baseline)": preset("fastspeech2"),
              ("candidate" if args.arch else "lightspeech_like"): cand}
    rows, paths = {}, []
    for name, arch in models.items():
        out = ROOT / "runs" / "bench_tts" / f"{arch.id}-{int(args.budget)}s"
        t = time.time()
        res = train_run(ROOT, arch, out, size=args.size, cpu_seconds=args.budget)
        trained = tasks.arch_from_dict(res["arch"])
        art = export(trained, "onnx", out / "export", weights=out / "weights.pt")
        paths.append(Path(art.path))
        rows[name] = {"arch": res["arch"], "id": trained.id, **tasks.stats(trained),
                      "steps": res["steps"], "cpu_s": res["cpu_seconds"], "dev": res["dev"],
                      "wall_s": round(time.time() - t, 1)}
        if args.asr:
            from hwnas.tasks.intelligibility import score

            heard = score(out, Path(args.asr), 50)
            rows[name]["intelligibility"] = {k: heard[k] for k in
                                             ("model", "espeak", "espeak_griffin_lim")}
        print(f"{name}: {res['steps']} steps, dev {res['dev']}", flush=True)
    t = timings(paths, args.rounds)
    (base, b), (cname, c) = list(rows.items())
    for j, name in enumerate(rows):
        rows[name]["latency_ms_p50"] = round(float(np.median(t[:, j])) * 1000, 2)
        rows[name]["rtf"] = round(float(np.median(t[:, j])) / 5.0, 5)
    r, lo, hi = ratio_ci(t[:, 0], t[:, 1])
    summary = {"budget_cpu_s": args.budget, "rounds": args.rounds, "models": rows,
               "params_ratio": round(b["params"] / c["params"], 2),
               "speedup": {"median": round(r, 2), "ci95": [round(lo, 2), round(hi, 2)]},
               "mcd_db_delta": round(c["dev"]["mcd_db"] - b["dev"]["mcd_db"], 3),
               "command": "python -m bench.tts_vs_baseline " + " ".join(sys.argv[1:])}
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{'model':<24}{'params M':>10}{'ms/5 s':>10}{'RTF':>9}{'mel L1':>9}{'MCD dB':>9}"
          f"{'CER heard':>11}")
    for name, row in rows.items():
        heard = row.get("intelligibility", {}).get("model", {}).get("cer")
        print(f"{name:<24}{row['params'] / 1e6:>10.2f}{row['latency_ms_p50']:>10.1f}"
              f"{row['rtf']:>9.4f}{row['dev']['mel_l1']:>9.3f}{row['dev']['mcd_db']:>9.2f}"
              f"{'' if heard is None else f'{heard:.3f}':>11}")
    ceiling = next((r["intelligibility"]["espeak"]["cer"] for r in rows.values()
                    if "intelligibility" in r), None)
    if ceiling is not None:
        print(f"(eSpeak's own audio through the same recogniser: CER {ceiling:.3f})")
    print(f"\n{base} / {cname}: {summary['params_ratio']}x the parameters, "
          f"{r:.2f}x slower (95% CI {lo:.2f}-{hi:.2f}); MCD {cname} - baseline "
          f"{summary['mcd_db_delta']:+.2f} dB")


if __name__ == "__main__":
    main()
