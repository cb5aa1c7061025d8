"""Budgeted training of one TTS architecture, resumable, with dev quality.

The budget is CPU time of this process on one thread (as for ASR; device
seconds on an accelerator, ``device``), or a number of steps
(deterministic). Loss: L1 between normalised log-mels (true durations drive
the length regulator, as FastSpeech 2 trains) plus the MSE of the predicted
log(1 + frames). A snapshot written every ``snapshot_every_s`` CPU seconds
(atomically) lets a stopped run continue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.nn.fit import (
    Clock,
    as_fp32,
    check_budget,
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
    update,
)
from hwnas.nn.gpu_use import GpuUse
from hwnas.tts.arch import TTSArch
from hwnas.tts.data import PhonemeSet, Utterance
from hwnas.tts.model import AcousticModel, build
from hwnas.tts.quality import mcd_db


@dataclass
class TTSTrainConfig:
    steps: int | None = None
    cpu_seconds: float | None = None
    batch_frames: int = 6000        # mel frames per batch (60 s of speech)
    lr: float = 1e-3
    warmup: int = 100
    seed: int = 0
    dev_utts: int = 50              # dev utterances scored at the end
    snapshot: Path | None = None
    snapshot_every_s: float = 60.0
    device: str | None = None       # nn.fit.train_device: auto, cpu, cuda, cuda:N
    precision: str = "auto"         # nn.fit.resolve_precision

    def __post_init__(self) -> None:
        check_budget(self.steps, self.cpu_seconds)
        check_precision(self.precision)


@dataclass
class TTSResult:
    arch: dict[str, Any]
    steps: int
    cpu_seconds: float
    curve: list[dict[str, float]] = field(default_factory=list)
    dev: dict[str, float] = field(default_factory=dict)
    model: Any = None
    norm: tuple[np.ndarray, np.ndarray] | None = None
    precision: str = "fp32"
    device: dict[str, Any] = field(default_factory=dict)   # nn.fit.device_record + GpuUse

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("model")
        d.pop("norm")
        return {**d, **d.pop("device")}


def mel_norm(utts: list[Utterance]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std of the training mels."""
    allm = np.concatenate([u.mel for u in utts])
    return allm.mean(0).astype(np.float32), (allm.std(0) + 1e-5).astype(np.float32)


def collate(utts: list[Utterance], idx: np.ndarray, phon: PhonemeSet,
            norm: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, ...]:
    N = max(len(utts[i].phonemes) for i in idx)
    T = max(len(utts[i].mel) for i in idx)
    ids = np.zeros((len(idx), N), np.int64)
    dur = np.zeros((len(idx), N), np.int64)
    mel = np.zeros((len(idx), T, utts[idx[0]].mel.shape[1]), np.float32)
    for b, i in enumerate(idx):
        u = utts[i]
        ids[b, :len(u.phonemes)] = phon.ids(u.phonemes)
        dur[b, :len(u.phonemes)] = u.durations
        mel[b, :len(u.mel)] = (u.mel - norm[0]) / norm[1]
    return torch.from_numpy(ids), torch.from_numpy(dur), torch.from_numpy(mel)


def loss_of(model: AcousticModel, batch: tuple[torch.Tensor, ...], precision: str = "fp32"
            ) -> tuple[torch.Tensor, torch.Tensor]:
    ids, dur, mel = batch
    with forward_precision(precision, ids.device.type):
        out = model(ids, dur)
    pred, log_dur, fmask = as_fp32(out)   # the losses in fp32
    mel = mel[:, :pred.shape[1]]
    m = fmask[..., None]
    l1 = (pred - mel).abs().mul(m).sum() / (m.sum() * mel.shape[-1]).clamp(min=1)
    pmask = (ids != 0).float()
    d = ((log_dur - torch.log1p(dur.float())) ** 2 * pmask).sum() / pmask.sum().clamp(min=1)
    return l1, d


