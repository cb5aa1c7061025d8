"""Is a short training run a faithful proxy for a longer one?

    python -m bench.proxy_fidelity --parts presets            (~8 min)
    python -m bench.proxy_fidelity --parts fidelity --n 12    (~12 x 23 CPU-min; resumable)
    python -m bench.proxy_fidelity --parts determinism        (~2 min)

Built-in English corpus (small: 2,000 train / 200 dev / 200 + 200 test
utterances, seed 0), one thread, budgets in CPU time.

presets      conformer_xs-like (a 2-block d=144 Conformer, CTC) and a tiny
             1-layer 32-unit LSTM, 3 CPU-minutes each: CER on en/test-clean.
             Goal: the Conformer <= 0.25 and clearly better than the LSTM
fidelity     --n sampled architectures (seed 3, CTC decoders, <= 6 layers),
             each trained 3 and 20 CPU-minutes (the 20-minute run continues
             the 3-minute one): Kendall tau between the two dev CERs.
             Goal >= 0.7. Every finished run is appended to
             bench/results/proxy_fidelity.jsonl (committed); a rerun skips those
determinism  the same architecture and seed trained twice for 200 steps:
             identical CER
predictor    the CER predictor (architecture + early curve) fitted on the
             fidelity runs, leave one architecture out: does it estimate the
             20-minute CER from the first 3 minutes better than the 3-minute
             CER itself (as is, or scaled by the mean improvement) or a
             power law fitted to the first 3 minutes of the curve? Training
             records take the curve at 2, 3 and 4 CPU-minutes; the held-out
             architecture is scored at 3. No training, seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch  # noqa: E402

from bench.harness import ROOT  # noqa: E402 - first: one thread for every library
from hwnas.asr import ArchConfig, default_space, preset  # noqa: E402
from hwnas.asr.train import TrainConfig, evaluate, train  # noqa: E402
from hwnas.data.corpus import build, corpus_dir, words  # noqa: E402
from hwnas.data.tokens import CharTokenizer  # noqa: E402
from hwnas.predict.metrics import kendall_tau  # noqa: E402
from hwnas.training.prepare import SPLITS, builtin_features  # noqa: E402

torch.set_num_threads(1)


def data(frontend: str, n_filters: int):
    root = corpus_dir(ROOT, "small", 0)
    if not (root / "en" / "test-noisy.jsonl").is_file():
        print("building the small English corpus ...", flush=True)
        t0 = time.time()
        build(ROOT, ["en"], "small", 0, workers=2)
        print(f"  built in {time.time() - t0:.0f} s", flush=True)
    sets = builtin_features(ROOT, ["en"], "small", 0, frontend, n_filters)
    return {split: sets[("en", split)] for split in SPLITS}


def tiny_lstm() -> ArchConfig:
    """A 1-layer 32-unit LSTM with CTC (outside the space's widths on purpose)."""
    return ArchConfig(frontend="logmel", n_filters=80, subsampling="conv2d4", encoder="lstm",
                      streaming=False, num_layers=1, d_model=32, decoder="ctc")


def part_presets(minutes: float) -> dict:
    tok = CharTokenizer.for_languages(["en"])
    out = {}
    for name, arch in (("conformer_xs", preset("conformer_xs")),
                       ("tiny LSTM (1x32)", tiny_lstm())):
        sets = data(arch.frontend, arch.n_filters)
        t0 = time.time()
        res = train(arch, sets["train"], sets["dev"], tok,
                    TrainConfig(cpu_seconds=minutes * 60, seed=0))
        test = {s: evaluate(res.model, res.model.arch, sets[s], tok, res.norm,
                            lexicon=list(words("en"))) for s in ("test-clean", "test-noisy")}
        out[name] = {"steps": res.steps, "cpu_s": res.cpu_seconds, "dev": res.dev,
                     "tests": test, "curve": res.curve, "wall_s": round(time.time() - t0)}
        clean, noisy = test["test-clean"], test["test-noisy"]
        print(f"  {name:<18} {res.steps} steps: test-clean CER {clean['cer']:.3f} "
              f"WER {clean['wer']:.3f} (lexicon beam {clean['wer_lexicon_beam']:.3f}, "
              f"snapped {clean['wer_lexicon']:.3f}); test-noisy CER {noisy['cer']:.3f}",
              flush=True)
    return out


def fidelity_archs(n: int) -> list[ArchConfig]:
    space = default_space().with_choices({"decoder": ["ctc"], "num_layers": [1, 2, 4, 6]})
    return space.sample_distinct(n, 3)


def part_fidelity(n: int, short_min: float, long_min: float) -> dict:
    log = ROOT / "bench" / "results" / "proxy_fidelity.jsonl"  # committed: the run spans days
    log.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            done[r["arch_id"]] = r
    tok = CharTokenizer.for_languages(["en"])
    for i, arch in enumerate(fidelity_archs(n)):
        if arch.id in done:
            continue
        sets = data(arch.frontend, arch.n_filters)
        short = train(arch, sets["train"], sets["dev"], tok,
                      TrainConfig(cpu_seconds=short_min * 60, seed=0))
        long = train(arch, sets["train"], sets["dev"], tok,
                     TrainConfig(cpu_seconds=long_min * 60, seed=0), resume=short.state)
        rec = {"arch_id": arch.id, "arch": arch.to_dict(), "short_cer": short.dev["cer"],
               "long_cer": long.dev["cer"], "short_steps": short.steps,
               "long_steps": long.steps, "curve": long.curve}
        with log.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        done[arch.id] = rec
        print(f"  [{i + 1}/{n}] {arch.id} {arch.encoder} x{arch.num_layers} d{arch.d_model}: "
              f"{short_min:g} min CER {rec['short_cer']:.3f}, {long_min:g} min "
              f"{rec['long_cer']:.3f}", flush=True)
    recs = [done[a.id] for a in fidelity_archs(n) if a.id in done]
    tau = kendall_tau([r["short_cer"] for r in recs], [r["long_cer"] for r in recs]) \
        if len(recs) >= 3 else float("nan")
    print(f"  Kendall tau (short vs long dev CER) over {len(recs)} architectures: {tau:.3f}")
    return {"n": len(recs), "kendall_tau": tau}


def early_point(rec: dict, cpu_s: float) -> dict:
    """The last dev evaluation of a fidelity run at or before ``cpu_s``."""
    pts = [p for p in rec["curve"] if p["cpu_s"] <= cpu_s + 1.0]
    return pts[-1]


def predictor_records(recs: list[dict], cuts: tuple[float, ...]) -> list[dict]:
    out = []
    for r in recs:
        for c in cuts:
            p = early_point(r, c)
            out.append({"arch": r["arch"], "early_cer": p["dev_cer"], "early_loss": p["loss"],
                        "early_steps": p["step"], "final_cer": r["long_cer"]})
    return out


def power_law_extrapolation(rec: dict, cut: float, target: float) -> float:
    """CER(t) = a + b (t/100)^-c fitted (least squares, c on a grid) to the
    dev evaluations from 60 CPU-s to ``cut``, read at ``target``."""
    import numpy as np

    pts = [p for p in rec["curve"] if 60 <= p["cpu_s"] <= cut + 1.0]
    t = np.array([p["cpu_s"] for p in pts]) / 100
    y = np.array([p["dev_cer"] for p in pts])
    best = (np.inf, float(y[-1]))
    for c in np.linspace(0.05, 3.0, 60):
        a_b, *_ = np.linalg.lstsq(np.c_[np.ones_like(t), t ** -c], y, rcond=None)
        a, b = a_b
        if b < 0:  # a rising curve is noise here, not a trend to extend
            continue
        err = float(np.sum((a + b * t ** -c - y) ** 2))
        if err < best[0]:
            best = (err, float(a + b * (target / 100) ** -c))
    return max(0.0, best[1])


def part_predictor(short_min: float, long_min: float) -> dict:
    import numpy as np

    from hwnas.predict.cer import EARLY, CERPredictor

    log = ROOT / "bench" / "results" / "proxy_fidelity.jsonl"
    recs = [json.loads(x) for x in log.read_text().splitlines()] if log.is_file() else []
    if len(recs) < 9:
        print(f"  {len(recs)} fidelity runs: need >= 9 (run --parts fidelity first)")
        return {"n": len(recs)}
    cut = short_min * 60
    final = np.array([r["long_cer"] for r in recs])
    early = np.array([early_point(r, cut)["dev_cer"] for r in recs])
    pred, scaled = [], []
    for i, r in enumerate(recs):
        rest = recs[:i] + recs[i + 1:]
        model = CERPredictor.fit(predictor_records(rest, (cut - 60, cut, cut + 60)), max_depth=2)
        held = predictor_records([r], (cut,))[0]
        pred.append(float(model.predict([ArchConfig.from_dict(r["arch"])],
                                        np.array([[held[k] for k in EARLY]]))[0]))
        ratio = np.mean([x["long_cer"] / early_point(x, cut)["dev_cer"] for x in rest])
        scaled.append(float(early[i] * ratio))
    extrap = [power_law_extrapolation(r, cut, long_min * 60) for r in recs]
    out = {"n": len(recs)}
    print(f"  {len(recs)} architectures, held out one at a time; 20-minute dev CER from:")
    for name, est in (("3-minute CER as is", early), ("3-minute CER x mean ratio", scaled),
                      ("power-law extrapolation", extrap),
                      ("CER predictor (PREDICTED)", pred)):
        est = np.asarray(est)
        mae = float(np.mean(np.abs(est - final)))
        tau = kendall_tau(list(est), list(final))
        out[name] = {"mae": mae, "kendall_tau": tau, "estimates": [float(v) for v in est]}
        print(f"    {name:<27} mean abs error {mae:.3f}  Kendall tau {tau:.3f}")
    return out


def part_determinism(steps: int) -> dict:
    tok = CharTokenizer.for_languages(["en"])
    arch = preset("conformer_xs")
    sets = data(arch.frontend, arch.n_filters)
    cers = [train(arch, sets["train"], sets["dev"], tok,
                  TrainConfig(steps=steps, seed=5)).dev["cer"] for _ in range(2)]
    print(f"  two runs, {steps} steps, seed 5: dev CER {cers[0]:.4f} and {cers[1]:.4f}")
    return {"cers": cers, "identical": cers[0] == cers[1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="presets,determinism,fidelity")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--minutes", type=float, default=3.0, help="short budget (CPU minutes)")
    ap.add_argument("--long-minutes", type=float, default=20.0, dest="long_minutes")
    ap.add_argument("--steps", type=int, default=200, help="determinism part")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_proxy.json")
    args = ap.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for p in [x.strip() for x in args.parts.split(",") if x.strip()]:
        print(p, flush=True)
        t0 = time.time()
        if p == "presets":
            results[p] = part_presets(args.minutes)
        elif p == "fidelity":
            results[p] = part_fidelity(args.n, args.minutes, args.long_minutes)
        elif p == "determinism":
            results[p] = part_determinism(args.steps)
        elif p == "predictor":
            results[p] = part_predictor(args.minutes, args.long_minutes)
        else:
            ap.error(f"unknown part {p!r}")
        print(f"  ({p}: {time.time() - t0:.0f} s)\n", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
