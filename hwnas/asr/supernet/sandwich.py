"""Training a supernet: the sandwich rule with in-place distillation, and
dynamic chunk training for streaming.

Every step samples one architecture of the family (its stem, attention
variant, decoder type, and whether and how it streams: chunk size, left
context and look-ahead, so each batch sees a random chunk configuration as in
U2/WeNet) and trains three subnets of that context on the same batch: the
largest, the smallest and the sampled one (BigNAS's sandwich rule). The
largest learns from the labels; the other two learn half from the labels and
half from the largest's output distribution (in-place distillation), which
shares their frame rate and token positions because the stem and decoder are
the same.

Budgets, snapshots, devices and resuming behave as in :mod:`hwnas.asr.train`:
CPU time of this process (or steps, which are deterministic; on an
accelerator, device seconds), a snapshot every CPU-minute, on Ctrl-C and at
the end, and a resumed run takes the same steps as one that was never
stopped (on the same kind of device: a resume on the other is refused).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.asr import ArchConfig
from hwnas.asr.arch import default_space
from hwnas.asr.supernet.elastic import ElasticSupernet
from hwnas.asr.train import (
    TrainConfig,
    collate,
    evaluate,
    length_batches,
    task_loss,
)
from hwnas.data.tokens import CharTokenizer
from hwnas.errors import first_line
from hwnas.nn.fit import (
    Clock,
    OtherDevice,
    as_fp32,
    check_clock,
    clock_kind,
    device_record,
    forward_precision,
    loss_scaler,
    next_batch,
    resolve_precision,
    run_budget,
    to_device,
    train_device,
    update,
)
from hwnas.training.features import spec_augment

#: share of a smaller subnet's loss that comes from the largest one's outputs
DISTILL = 0.5


#: the budget, batch, optimiser, evaluation and snapshot settings are the
#: stand-alone trainer's (``lr`` and ``warmup`` shape the store's schedule)
SupernetConfig = TrainConfig


@dataclass
class SupernetResult:
    family: str
    steps: int
    cpu_seconds: float                   # device seconds where it trained on an accelerator
    curve: list[dict[str, float]] = field(default_factory=list)
    net: ElasticSupernet | None = None
    precision: str = "fp32"
    device: dict[str, str] = field(default_factory=dict)   # fit.device_record


SplitsOf = Callable[[str, int], Any]   # (frontend, n_filters) -> Splits


def distill_loss(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor],
                 yl: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) over the output distributions both give, averaged
    over real frames (CTC), real token positions (attention) or real lattice
    points (RNN-T)."""
    el = teacher["enc_lengths"]
    total, n = student["enc"].new_zeros(()), 0
    for key in ("ctc_logits", "att_logits", "rnnt_logits"):
        if key not in student or key not in teacher:
            continue
        s, t = student[key].log_softmax(-1), teacher[key].detach().log_softmax(-1)
        kl = (t.exp() * (t - s)).sum(-1)
        t_pos = torch.arange(kl.shape[1], device=kl.device)
        if key == "ctc_logits":
            mask = t_pos[None] < el[:, None]
        elif key == "att_logits":
            mask = t_pos[None] <= yl[:, None]
        else:
            u_pos = torch.arange(kl.shape[2], device=kl.device)
            mask = ((t_pos[None, :, None] < el[:, None, None])
                    & (u_pos[None, None] <= yl[:, None, None]))
        total = total + (kl * mask).sum() / mask.sum().clamp(min=1)
        n += 1
    return total / max(n, 1)


def _optimizer(net: ElasticSupernet, cfg: SupernetConfig) -> tuple[Any, Any]:
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / cfg.warmup, math.sqrt(cfg.warmup / (s + 1))))
    return opt, sched


def sandwich(net: ElasticSupernet, ctx: ArchConfig) -> list[ArchConfig]:
    """The subnets one step trains: largest, smallest, and ``ctx`` itself."""
    return [net.extreme(ctx, True), net.extreme(ctx, False), ctx]


