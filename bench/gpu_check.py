"""The GPU check: what hwnas does on one CUDA GPU, in one command (~10 min).

It runs from a checkout and a pack built here, on a GPU machine that may
have no internet and another torch. The steps:

  1. Here (with PyPI): build the pack. It holds the built-in English corpus's
     features (500 training and 100 dev utterances, log-mel 80, float16) and
     its tokenizer, plus wheels of what the GPU image may lack (jiwer,
     rapidfuzz; CPython 3.12, manylinux). About 20 MB; put it inside the
     checkout under an ignored folder so it travels with it.

         python -m bench.gpu_check pack .gpu-check

  2. There, from the checkout's root (no install: PYTHONPATH):

         python3 -m pip install --no-index --find-links .gpu-check/wheels jiwer
         PYTHONPATH=. python3 -m bench.gpu_check run --pack .gpu-check --out gpu_check.json

What `run` measures, as a table on stdout and in the JSON file:
  (a) the CUDA adapter's contract (the shipped suite, `pytest --pyargs
      hwnas.testing.adapter_contract`) with the torch runtime and with ONNX
      Runtime's CUDA provider (its tests say why they skip where that
      provider is not installed); then 20 sampled architectures timed with
      CUDA events: p50 and its 95% interval per architecture, and ONNX
      Runtime's CUDA provider beside it where installed.
  (b) training throughput, CPU (one thread, as the search's budgets count
      it) against the GPU in fp32 and bf16, for conformer_xs and a 6-layer
      Conformer: steps per second, and dev CER at equal steps (at
      ``--cpu-steps`` for all three, at ``--gpu-steps`` for the two GPU runs).
  (c) the supernet's rank fidelity on a GPU, in bench/supernet_space.toml's
      Conformer space (the space of the README's fidelity figures): the
      supernet trained ``--supernet-s`` device seconds (default 300); then
      ``--fidelity-archs`` sampled architectures (default 20) each trained
      stand-alone ``--standalone-steps`` steps (the reference ranking), and
      scored with inherited weights, after a ``--finetune-steps`` fine-tune,
      and, as the control, trained from scratch for the same steps. Kendall
      tau of each against the stand-alone dev CER.

A GPU command may be limited to 10 minutes: ``--parts a``, ``--parts b``,
``--parts c`` run the parts separately (each writes its own figures).

`run --dry-run` runs every part on the CPU in seconds, at toy sizes (what the
test suite does, so the script cannot rot): every code path but the GPU's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import ROOT  # noqa: F401 - first: one thread for the CPU figures

TRAIN_UTTS, DEV_UTTS = 500, 100
FRONTEND, N_FILTERS = "logmel", 80
WHEELS = ("jiwer", "rapidfuzz")


# --- pack: built here ---------------------------------------------------------------
def pack(out: Path, workspace: Path) -> None:
    from hwnas.data.tokens import CharTokenizer
    from hwnas.training.prepare import builtin_features

    sets = builtin_features(workspace, ["en"], "small", 0, FRONTEND, N_FILTERS)
    write_pack(out, sets[("en", "train")], sets[("en", "dev")],
               CharTokenizer.for_languages(["en"]))
    r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(out / "wheels"),
                        "--only-binary=:all:", "--python-version", "3.12", "--platform",
                        "manylinux_2_17_x86_64", *WHEELS], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"pip download failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"pack written to {out} ({size / 1e6:.1f} MB): features, tokenizer, wheels")


def write_pack(out: Path, train: Any, dev: Any, tok: Any) -> None:
    """The first utterances of ``train`` and ``dev`` (feature sets) and the
    tokenizer, as `run` reads them."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    for split, fs, n in (("train", train, TRAIN_UTTS), ("dev", dev, DEV_UTTS)):
        n = min(n, len(fs))
        end = int(fs.offsets[n])
        np.savez_compressed(out / f"{split}.npz", frames=np.asarray(fs.frames[:end]),
                            offsets=fs.offsets[: n + 1], ids=np.array(fs.ids[:n]),
                            texts=np.array(fs.texts[:n]))
    (out / "tokenizer.json").write_text(tok.to_json())


def _load_pack(folder: Path) -> tuple[Any, Any, Any]:
    import numpy as np

    from hwnas.data.tokens import CharTokenizer
    from hwnas.training.features import FeatureSet

    out = []
    for split in ("train", "dev"):
        path = folder / f"{split}.npz"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: build the pack with "
                             f"`python -m bench.gpu_check pack {folder}` where PyPI is reachable")
        with np.load(path) as z:
            out.append(FeatureSet(f"pack:{split}", [str(i) for i in z["ids"]],
                                  [str(t) for t in z["texts"]], z["frames"], z["offsets"]))
    tok = CharTokenizer.from_json((folder / "tokenizer.json").read_text())
    return out[0], out[1], tok


