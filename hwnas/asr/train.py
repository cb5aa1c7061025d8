"""Short-budget training of one architecture, with dev CER along the way.

Budgets: ``steps`` (deterministic: the same seed gives the same weights and
CER) or ``cpu_seconds``: on a CPU, CPU time of this process, one thread --
what the search compares architectures at; wall time would charge a trial
for other work on the machine. On an accelerator (``device``) the same field
counts device seconds: wall time with the device synchronised. Batches hold
up to ``batch_frames`` feature frames, utterances of similar length
together, in an order fixed by the seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.asr import ArchConfig
from hwnas.asr.decode import (
    Lexicon,
    attention_beam,
    ctc_beam,
    ctc_greedy,
    ctc_lexicon_beam,
    rnnt_beam,
    rnnt_greedy,
    snap_to_lexicon,
)
from hwnas.asr.losses import CTC_WEIGHT, attention_loss, ctc_loss, rnnt_loss
from hwnas.asr.models.model import build
from hwnas.data.tokens import CharTokenizer, error_rates
from hwnas.errors import first_line
from hwnas.nn.fit import (
    Clock,
    as_fp32,
    check_budget,
    check_clock,
    check_precision,
    clock_kind,
    device_record,
    forward_precision,
    length_batches,
    loss_scaler,
    next_batch,
    optimiser,
    resolve_precision,
    restore_snapshot,
    run_budget,
    save_snapshot,
    to_device,
    train_device,
    training_layout,
    update,
)
from hwnas.nn.gpu_use import GpuUse
from hwnas.state import read_json, write_json
from hwnas.training.features import FeatureSet, spec_augment
from hwnas.training.runs import RESULT


@dataclass
class TrainConfig:
    steps: int | None = None            # stop after this many updates, or
    cpu_seconds: float | None = None    # after this much CPU time
    min_steps: int = 0                  # ... and at least this many updates (a floor that
    max_cpu_seconds: float | None = None  # gives slow models a fair rung), up to this
    batch_frames: int = 4000            # feature frames per batch (~40 s of audio): in a
                                        # 3-minute budget more updates beat bigger batches
                                        # (conformer_xs test-clean CER 0.34 at 12,000, 0.19
                                        # at 4,000; bench/proxy_fidelity.py)
    lr: float = 2e-3                    # peak learning rate (AdamW)
    warmup: int = 100                   # linear warm-up steps
    seed: int = 0
    specaug: bool = True
    eval_every: int = 100               # steps between dev evaluations
    eval_utts: int = 100                # dev utterances scored at each evaluation
    snapshot: Path | None = None        # file the run is saved to as it goes (resumable)
    snapshot_every_s: float = 60.0      # CPU seconds between snapshots
    precision: str = "auto"             # fp32 on CPUs, bf16 on GPUs that have it; or fp32,
                                        # bf16, fp16 (GPUs): autocast forward (nn/fit.py)
    device: str | None = None           # auto, cpu, cuda, cuda:N (default: $HWNAS_TRAIN_DEVICE,
                                        # else auto)

    def __post_init__(self) -> None:
        check_budget(self.steps, self.cpu_seconds)
        check_precision(self.precision)
        if self.min_steps and self.cpu_seconds is None:
            raise ValueError("a floor of updates (min_steps) stretches a CPU-time budget only")
        if self.max_cpu_seconds is not None and self.cpu_seconds is not None \
                and self.max_cpu_seconds < self.cpu_seconds:
            raise ValueError("max_cpu_seconds is below the CPU-time budget")



@dataclass
class TrainResult:
    arch: dict[str, Any]
    steps: int
    cpu_seconds: float
    curve: list[dict[str, float]] = field(default_factory=list)  # step, cpu_s, loss, dev_cer
    dev: dict[str, float] = field(default_factory=dict)
    precision: str = "fp32"
    device: dict[str, Any] = field(default_factory=dict)   # nn.fit.device_record + GpuUse
    tests: dict[str, dict[str, float]] = field(default_factory=dict)
    model: Any = None
    norm: tuple[np.ndarray, np.ndarray] | None = None
    state: dict[str, Any] | None = None  # to continue training (successive halving)

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch, "steps": self.steps, "cpu_seconds": self.cpu_seconds,
                "curve": self.curve, "dev": self.dev, "tests": self.tests,
                "precision": self.precision, **self.device}


def collate(fs: FeatureSet, idx: np.ndarray, tok: CharTokenizer, norm: tuple
            ) -> tuple[torch.Tensor, ...]:
    mean, std = norm
    feats = [(fs.feats(i).astype(np.float32) - mean) / std for i in idx]
    T = max(len(f) for f in feats)
    x = np.zeros((len(idx), T, feats[0].shape[1]), np.float32)
    for b, f in enumerate(feats):
        x[b, : len(f)] = f
    ys = [tok.encode(fs.texts[i]) or [1] for i in idx]
    U = max(len(y) for y in ys)
    y = np.zeros((len(idx), U), np.int64)
    for b, t in enumerate(ys):
        y[b, : len(t)] = t
    return (torch.from_numpy(x), torch.tensor([len(f) for f in feats]), torch.from_numpy(y),
            torch.tensor([len(t) for t in ys]))


def batch_loss(model: torch.nn.Module, arch: ArchConfig, batch: tuple,
               precision: str = "fp32") -> torch.Tensor:
    """The training loss of ``model`` (``arch``'s, or a compiled wrapper of
    it) on one collated batch, its forward at ``precision``."""
    x, xl, y, yl = batch
    with forward_precision(precision, x.device.type):
        out = model(x, xl, y if arch.decoder != "ctc" else None)
    return task_loss(arch, as_fp32(out), y, yl)


def task_loss(arch: ArchConfig, out: dict[str, torch.Tensor], y: torch.Tensor,
              yl: torch.Tensor) -> torch.Tensor:
    """The training loss of ``arch`` given its forward's outputs ``out``."""
    el = out["enc_lengths"].clamp(min=1)
    if arch.decoder == "rnnt":
        return rnnt_loss(out["rnnt_logits"], el, y, yl)
    ctc = ctc_loss(out["ctc_logits"], el, y, yl)
    if arch.decoder == "ctc":
        return ctc
    return CTC_WEIGHT * ctc + (1 - CTC_WEIGHT) * attention_loss(out["att_logits"], y, yl)