@torch.no_grad()
def evaluate(model: AcousticModel, utts: list[Utterance], phon: PhonemeSet,
             norm: tuple[np.ndarray, np.ndarray], n: int) -> dict[str, float]:
    """Dev quality with the true durations (frames line up): mel L1 in
    log-mel units, MCD in dB, and the duration predictor's mean absolute
    error in frames."""
    model.eval()
    device = next(model.parameters()).device
    mean, std = torch.from_numpy(norm[0]), torch.from_numpy(norm[1])
    l1s, mcds, dmae = [], [], []
    for u in utts[:n]:
        ids, dur = to_device((torch.from_numpy(phon.ids(u.phonemes))[None],
                              torch.from_numpy(u.durations)[None]), device)
        pred, log_dur, _ = model(ids, dur)
        pred, log_dur, dur = pred.cpu(), log_dur.cpu(), dur.cpu()   # scored on the host
        hyp = pred[0] * std + mean
        ref = torch.from_numpy(u.mel)[:len(hyp)]
        l1s.append(float((hyp - ref).abs().mean()))
        mcds.append(mcd_db(ref, hyp))
        frames = AcousticModel.frames_of(log_dur, torch.ones_like(log_dur))[0]
        dmae.append(float((frames - dur[0].float()).abs().mean()))
    return {"mel_l1": round(float(np.mean(l1s)), 4), "mcd_db": round(float(np.mean(mcds)), 3),
            "dur_mae_frames": round(float(np.mean(dmae)), 3), "utterances": len(l1s)}


def _fresh(arch: TTSArch, cfg: TTSTrainConfig, device: torch.device
           ) -> tuple[AcousticModel, Any, Any]:
    model = build(arch).to(device)   # before the optimiser: its state lives beside the weights
    return (model, *optimiser(model, cfg.lr, cfg.warmup))


def _snapshot(cfg: TTSTrainConfig, arch: TTSArch, st: dict[str, Any], cpu: float,
              device: torch.device) -> None:
    """The shared snapshot format (atomic), for this run's state."""
    save_snapshot(Path(cfg.snapshot), arch, {
        **st, "cpu": cpu, "losses": [], "torch_rng": torch.get_rng_state(),
        "clock": clock_kind(device),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None})


def train(arch: TTSArch, train_utts: list[Utterance], dev_utts: list[Utterance],
          phon: PhonemeSet, cfg: TTSTrainConfig,
          on_step: Callable[[int, float, float], None] | None = None) -> TTSResult:
    """Train ``arch`` (inventory set to ``phon``'s) within ``cfg``'s budget on
    ``cfg.device`` at ``cfg.precision``, continuing ``cfg.snapshot`` when it
    holds this architecture's run (trained on the same kind of device)."""
    arch = arch.replace(n_phonemes=len(phon))
    norm = mel_norm(train_utts)
    device = train_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    if cfg.snapshot is not None and Path(cfg.snapshot).is_file():
        st = restore_snapshot(Path(cfg.snapshot), arch, lambda: _fresh(arch, cfg, device),
                              clock_kind(device))
        torch.set_rng_state(st["torch_rng"])
        if st.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(st["cuda_rng"], device)
    else:
        torch.manual_seed(cfg.seed)
        model, opt, sched = _fresh(arch, cfg, device)
        st = {"model": model, "opt": opt, "sched": sched, "step": 0, "cpu": 0.0,
              "rng": np.random.default_rng(cfg.seed), "curve": [], "batches": None, "pos": 0}
    model, opt, sched = st["model"], st["opt"], st["sched"]
    lengths = np.array([len(u.mel) for u in train_utts])
    clock, window = Clock(st["cpu"], device), []
    scaler = loss_scaler(device, precision)

    def one_step() -> None:
        idx = next_batch(st, lambda: length_batches(lengths, cfg.batch_frames, st["rng"]))
        model.train()
        l1, dl = loss_of(model, to_device(collate(train_utts, idx, phon, norm), device),
                         precision)
        update(l1 + dl, model, opt, sched, scaler, 1.0)
        window[:] = (window + [float(l1.detach())])[-20:]

    def after(step: int) -> None:
        if on_step:
            on_step(step, clock(), float(np.mean(window)))
        if step % 50 == 0:
            st["curve"].append({"step": step, "cpu_s": round(clock(), 2),
                                "mel_l1_norm": round(float(np.mean(window)), 4)})

    def save() -> None:
        _snapshot(cfg, arch, st, clock(), device)

    with GpuUse(device) as use:   # the run's own peak memory and the card's utilisation
        run_budget(cfg, clock, st, one_step, after, save if cfg.snapshot is not None else None)
    spent = round(clock(), 2)
    if cfg.snapshot is not None:   # kept: a larger budget later continues from here
        save()
    res = TTSResult(arch=arch.to_dict(), steps=st["step"], cpu_seconds=spent,
                    curve=st["curve"], model=model, norm=norm, precision=precision,
                    device={**device_record(device), **use.record()})
    res.dev = evaluate(model, dev_utts, phon, norm, cfg.dev_utts)
    return res