# --- (a) the adapter's contract and 20 architectures timed ------------------------------
def contract_backend(tmp_path: Path, request: Any) -> Any:
    """The backend the shipped contract suite runs against (runtime from
    $HWNAS_GPU_CHECK_RUNTIME): the CUDA adapter on this machine's first GPU."""
    from hwnas.adapters.cuda import CUDAAdapter
    from hwnas.testing.adapter_contract import Backend, onnx_artifact

    runtime = os.environ.get("HWNAS_GPU_CHECK_RUNTIME", "torch")
    adapter = CUDAAdapter("gpu-check", CUDAAdapter.validate_options({"runtime": runtime}))
    if adapter.check() is not None:
        return Backend(adapter, None)
    if runtime == "torch":
        from hwnas.asr import preset
        from hwnas.profiling.measure import export_for

        return Backend(adapter, export_for(preset("conformer_xs").replace(num_layers=1),
                                           "torch", Path(tmp_path)))
    return Backend(adapter, onnx_artifact(tmp_path))


def contract(runtime: str) -> dict[str, Any]:
    env = {**os.environ, "HWNAS_CONTRACT_BACKEND": "bench.gpu_check:contract_backend",
           "HWNAS_GPU_CHECK_RUNTIME": runtime,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                        "--pyargs", "hwnas.testing.adapter_contract"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    lines = r.stdout.strip().splitlines()
    return {"runtime": runtime, "exit": r.returncode, "summary": lines[-1] if lines else "",
            "skips": [ln for ln in lines if ln.startswith("SKIPPED")][:3],
            "seconds": round(time.perf_counter() - t0, 1)}


def profile(n: int, device: str) -> list[dict[str, Any]]:
    """``n`` sampled architectures, each timed by the adapter's own plan (CUDA
    events after warm-up on a GPU), with ONNX Runtime's CUDA provider beside
    it where installed."""
    import tempfile

    from hwnas.adapters.records import Plan
    from hwnas.asr import default_space
    from hwnas.profiling.measure import export_for, plan_for

    plan = Plan(warmup_runs=5, min_runs=20, min_seconds=0.3, retries=1, max_ci=0.05)
    adapters = _profile_adapters(device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in default_space().sample_distinct(n, seed=0):
            row: dict[str, Any] = {"arch_id": arch.id, "family": f"{arch.encoder}/{arch.decoder}"}
            for name, adapter, fmt in adapters:
                try:
                    art = export_for(arch, fmt, Path(tmp) / name)
                    h = adapter.prepare(art)
                    m = adapter.measure(h, plan_for(arch, plan), arch_id=arch.id,
                                        graph=arch.graph, model_bytes=0)
                    adapter.release(h)
                    lat = m.latency
                    row[name] = {"p50_ms": lat["p50_ms"],
                                 "ci": [lat.get("p50_ci_lo"), lat.get("p50_ci_hi")],
                                 "flags": m.flags}
                except Exception as e:   # noqa: BLE001 - one architecture's failure is a row
                    row[name] = {"error": str(e).splitlines()[0][:160]}
            rows.append(row)
    for _, adapter, _ in adapters:
        adapter.close()
    return rows


def _profile_adapters(device: str) -> list[tuple[str, Any, str]]:
    if device == "cpu":
        from hwnas.adapters.cpu import CPUAdapter

        opts = CPUAdapter.validate_options({"runtime": "torch", "threads": 1, "reference": ""})
        return [("torch", CPUAdapter("cpu", opts), "torch")]
    from hwnas.adapters.cuda import CUDAAdapter

    out = [("torch", CUDAAdapter("gpu", CUDAAdapter.validate_options({"runtime": "torch"})),
            "torch")]
    ort = CUDAAdapter("gpu-ort", CUDAAdapter.validate_options({"runtime": "onnxruntime"}))
    if ort.check() is None:
        out.append(("onnxruntime", ort, "onnx"))
    return out


# --- (b) training throughput and CER at equal steps -----------------------------------
def training(train_set: Any, dev_set: Any, tok: Any, device: str, cpu_steps: int,
             gpu_steps: int) -> list[dict[str, Any]]:
    import torch

    from hwnas.asr import preset
    from hwnas.asr.train import TrainConfig, train

    rows = []
    for name, arch in (("conformer_xs", preset("conformer_xs")),
                       ("conformer 6 layers", preset("conformer_xs").replace(num_layers=6))):
        runs = [("cpu fp32", "cpu", "fp32", cpu_steps)]
        if device != "cpu":
            bf16 = torch.cuda.is_bf16_supported()
            runs += [("gpu fp32", device, "fp32", gpu_steps),
                     *([("gpu bf16", device, "bf16", gpu_steps)] if bf16 else [])]
        else:   # the CPU stands in for the GPU: the same code path, in seconds
            runs += [("gpu fp32 (cpu stand-in)", "cpu", "fp32", gpu_steps)]
        for label, dev, precision, steps in runs:
            cfg = TrainConfig(steps=steps, seed=0, device=dev, precision=precision,
                              eval_every=cpu_steps, eval_utts=DEV_UTTS)
            t0 = time.perf_counter()
            res = train(arch, train_set, dev_set, tok, cfg)
            wall = time.perf_counter() - t0
            at_cpu = next((p["dev_cer"] for p in res.curve if p["step"] == cpu_steps), None)
            train_s = res.cpu_seconds   # the run's own clock (CPU s, or device s), no evals
            rows.append({"arch": name, "run": label, "device": res.device, "steps": res.steps,
                         "precision": res.precision, "train_s": train_s,
                         "steps_per_s": round(res.steps / train_s, 2) if train_s else None,
                         "wall_s": round(wall, 1), f"dev_cer_at_{cpu_steps}": at_cpu,
                         "dev_cer_at_end": res.curve[-1]["dev_cer"]})
            rate = rows[-1]["steps_per_s"]   # None: the run's clock rounded to 0 s
            use = res.device
            gpu = (f", {use['gpu_memory_peak_mb']:.0f} MB peak" if "gpu_memory_peak_mb" in use
                   else "") + (f", card {use['gpu_util_mean_pct']:.0f}% busy"
                               if "gpu_util_mean_pct" in use else "")
            print(f"  {name:<18} {label:<24} {'-' if rate is None else f'{rate:.2f}':>8} "
                  f"steps/s, dev CER "
                  f"{at_cpu if at_cpu is None else round(at_cpu, 3)} at {cpu_steps} steps, "
                  f"{res.curve[-1]['dev_cer']:.3f} at {res.steps}{gpu}", flush=True)
    return rows


# --- (c) supernet rank fidelity on the device ------------------------------------------
def fidelity(train_set: Any, dev_set: Any, tok: Any, device: str, supernet_s: float,
             n: int, standalone_steps: int, finetune_steps: int,
             supernet_steps: int | None = None) -> dict[str, Any]:
    """Kendall tau of inherited, fine-tuned and from-scratch (control) dev CER
    against stand-alone dev CER over ``n`` architectures of the Conformer
    space, with the supernet trained ``supernet_s`` device seconds (or
    ``supernet_steps`` steps) on ``device``."""
    from hwnas.asr import default_space
    from hwnas.asr.supernet.elastic import ElasticSupernet
    from hwnas.asr.supernet.sandwich import SupernetConfig, train_supernet
    from hwnas.asr.supernet.score import score
    from hwnas.asr.train import TrainConfig, train
    from hwnas.predict.metrics import kendall_tau
    from hwnas.training.prepare import Splits

    space = default_space().with_toml(ROOT / "bench" / "supernet_space.toml") \
        .with_choices({"encoder": ["conformer"]})
    splits = Splits(train_set, dev_set, {}, {})
    net = ElasticSupernet(space, "conformer", tok.vocab_size, seed=0)
    budget = {"steps": supernet_steps} if supernet_steps else {"cpu_seconds": supernet_s}
    t0 = time.perf_counter()
    res = train_supernet(net, lambda fe, nf: splits, tok,
                         SupernetConfig(seed=0, device=device, eval_every=10**9,
                                        eval_utts=DEV_UTTS, **budget))
    print(f"  supernet: {res.steps} steps in {res.cpu_seconds:.0f} s of "
          f"{res.device.get('device_name')} ({res.precision}), "
          f"{time.perf_counter() - t0:.0f} s wall", flush=True)
    archs = [a.replace(vocab_size=tok.vocab_size) for a in space.sample_distinct(n, seed=1)]
    rows = []
    for i, arch in enumerate(archs):
        alone = train(arch, train_set, dev_set, tok,
                      TrainConfig(steps=standalone_steps, seed=0, device=device,
                                  eval_every=10**9, eval_utts=DEV_UTTS)).dev["cer"]
        control = train(arch, train_set, dev_set, tok,
                        TrainConfig(steps=finetune_steps, seed=0, device=device,
                                    eval_every=10**9, eval_utts=DEV_UTTS)).dev["cer"]
        inherited = score(net, arch, splits, tok, device=device)["cer"]
        tuned = score(net, arch, splits, tok, finetune_steps=finetune_steps,
                      device=device)["cer"]
        rows.append({"arch_id": arch.id, "standalone": alone, "inherited": inherited,
                     "finetuned": tuned, "control": control})
        print(f"  {i + 1}/{len(archs)} {arch.id}: stand-alone {alone:.3f}, inherited "
              f"{inherited:.3f}, fine-tuned {tuned:.3f}, control {control:.3f}", flush=True)
    alone = [r["standalone"] for r in rows]
    tau = {k: kendall_tau([r[k] for r in rows], alone)
           for k in ("inherited", "finetuned", "control")}
    return {"supernet": {"steps": res.steps, "seconds": res.cpu_seconds,
                         "precision": res.precision, **res.device},
            "standalone_steps": standalone_steps, "finetune_steps": finetune_steps,
            "kendall_tau": tau, "archs": rows}


def run(args: argparse.Namespace) -> int:
    import torch

    if args.dry_run:   # every part on the CPU at toy sizes: the code paths, not figures
        args.device, args.archs, args.cpu_steps, args.gpu_steps = "cpu", 2, 2, 4
        args.fidelity_archs, args.standalone_steps, args.finetune_steps = 3, 2, 1
        args.supernet_steps = 2
    if args.device != "cpu" and not torch.cuda.is_available():
        print(f"no CUDA device here (torch {torch.__version__}); `--device cpu` runs the "
              f"same parts on the CPU", file=sys.stderr)
        return 2
    train_set, dev_set, tok = _load_pack(Path(args.pack))
    env = {"torch": torch.__version__, "python": sys.version.split()[0],
           "gpu": torch.cuda.get_device_name(0) if args.device != "cpu" else None}
    print(f"hwnas GPU check: torch {env['torch']}, {env['gpu'] or 'CPU only'}", flush=True)
    out: dict[str, Any] = {"env": env, "parts": args.parts}
    if "a" in args.parts and not args.no_contract:
        out["contract"] = [contract(rt) for rt in ("torch", "onnxruntime")]
        for c in out["contract"]:
            print(f"(a) contract, {c['runtime']}: {c['summary']}", flush=True)
    if "a" in args.parts:
        out["profile"] = profile(args.archs, args.device)
        print(f"(a) {len(out['profile'])} architectures timed:")
        for r in out["profile"]:
            cells = [f"{k} {v['p50_ms']:.3f} ms [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]"
                     if "p50_ms" in v else f"{k} {v['error']}"
                     for k, v in r.items() if isinstance(v, dict)]
            print(f"  {r['arch_id']} {r['family']:<24} " + "; ".join(cells))
    if "b" in args.parts:
        print("(b) training:", flush=True)
        out["training"] = training(train_set, dev_set, tok, args.device, args.cpu_steps,
                                   args.gpu_steps)
    if "c" in args.parts:
        print("(c) supernet rank fidelity:", flush=True)
        out["supernet"] = fidelity(train_set, dev_set, tok, args.device, args.supernet_s,
                                   args.fidelity_archs, args.standalone_steps,
                                   args.finetune_steps, args.supernet_steps)
        tau = out["supernet"]["kendall_tau"]
        print("  Kendall tau against stand-alone: " + ", ".join(
            f"{k} {v:.2f}" for k, v in tau.items()), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2, sort_keys=True, default=str) + "\n")
        print(f"written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="build the pack here (features, tokenizer, wheels)")
    p.add_argument("out", type=Path)
    p.add_argument("--workspace", type=Path, default=Path("."),
                   help="where the built-in corpus is built (default .)")
    r = sub.add_parser("run", help="run the check (on the GPU machine)")
    r.add_argument("--pack", default=".gpu-check")
    r.add_argument("--out", help="JSON file for the figures")
    r.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    r.add_argument("--archs", type=int, default=20)
    r.add_argument("--cpu-steps", type=int, default=60, dest="cpu_steps")
    r.add_argument("--gpu-steps", type=int, default=600, dest="gpu_steps")
    r.add_argument("--no-contract", action="store_true", dest="no_contract")
    r.add_argument("--parts", default="abc", help="which parts: any of a, b, c (default abc)")
    r.add_argument("--supernet-s", type=float, default=300.0, dest="supernet_s",
                   help="(c) device seconds of supernet training (default 300)")
    r.add_argument("--supernet-steps", type=int, dest="supernet_steps",
                   help="(c) train the supernet this many steps instead")
    r.add_argument("--fidelity-archs", type=int, default=20, dest="fidelity_archs")
    r.add_argument("--standalone-steps", type=int, default=150, dest="standalone_steps")
    r.add_argument("--finetune-steps", type=int, default=30, dest="finetune_steps")
    r.add_argument("--dry-run", action="store_true", dest="dry_run",
                   help="every part on the CPU at toy sizes, in seconds (no figures)")
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        pack(args.out, args.workspace)
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