LEXICON_BEAM = 8  # width of the lexicon-constrained search unless a wider --beam is given


@torch.no_grad()
def transcribe(model: torch.nn.Module, arch: ArchConfig, fs: FeatureSet, tok: CharTokenizer,
               norm: tuple, idx: np.ndarray | None = None, batch_frames: int = 20000,
               beam: int = 1, lexicon: Lexicon | None = None) -> list[str]:
    """Transcripts, greedy (``beam`` 1) or by beam search of that width.

    One rule per decoder, whatever the batching: RNN-T decodes with its
    joint network; attention decoders decode greedily with their joint CTC
    head (cheap, and independent of how utterances fall into batches) and
    with the attention decoder under ``beam`` > 1. With ``lexicon``, the CTC
    head's lexicon-constrained beam search of width ``beam`` (models without
    a CTC head, i.e. RNN-T, have none)."""
    if lexicon is not None and getattr(model, "ctc", None) is None:
        raise ValueError(f"lexicon-constrained decoding needs a CTC head; "
                         f"a {arch.decoder} model has none")
    model.eval()
    device = next(model.parameters()).device
    idx = np.arange(len(fs)) if idx is None else idx
    hyps: dict[int, str] = {}
    lengths = fs.lengths()
    for b in length_batches(lengths[idx], batch_frames, np.random.default_rng(0)):
        sel = idx[b]
        x, xl, _, _ = to_device(collate(fs, sel, tok, norm), device)
        enc, el = model.encode(x, xl)
        if lexicon is not None:
            lp = model.ctc(enc).log_softmax(-1).cpu().numpy()
            seqs = [ctc_lexicon_beam(lp[j, :int(el[j])], lexicon, beam) for j in range(len(sel))]
        elif beam > 1:
            seqs = [_beam_one(model, arch, enc[j: j + 1], int(el[j]), beam)
                    for j in range(len(sel))]
        elif arch.decoder == "rnnt":
            seqs = rnnt_greedy(model, enc, el)
        else:
            seqs = ctc_greedy(model.ctc(enc), el)
        for i, s in zip(sel, seqs):
            hyps[int(i)] = tok.decode(s)
    return [hyps[int(i)] for i in idx]