def train_supernet(net: ElasticSupernet, splits_of: SplitsOf, tok: CharTokenizer,
                   cfg: SupernetConfig,
                   on_step: Callable[[int, float, dict[str, float]], None] | None = None,
                   on_progress: Callable[[dict[str, float]], None] | None = None,
                   resume: dict[str, Any] | None = None) -> SupernetResult:
    """Train ``net`` within ``cfg``'s budget on ``cfg.device`` (the net moves
    there) at ``cfg.precision``; ``resume`` is a snapshot's state
    (:func:`load_snapshot`, which moved the net already). ``splits_of`` gives
    a stem's features."""
    if net.vocab_size != tok.vocab_size:
        raise ValueError(f"the supernet has {net.vocab_size} tokens, the corpus "
                         f"{tok.vocab_size}")
    device = train_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    if resume is None:
        torch.manual_seed(cfg.seed)
        net.to(device)   # before the optimiser: its state lives beside the weights
        opt, sched = _optimizer(net, cfg)
        st = {"opt": opt, "sched": sched, "rng": np.random.default_rng(cfg.seed),
              "arch_rng": random.Random(cfg.seed), "step": 0, "curve": [], "batches": None,
              "pos": 0, "losses": {"largest": [], "smallest": []}}
        clock = Clock(device=device)
    else:
        check_clock(resume.get("clock", "cpu_seconds"), device, "supernet")
        st = {k: resume[k] for k in ("opt", "sched", "rng", "arch_rng", "step", "batches",
                                     "pos", "losses")}
        st["curve"] = list(resume["curve"])
        torch.set_rng_state(resume["torch_rng"])
        if resume.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        clock = Clock(resume["cpu"], device)
    opt, sched, rng, losses = st["opt"], st["sched"], st["rng"], st["losses"]
    probe = net.sample(random.Random(cfg.seed))   # the context the progress reports on
    first = splits_of(probe.frontend, probe.n_filters)
    lengths = first.train.lengths()

    def running() -> dict[str, float]:
        return {k: float(np.mean(v[-50:])) if v else float("nan") for k, v in losses.items()}

    def checkpoint() -> None:
        with clock.uncharged():
            sp = first
            idx = np.arange(min(cfg.eval_utts, len(sp.dev)))
            norm = sp.train.stats()
            point = {"step": st["step"], "cpu_s": round(clock(), 2), **running()}
            for name, arch in (("largest", net.extreme(probe, True)),
                               ("smallest", net.extreme(probe, False))):
                point[f"dev_cer_{name}"] = evaluate(net.subnet(arch), arch, sp.dev, tok, norm,
                                                    idx)["cer"]
        st["curve"].append(point)
        if on_progress:
            on_progress(point)

    def state() -> dict[str, Any]:
        return {**st, "cpu": clock(), "losses": {k: v[-50:] for k, v in losses.items()},
                "torch_rng": torch.get_rng_state(), "clock": clock_kind(device),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}

    scaler = loss_scaler(device, precision)

    def one_step() -> None:
        b = next_batch(st, lambda: length_batches(lengths, cfg.batch_frames, rng))
        ctx = net.sample(st["arch_rng"])
        sp = splits_of(ctx.frontend, ctx.n_filters)
        batch = collate(sp.train, b, tok, sp.train.stats())
        if cfg.specaug:
            spec_augment(batch[0], rng)
        x, xl, y, yl = to_device(batch, device)
        total, teacher = None, None
        for i, arch in enumerate(sandwich(net, ctx)):
            with forward_precision(precision, device.type):
                out = net(arch, x, xl, y if arch.decoder != "ctc" else None)
            out = as_fp32(out)   # losses and the distillation in fp32
            loss = task_loss(arch, out, y, yl)
            if teacher is None:
                teacher = out
                losses["largest"].append(float(loss.detach()))
            else:
                loss = (1 - DISTILL) * loss + DISTILL * distill_loss(out, teacher, yl)
                if i == 1:
                    losses["smallest"].append(float(loss.detach()))
            total = loss if total is None else total + loss
        update(total, net, opt, sched, scaler, 5.0)

    def after(step: int) -> None:
        if on_step:
            on_step(step, clock(), running())
        if step % cfg.eval_every == 0:
            checkpoint()

    def save() -> None:
        save_snapshot(cfg.snapshot, net, state())

    net.train()
    run_budget(cfg, clock, st, one_step, after, save if cfg.snapshot is not None else None)
    if not st["curve"] or st["curve"][-1]["step"] != st["step"]:
        checkpoint()
    net.eval()
    if cfg.snapshot is not None and (resume is None or st["step"] != resume["step"]):
        save()   # (a snapshot that took no step stays as it was)
    return SupernetResult(net.family, st["step"], round(clock(), 2), st["curve"], net,
                          precision, device_record(device))


