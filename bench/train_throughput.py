"""Does bf16 autocast speed training on this CPU, at equal CER for equal steps?

    python -m bench.train_throughput                 # throughput + CER (~15 min)
    python -m bench.train_throughput --no-cer        # throughput only (~4 min)
    python -m bench.train_throughput --parts c       # torch.compile only (~5 min)
    python -m bench.train_throughput --parts d       # convolution layout (~6 min)

(a) steps per CPU-second of `hwnas train` steps (forward, loss, backward,
    update on the built-in English corpus, small, 4,000-frame batches) for
    conformer_xs and 3 sampled architectures of other families, fp32 against
    bf16 autocast (forward in bf16 where PyTorch's CPU autocast allows it,
    losses in fp32). Each architecture alternates fp32 and bf16 blocks of
    ``--steps`` steps, ``--rounds`` times: the speed-up is the median of the
    rounds' paired ratios, with the rounds' range.
(b) dev CER at equal steps: conformer_xs trained ``--cer-steps`` steps from the
    same seed in each precision, beside a second fp32 seed (what run-to-run
    noise alone moves).
(c) torch.compile (inductor, dynamic shapes) against eager
    for conformer_xs on the same real batches: the CPU seconds compiling
    costs, and seconds per step once compiled (the last ``--compile-steps``).
(d) channels-last convolution weights (what `hwnas train` does on a CPU)
    against the default layout, for the same 4 architectures in alternating
    blocks, and conformer_xs's dev CER after ``--cer-steps`` in both.
The CPU's ISA (AMX, AVX-512 BF16) is printed with the figures: bf16 pays only
where the matrix units exist. Writes bench/results/train_throughput.json.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from bench.harness import ROOT, one_thread, save  # noqa: F401 - first: one thread


def _archs() -> list:
    from hwnas.asr import default_space, preset

    out, seen = [preset("conformer_xs")], {"conformer"}
    for a in default_space().sample_distinct(200, 3):
        if a.encoder not in seen and a.d_model <= 256 and a.num_layers <= 6:
            out.append(a)
            seen.add(a.encoder)
        if len(out) == 4:
            break
    return out


def _steps_per_s(arch, sp, tok, precision: str, steps: int, seed: int) -> float:
    from hwnas.asr.train import TrainConfig, train

    cfg = TrainConfig(steps=steps, seed=seed, eval_every=10**9, eval_utts=1,
                      precision=precision)
    t0 = time.process_time()
    res = train(arch, sp.train, sp.dev, tok, cfg)
    spent = res.cpu_seconds or (time.process_time() - t0)
    return res.steps / spent


def part_a(corpus, steps: int, rounds: int) -> dict:
    out = {}
    for arch in _archs():
        sp = corpus.splits(arch.frontend, arch.n_filters)
        ratios, fp32, bf16 = [], [], []
        for r in range(rounds):
            order = ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32")
            got = {p: _steps_per_s(arch, sp, corpus.tokenizer, p, steps, 0) for p in order}
            fp32.append(got["fp32"])
            bf16.append(got["bf16"])
            ratios.append(got["bf16"] / got["fp32"])
        out[arch.id] = {"arch": f"{arch.encoder}/{arch.decoder} x{arch.num_layers} "
                                f"d{arch.d_model}",
                        "fp32_steps_per_s": float(np.median(fp32)),
                        "bf16_steps_per_s": float(np.median(bf16)),
                        "speedup_median": float(np.median(ratios)),
                        "speedup_range": [float(min(ratios)), float(max(ratios))]}
        v = out[arch.id]
        print(f"    {v['arch']:<34} fp32 {v['fp32_steps_per_s']:6.2f}  bf16 "
              f"{v['bf16_steps_per_s']:6.2f} steps/CPU-s  x{v['speedup_median']:.2f} "
              f"[{v['speedup_range'][0]:.2f}, {v['speedup_range'][1]:.2f}]", flush=True)
    return out


def part_b(corpus, steps: int) -> dict:
    from hwnas.asr import preset
    from hwnas.asr.train import TrainConfig, train

    arch = preset("conformer_xs")
    sp = corpus.splits(arch.frontend, arch.n_filters)
    out = {}
    for name, precision, seed in (("fp32 seed 0", "fp32", 0), ("bf16 seed 0", "bf16", 0),
                                  ("fp32 seed 1", "fp32", 1)):
        cfg = TrainConfig(steps=steps, seed=seed, eval_every=10**9, precision=precision)
        res = train(arch, sp.train, sp.dev, corpus.tokenizer, cfg)
        out[name] = {"dev_cer": res.dev["cer"], "cpu_seconds": res.cpu_seconds}
        print(f"    conformer_xs {name}: {steps} steps, dev CER {res.dev['cer']:.3f} "
              f"({res.cpu_seconds:.0f} CPU s)", flush=True)
    return out


def part_c(corpus, steps: int) -> dict:
    """torch.compile against eager, fp32, conformer_xs: one training step per
    batch of an epoch's first ``3 * steps`` length-bucketed batches."""
    import torch

    from hwnas.asr import preset
    from hwnas.asr.models.model import build
    from hwnas.asr.train import batch_loss, collate
    from hwnas.nn.fit import length_batches

    arch = preset("conformer_xs").replace(vocab_size=corpus.tokenizer.vocab_size)
    sp = corpus.splits(arch.frontend, arch.n_filters)
    batches = length_batches(sp.train.lengths(), 4000, np.random.default_rng(0))[:3 * steps]
    data = [collate(sp.train, b, corpus.tokenizer, sp.train.stats()) for b in batches]
    out = {}
    for name in ("eager", "compiled"):
        torch.manual_seed(0)
        model = build(arch)
        run = torch.compile(model, dynamic=True) if name == "compiled" else model
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        per = []
        for batch in data:
            t0 = time.process_time()
            loss = batch_loss(run, arch, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            per.append(time.process_time() - t0)
        out[name] = {"total_cpu_s": round(sum(per), 2),
                     "steady_s_per_step": round(float(np.mean(per[-steps:])), 4)}
        print(f"    conformer_xs {name:<8} {out[name]['total_cpu_s']:7.1f} CPU s for "
              f"{len(per)} steps; {out[name]['steady_s_per_step']:.3f} s/step over the last "
              f"{steps}", flush=True)
    out["compile_cost_cpu_s"] = round(out["compiled"]["total_cpu_s"]
                                      - out["eager"]["total_cpu_s"], 1)
    out["steady_speedup"] = round(out["eager"]["steady_s_per_step"]
                                  / out["compiled"]["steady_s_per_step"], 3)
    return out


def _steps(arch, model, opt, batches: list) -> float:
    """CPU seconds of one training step per batch (forward, loss, backward, update)."""
    from hwnas.asr.train import batch_loss

    model.train()
    t0 = time.process_time()
    for batch in batches:
        loss = batch_loss(model, arch, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.process_time() - t0


def _flops(arch, batches: list) -> float:
    """Floating-point operations of training steps on ``batches`` (forward
    and backward; torch's FlopCounterMode counts matrix products and
    convolutions), on a fresh copy of the model."""
    from torch.utils.flop_counter import FlopCounterMode

    from hwnas.asr.models.model import build
    from hwnas.asr.train import batch_loss

    model = build(arch)
    with FlopCounterMode(display=False) as counter:
        for batch in batches:
            batch_loss(model, arch, batch).backward()
    return float(counter.get_total_flops())


def _mm_gflops(seconds: float = 2.0) -> float:
    """This CPU's fp32 matrix-product rate on one thread, for layer-sized
    products ((1024 x 256) @ (256 x 1024)): what training steps that are
    mostly matrix products can approach, and not pass."""
    import torch

    a, b = torch.randn(1024, 256), torch.randn(256, 1024)
    torch.mm(a, b)
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        torch.mm(a, b)
        n += 1
    return 2 * 1024 * 256 * 1024 * n / (time.process_time() - t0) / 1e9


def part_d(corpus, steps: int, rounds: int, cer_steps: int) -> dict:
    """Channels-last convolution weights (nn.fit.training_layout, what
    `hwnas train` does on a CPU) against the default layout, fp32: two copies
    of each architecture from one seed take the same real batches in
    alternating blocks of ``steps``; the speed-up is the median of the
    rounds' paired ratios. conformer_xs then goes on to ``cer_steps`` in both
    layouts, beside a second seed in the default one, for dev CER at equal
    steps."""
    import torch

    from hwnas.asr.models.model import build
    from hwnas.asr.train import collate, evaluate
    from hwnas.nn.fit import length_batches, training_layout

    cpu = torch.device("cpu")
    out: dict = {"mm_gflop_per_s": _mm_gflops()}
    print(f"    fp32 matrix products on one thread: {out['mm_gflop_per_s']:.0f} GFLOP/CPU-s",
          flush=True)
    for k, arch in enumerate(_archs()):
        arch = arch.replace(vocab_size=corpus.tokenizer.vocab_size)
        sp = corpus.splits(arch.frontend, arch.n_filters)
        norm = sp.train.stats()
        batches = length_batches(sp.train.lengths(), 4000, np.random.default_rng(0))
        data = (collate(sp.train, b, corpus.tokenizer, norm) for b in itertools.cycle(batches))
        runs = {}
        for name, seed, layout in (("default", 0, False), ("channels-last", 0, True),
                                   ("default seed 1", 1, False)):
            torch.manual_seed(seed)
            model = build(arch)
            model = training_layout(model, cpu) if layout else model
            runs[name] = (model, torch.optim.AdamW(model.parameters(), 1e-3))

        def block(name: str, batch: list, arch=arch, runs=runs) -> float:
            return _steps(arch, *runs[name], batch)

        times: dict[str, list[float]] = {"default": [], "channels-last": []}
        counted = []
        for r in range(rounds + 1):   # round 0 warms both up, and is not counted
            batch = [next(data) for _ in range(steps)]
            if r:
                counted += batch
            for name in (("default", "channels-last") if r % 2 else ("channels-last", "default")):
                spent = block(name, batch)
                if r:
                    times[name].append(spent)
        ratios = [a / b for a, b in zip(times["default"], times["channels-last"])]
        v = out[arch.id] = {
            "arch": f"{arch.encoder}/{arch.decoder} x{arch.num_layers} d{arch.d_model}, "
                    f"{arch.subsampling}",
            "default_steps_per_s": steps * rounds / sum(times["default"]),
            "channels_last_steps_per_s": steps * rounds / sum(times["channels-last"]),
            "speedup_median": float(np.median(ratios)),
            "speedup_range": [float(min(ratios)), float(max(ratios))],
            "gflop_per_step": _flops(arch, counted) / len(counted) / 1e9}
        v["channels_last_gflop_per_s"] = v["gflop_per_step"] * v["channels_last_steps_per_s"]
        print(f"    {v['arch']:<40} default {v['default_steps_per_s']:6.2f}  channels-last "
              f"{v['channels_last_steps_per_s']:6.2f} steps/CPU-s  x{v['speedup_median']:.2f} "
              f"[{v['speedup_range'][0]:.2f}, {v['speedup_range'][1]:.2f}]; "
              f"{v['gflop_per_step']:.1f} GFLOP/step, {v['channels_last_gflop_per_s']:.0f} "
              "GFLOP/CPU-s", flush=True)
        if k or not cer_steps:
            continue
        done = steps * (rounds + 1)
        rest = [next(data) for _ in range(max(0, cer_steps - done))]
        batches_seed1 = [next(data) for _ in range(done)]   # seed 1 saw no batch yet
        block("default", rest)
        block("channels-last", rest)
        block("default seed 1", batches_seed1 + rest)
        idx = np.arange(min(200, len(sp.dev)))
        v["dev_cer_at_steps"] = max(cer_steps, done)
        for name, (model, _) in runs.items():
            v[f"dev_cer_{name.replace(' ', '_')}"] = evaluate(
                model, arch, sp.dev, corpus.tokenizer, norm, idx)["cer"]
        print(f"      dev CER after {v['dev_cer_at_steps']} steps: default "
              f"{v['dev_cer_default']:.3f}, channels-last {v['dev_cer_channels-last']:.3f}, "
              f"default with seed 1 {v['dev_cer_default_seed_1']:.3f}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=15, help="steps per timed block (default 15)")
    p.add_argument("--rounds", type=int, default=3, help="fp32/bf16 pairs (default 3)")
    p.add_argument("--cer-steps", type=int, default=300)
    p.add_argument("--no-cer", action="store_true")
    p.add_argument("--parts", default="abd",
                   help="which parts: any of a, b, c, d (default abd)")
    p.add_argument("--compile-steps", type=int, default=10, dest="compile_steps")
    p.add_argument("--workspace", default=str(ROOT / "runs" / "bench-workspace"))
    args = p.parse_args()
    one_thread()
    from hwnas.adapters.host import cpu_descriptor
    from hwnas.training.prepare import open_corpus

    corpus = open_corpus(Path(args.workspace))
    corpus.prepare()
    isa = cpu_descriptor()["isa"]
    print(f"CPU: {cpu_descriptor()['model_name']}; ISA: {', '.join(isa)}")
    # the ISA is the host's of parts a and b; part c keeps its own host's
    results: dict = {"isa": isa} if set(args.parts) & {"a", "b"} else {}
    if "a" in args.parts:
        print(f"(a) steps per CPU-second, fp32 vs bf16 autocast ({args.rounds} rounds of "
              f"{args.steps} steps each):")
        results["a"] = part_a(corpus, args.steps, args.rounds)
    if "b" in args.parts and not args.no_cer:
        print(f"(b) dev CER at equal steps ({args.cer_steps}):")
        results["b"] = part_b(corpus, args.cer_steps)
    if "c" in args.parts:
        print("(c) torch.compile (inductor, dynamic shapes) against eager, fp32:")
        results["c"] = {**part_c(corpus, args.compile_steps),
                        "cpu": cpu_descriptor()["model_name"], "isa": isa}
    if "d" in args.parts:
        print(f"(d) steps per CPU-second, channels-last convolution weights against the "
              f"default layout ({args.rounds} rounds of {args.steps} steps each):")
        results["d"] = {**part_d(corpus, args.steps, args.rounds,
                                 0 if args.no_cer else args.cer_steps),
                        "cpu": cpu_descriptor()["model_name"], "isa": isa}
    import json

    from bench.harness import RESULTS

    kept = RESULTS / "train_throughput.json"   # parts not run this time stay as they were
    earlier = json.loads(kept.read_text()) if kept.is_file() else {}
    print(f"written: {save('train_throughput.json', {**earlier, **results})}")


if __name__ == "__main__":
    main()