def _beam_one(model: torch.nn.Module, arch: ArchConfig, enc: torch.Tensor, n: int,
              beam: int) -> list[int]:
    if arch.decoder == "rnnt":
        return rnnt_beam(model, enc, n, beam)
    if arch.decoder in ("las", "transformer"):
        return attention_beam(model, enc, n, beam)
    return ctc_beam(model.ctc(enc[0, :n]).log_softmax(-1).cpu().numpy(), beam)


def evaluate(model: torch.nn.Module, arch: ArchConfig, fs: FeatureSet, tok: CharTokenizer,
             norm: tuple, idx: np.ndarray | None = None,
             lexicon: list[str] | None = None, beam: int = 1) -> dict[str, float]:
    idx = np.arange(len(fs)) if idx is None else idx
    hyps = transcribe(model, arch, fs, tok, norm, idx, beam=beam)
    r = error_rates([fs.texts[i] for i in idx], hyps)
    if len(fs.parts) > 1:   # a multilingual set: each language's rates too
        r["by_lang"] = by_part(fs, idx, hyps)
    if lexicon:
        refs = [fs.texts[i] for i in idx]
        r["wer_lexicon"] = error_rates(refs, [snap_to_lexicon(h, lexicon) for h in hyps])["wer"]
        if getattr(model, "ctc", None) is not None:
            lex = transcribe(model, arch, fs, tok, norm, idx, beam=max(beam, LEXICON_BEAM),
                             lexicon=Lexicon(lexicon, tok.encode))
            r["wer_lexicon_beam"] = error_rates(refs, lex)["wer"]
    return r


@torch.no_grad()
def dev_loss(model: torch.nn.Module, arch: ArchConfig, fs: FeatureSet, tok: CharTokenizer,
             norm: tuple, idx: np.ndarray | None = None, batch_frames: int = 20000) -> float:
    """The training loss on ``idx`` without dropout: per target token, averaged
    over utterances (attention decoders: over the tokens of each batch).
    Unlike CER it still orders models that emit only blanks."""
    model.eval()
    device = next(model.parameters()).device
    idx = np.arange(len(fs)) if idx is None else idx
    total = 0.0
    for b in length_batches(fs.lengths()[idx], batch_frames, np.random.default_rng(0)):
        batch = to_device(collate(fs, idx[b], tok, norm), device)
        total += float(batch_loss(model, arch, batch)) * len(b)
    return total / len(idx)


def by_part(fs: FeatureSet, idx: np.ndarray, hyps: list[str]) -> dict[str, dict[str, float]]:
    """Error rates of each part (language) of ``fs`` over the evaluated ``idx``."""
    bounds = np.cumsum([0] + [n for _, n in fs.parts])
    out = {}
    for (label, _), lo, hi in zip(fs.parts, bounds[:-1], bounds[1:]):
        mine = [k for k, i in enumerate(idx) if lo <= i < hi]
        if mine:
            out[label] = error_rates([fs.texts[idx[k]] for k in mine], [hyps[k] for k in mine])
    return out