# --- files: a snapshot to continue from, and the finished supernet ----------------------
def _identity(net: ElasticSupernet) -> dict[str, Any]:
    return {"family": net.family, "vocab_size": net.vocab_size,
            "choices": {d.name: list(d.choices) for d in net.space.decisions}}


def save_snapshot(path: Path, net: ElasticSupernet, st: dict[str, Any]) -> None:
    """Everything ``train_supernet(resume=...)`` needs (atomic write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"identity": json.dumps(_identity(net), sort_keys=True),
                "weights": net.state_dict(), "opt": st["opt"].state_dict(),
                "sched": st["sched"].state_dict(),
                "rng": json.dumps(st["rng"].bit_generator.state),
                "arch_rng": json.dumps(st["arch_rng"].getstate()), "step": st["step"],
                "cpu": st["cpu"], "curve": json.dumps(st["curve"]),
                "batches": None if st["batches"] is None else
                [[int(i) for i in b] for b in st["batches"]],
                "pos": st["pos"], "losses": json.dumps(st["losses"]),
                "torch_rng": st["torch_rng"], "clock": st["clock"],
                **({"cuda_rng": st["cuda_rng"]} if st.get("cuda_rng") is not None else {})},
               tmp)
    tmp.replace(path)


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a torn or foreign file fails in many ways inside unpickling
        raise ValueError(f"{path}: unreadable {what} ({first_line(e)})") from None
    if not isinstance(d, dict) or "identity" not in d or "weights" not in d:
        raise ValueError(f"{path}: not a {what}")
    return d


def _net_of(d: dict[str, Any], path: Path) -> ElasticSupernet:
    ident = json.loads(d["identity"])
    space = default_space().with_choices(ident["choices"])
    net = ElasticSupernet(space, ident["family"], ident["vocab_size"], materialize=False)
    try:
        net.load_state_dict(d["weights"])
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit the supernet ({first_line(e)})") from None
    return net


def load_snapshot(path: Path, net: ElasticSupernet, cfg: SupernetConfig) -> dict[str, Any]:
    """Load a snapshot into ``net`` (same family, space and vocabulary), moved
    to ``cfg.device``, and return its training state for
    ``train_supernet(resume=...)``. One line when it was trained on the other
    kind of device."""
    d = _read(path, "supernet snapshot")
    if json.loads(d["identity"]) != _identity(net):
        raise ValueError(f"{path}: the snapshot is of another family, space or vocabulary")
    device = train_device(cfg.device)
    try:
        check_clock(d.get("clock", "cpu_seconds"), device, "supernet")
    except OtherDevice as e:
        raise OtherDevice(f"{path}: {e}") from None
    try:
        net.load_state_dict(d["weights"])
        net.to(device)   # before the optimiser, whose state follows its parameters
        opt, sched = _optimizer(net, cfg)
        opt.load_state_dict(d["opt"])
        sched.load_state_dict(d["sched"])
        rng = np.random.default_rng()
        rng.bit_generator.state = json.loads(d["rng"])
        arch_rng = random.Random()
        a, internal, g = json.loads(d["arch_rng"])
        arch_rng.setstate((a, tuple(internal), g))
        batches = None if d["batches"] is None else [np.array(b, dtype=np.int64)
                                                     for b in d["batches"]]
        return {"opt": opt, "sched": sched, "rng": rng, "arch_rng": arch_rng,
                "step": d["step"], "cpu": d["cpu"], "curve": json.loads(d["curve"]),
                "batches": batches, "pos": d["pos"], "losses": json.loads(d["losses"]),
                "torch_rng": d["torch_rng"], "clock": d.get("clock", "cpu_seconds"),
                "cuda_rng": d.get("cuda_rng")}
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: incomplete supernet snapshot ({first_line(e)})") from None


def save_supernet(path: Path, net: ElasticSupernet, info: dict[str, Any]) -> None:
    """The trained supernet: its identity, ``info`` (JSON) and a plain state dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"identity": json.dumps(_identity(net), sort_keys=True),
                "info": json.dumps(info, sort_keys=True), "weights": net.state_dict()}, tmp)
    tmp.replace(path)


def load_supernet(path: Path) -> tuple[ElasticSupernet, dict[str, Any]]:
    """A saved supernet (eval mode) and its info."""
    d = _read(Path(path), "supernet")
    net = _net_of(d, Path(path))
    net.eval()
    return net, json.loads(d.get("info", "{}"))