def train(arch: ArchConfig, train_set: FeatureSet, dev_set: FeatureSet, tok: CharTokenizer,
          cfg: TrainConfig, on_progress: Callable[[dict[str, float]], None] | None = None,
          on_step: Callable[[int, float], None] | None = None,
          resume: dict[str, Any] | None = None) -> TrainResult:
    """Train ``arch`` (vocabulary set to the tokenizer's) within ``cfg``'s budget,
    which counts from the start of training: with ``resume`` (a previous
    result's ``state``) it continues that run up to the new, larger budget."""
    arch = arch.replace(vocab_size=tok.vocab_size)
    norm = train_set.stats()
    device = train_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    if resume is None:
        torch.manual_seed(cfg.seed)
        model, opt, sched = _fresh(arch, cfg, device)
        st = {"model": model, "opt": opt, "sched": sched, "rng": np.random.default_rng(cfg.seed),
              "step": 0, "curve": [], "batches": None, "pos": 0, "losses": []}
        clock = Clock(device=device)
    else:
        check_clock(resume.get("clock", "cpu_seconds"), device)
        # the epoch in progress, the loss window and the dropout generator: a
        # continued run takes the same steps as one that was never stopped
        st = {k: resume[k] for k in ("model", "opt", "sched", "rng", "step")}
        st.update(curve=list(resume["curve"]), batches=resume.get("batches"),
                  pos=resume.get("pos", 0), losses=list(resume.get("losses", [])))
        if "torch_rng" in resume:
            torch.set_rng_state(resume["torch_rng"])
        if resume.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        clock = Clock(resume["cpu"], device)
    model, opt, sched, rng = st["model"], st["opt"], st["sched"], st["rng"]
    dev_idx = np.arange(min(cfg.eval_utts, len(dev_set)))
    lengths = train_set.lengths()
    res = TrainResult(arch=arch.to_dict(), steps=0, cpu_seconds=0.0, curve=st["curve"],
                      precision=precision, device=device_record(device))
    scaler = loss_scaler(device, precision)

    def checkpoint() -> None:
        with clock.uncharged():   # dev evaluations are not charged to the budget
            losses = st["losses"]
            point = {"step": st["step"], "cpu_s": round(clock(), 2),
                     "loss": float(np.mean(losses[-50:])) if losses else float("nan"),
                     "dev_cer": evaluate(model, arch, dev_set, tok, norm, dev_idx)["cer"]}
        res.curve.append(point)
        if on_progress:
            on_progress(point)

    def state() -> dict[str, Any]:
        return {**st, "cpu": clock(), "losses": st["losses"][-50:],
                "torch_rng": torch.get_rng_state(), "clock": clock_kind(device),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}

    def one_step() -> None:
        b = next_batch(st, lambda: length_batches(lengths, cfg.batch_frames, rng))
        model.train()
        batch = collate(train_set, b, tok, norm)
        if cfg.specaug:
            spec_augment(batch[0], rng)
        loss = batch_loss(model, arch, to_device(batch, device), precision)
        update(loss, model, opt, sched, scaler, 5.0)
        st["losses"].append(float(loss.detach()))

    def after(step: int) -> None:
        if on_step:
            on_step(step, clock())
        if step % cfg.eval_every == 0:
            checkpoint()

    def save() -> None:
        save_snapshot(cfg.snapshot, arch, state())

    with GpuUse(device) as use:   # the run's own peak memory and the card's utilisation
        run_budget(cfg, clock, st, one_step, after, save if cfg.snapshot is not None else None)
        if not res.curve or res.curve[-1]["step"] != st["step"]:
            checkpoint()
    res.steps, res.cpu_seconds = st["step"], round(clock(), 2)
    res.device.update(use.record())
    res.state = state()
    if cfg.snapshot is not None:  # kept: a larger budget later continues from here
        save_snapshot(cfg.snapshot, arch, res.state)
    res.dev = evaluate(model, arch, dev_set, tok, norm)
    res.model, res.norm = model, norm
    return res


def _fresh(arch: ArchConfig, cfg: TrainConfig, device: torch.device
           ) -> tuple[torch.nn.Module, Any, Any]:
    # before the optimiser: its state lives beside the weights, in their layout
    model = training_layout(build(arch).to(device), device)
    return (model, *optimiser(model, cfg.lr, cfg.warmup))


def load_snapshot(path: Path, arch: ArchConfig, cfg: TrainConfig, vocab_size: int
                  ) -> dict[str, Any]:
    """A snapshot as ``train``'s ``resume`` state; refuses one of another architecture."""
    arch = arch.replace(vocab_size=vocab_size)
    device = train_device(cfg.device)
    return restore_snapshot(path, arch, lambda: _fresh(arch, cfg, device), clock_kind(device))


def rung_runner(train_set: FeatureSet, dev_set: FeatureSet, tok: CharTokenizer,
                seed: int = 0, unit: str = "cpu_seconds", **cfg: Any
                ) -> Callable[[ArchConfig, float, Any], tuple[float, Any]]:
    """``run(arch, budget, state) -> (dev CER, state)`` for successive halving;
    ``unit`` says what a budget counts: ``cpu_seconds`` or ``steps``."""
    if unit not in ("cpu_seconds", "steps"):
        raise ValueError(f"unknown budget unit {unit!r}")

    def run(arch: ArchConfig, budget: float, state: Any) -> tuple[float, Any]:
        b = {unit: int(budget) if unit == "steps" else budget}
        res = train(arch, train_set, dev_set, tok, TrainConfig(seed=seed, **b, **cfg),
                    resume=state)
        return res.dev["cer"], {**res.state, "result": res}

    return run


# --- a trained run on disk: weights.pt (a plain state dict) and arch.json (the
# architecture as trained) -- what `hwnas export arch.json --weights weights.pt`
# takes --, tokenizer.json, feature_norm.npz and result.json ------------------
def save_run(out_dir: Any, res: TrainResult, tok: CharTokenizer,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a finished (or rung-stopped) run; returns the summary written."""
    from hwnas.paths import write_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "weights.pt.tmp"
    torch.save(res.model.state_dict(), tmp)
    tmp.replace(out / "weights.pt")
    write_atomic(out / "arch.json", json.dumps(res.arch, indent=2) + "\n")
    write_atomic(out / "tokenizer.json", tok.to_json())
    with open(out / "feature_norm.npz.tmp", "wb") as f:
        np.savez(f, mean=res.norm[0], std=res.norm[1])
    (out / "feature_norm.npz.tmp").replace(out / "feature_norm.npz")
    summary = {**res.to_dict(), "out": str(out), **(extra or {})}
    write_json(out / "result.json", summary, RESULT)
    return summary


def load_run(out_dir: Any) -> tuple[torch.nn.Module, ArchConfig, CharTokenizer, tuple]:
    """(model in eval mode, its architecture, tokenizer, feature norm) of a saved run."""
    out = Path(out_dir)
    current = "result.json"

    def fail(e: BaseException) -> ValueError:
        return ValueError(f"{out}: not a complete training run ({current}: {first_line(e)})")

    try:  # one file at a time, so the message names the one that is wrong
        summary = read_json(out / current, RESULT)
        arch = ArchConfig.from_dict(summary["arch"])
        model = build(arch)
        current = "weights.pt"
        model.load_state_dict(torch.load(out / current, map_location="cpu", weights_only=True))
        current = "tokenizer.json"
        tok = CharTokenizer.from_json((out / current).read_text())
        current = "feature_norm.npz"
        with np.load(out / current) as z:
            norm = (z["mean"], z["std"])
    except Exception as e:  # noqa: BLE001 - a torn or foreign file fails in many ways
        raise fail(e) from None
    model.eval()
    return model, arch, tok, norm


RUN_FILES = ("checkpoint.pt", "checkpoint.json", "weights.pt", "arch.json", "tokenizer.json",
             "feature_norm.npz", "result.json")


def set_aside_run(out_dir: Any) -> Path | None:
    """Move the files of the run in ``out_dir`` into ``set-aside/<UTC stamp>/``
    before a fresh start writes there (nothing trained is deleted); None when
    there was nothing to keep."""
    from hwnas.paths import stamped

    out = Path(out_dir)
    files = [out / f for f in RUN_FILES if (out / f).is_file()]
    if all(f.name == "checkpoint.json" for f in files):  # only the data stamp: nothing trained
        return None
    dest = stamped(out / "set-aside")
    dest.mkdir(parents=True)
    for f in files:
        f.replace(dest / f.name)
    return dest
