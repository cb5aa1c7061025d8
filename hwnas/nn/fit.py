"""What every hwnas training shares (a stand-alone ASR model, a supernet, a
TTS model): the budget, length-bucketed batches, the optimiser, snapshots,
and the budgeted loop: steps until a budget of CPU time on this process
(evaluations not charged) or of steps is spent, with a snapshot every
``snapshot_every_s`` CPU seconds, on Ctrl-C (then re-raised) and at the end.
A run resumed from a snapshot continues its clock and step count, so it takes
exactly the steps of a run that was never stopped."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.errors import first_line

#: training precisions: fp32, or bf16 autocast of the forward pass (matrix
#: products in bf16 on CPUs with bf16 units: AMX, AVX-512 BF16), losses in fp32
PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def forward_precision(precision: str) -> Any:
    """The context a training forward runs in; its outputs are cast back to
    fp32 by the caller before the loss (CTC and RNN-T stay in fp32)."""
    import contextlib

    check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)


def as_fp32(out: Any) -> Any:
    """A forward's outputs (a tensor, or a dict of them) back in fp32."""
    if isinstance(out, dict):
        return {k: as_fp32(v) for k, v in out.items()}
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.dtype != torch.float32:
        return out.float()
    return out


def next_batch(st: dict[str, Any], new_epoch: Callable[[], list]) -> Any:
    """The next batch of the epoch in progress (``st["batches"]``, ``st["pos"]``,
    kept in snapshots), after ``new_epoch()`` where the last one ended."""
    if st["batches"] is None or st["pos"] >= len(st["batches"]):
        st["batches"], st["pos"] = new_epoch(), 0
    st["pos"] += 1
    return st["batches"][st["pos"] - 1]


class Clock:
    """CPU seconds charged to a run: this process's CPU time since the run
    began, plus what it had spent before a resume, less evaluations."""

    def __init__(self, spent: float = 0.0) -> None:
        self._t0 = time.process_time() - spent
        self._free = 0.0

    def __call__(self) -> float:
        return time.process_time() - self._t0 - self._free

    @contextmanager
    def uncharged(self) -> Iterator[None]:
        """Work inside (a dev evaluation) does not count against the budget."""
        e0 = time.process_time()
        try:
            yield
        finally:
            self._free += time.process_time() - e0


def run_budget(cfg: Any, clock: Clock, st: dict[str, Any], one_step: Callable[[], None],
               after: Callable[[int], None], save: Callable[[], None] | None) -> None:
    """Call ``one_step()`` and count it in ``st["step"]`` until ``cfg``'s
    budget (``cfg.steps``, else ``cfg.cpu_seconds``, stretched to
    ``cfg.min_steps`` updates up to ``cfg.max_cpu_seconds`` where set) is spent; ``after(step)``
    follows each step (progress, evaluation). ``save()`` writes a snapshot
    every ``cfg.snapshot_every_s`` CPU seconds and on Ctrl-C; the caller
    writes the last one once it has scored the run."""
    floor = getattr(cfg, "min_steps", 0)
    ceiling = getattr(cfg, "max_cpu_seconds", None) or float("inf")

    def done() -> bool:
        if cfg.steps is not None:
            return st["step"] >= cfg.steps
        t = clock()
        # a CPU-time budget with a floor of updates: a slow model trains on past
        # the budget until it has taken them, but never past the ceiling
        return t >= cfg.cpu_seconds and (st["step"] >= floor or t >= ceiling)

    last = clock()
    try:
        while not done():
            one_step()
            st["step"] += 1
            after(st["step"])
            if save is not None and clock() - last >= cfg.snapshot_every_s:
                save()
                last = clock()
    except KeyboardInterrupt:
        if save is not None:
            save()
        raise


def check_budget(steps: int | None, cpu_seconds: float | None) -> None:
    """A training budget is steps or CPU seconds, one of them, positive."""
    if (steps is None) == (cpu_seconds is None):
        raise ValueError("give exactly one budget: steps or cpu_seconds")
    if steps is not None and steps < 1:
        raise ValueError("steps must be >= 1")
    if cpu_seconds is not None and cpu_seconds <= 0:
        raise ValueError("the CPU-time budget must be positive")


def length_batches(lengths: np.ndarray, batch_frames: int, rng: np.random.Generator
                   ) -> list[np.ndarray]:
    order = np.argsort(lengths + rng.uniform(0, 1, len(lengths)) * 10, kind="stable")
    out, cur, longest = [], [], 0
    for i in order:
        longest2 = max(longest, int(lengths[i]))
        if cur and longest2 * (len(cur) + 1) > batch_frames:
            out.append(np.array(cur))
            cur, longest2 = [], int(lengths[i])
        cur.append(i)
        longest = longest2
    if cur:
        out.append(np.array(cur))
    rng.shuffle(out)
    return out


def optimiser(model: torch.nn.Module, lr: float, warmup: int) -> tuple[Any, Any]:
    """AdamW with linear warm-up then inverse-square-root decay (both tasks)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, math.sqrt(warmup / (s + 1))))
    return opt, sched


def save_snapshot(path: Path, arch: Any, st: dict[str, Any]) -> None:
    """Everything ``train(resume=...)`` needs, as plain tensors and numbers
    (atomic: a kill while writing leaves the previous snapshot)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"arch": arch.to_dict(), "model": st["model"].state_dict(),
                "opt": st["opt"].state_dict(), "sched": st["sched"].state_dict(),
                "rng": json.dumps(st["rng"].bit_generator.state), "step": st["step"],
                "cpu": st["cpu"], "curve": json.dumps(st["curve"]),
                "batches": None if st["batches"] is None else
                [[int(i) for i in b] for b in st["batches"]],
                "pos": st["pos"], "losses": list(st["losses"]),
                "torch_rng": st["torch_rng"]}, tmp)
    tmp.replace(path)


def restore_snapshot(path: Path, arch: Any, fresh: Callable[[], tuple[Any, Any, Any]]
                     ) -> dict[str, Any]:
    """A snapshot of ``arch``'s training (any task) as live objects:
    ``fresh()`` makes the model, optimiser and schedule the state loads into."""
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a torn or foreign file fails in many ways inside unpickling
        raise ValueError(f"{path}: unreadable training snapshot "
                         f"({first_line(e)})") from None
    if not isinstance(d, dict) or d.get("arch") != arch.to_dict():
        raise ValueError(f"{path}: the snapshot is of another architecture or vocabulary")
    try:
        model, opt, sched = fresh()
        model.load_state_dict(d["model"])
        opt.load_state_dict(d["opt"])
        sched.load_state_dict(d["sched"])
        rng = np.random.default_rng()
        rng.bit_generator.state = json.loads(d["rng"])
        batches = None if d["batches"] is None else [np.array(b, dtype=np.int64)
                                                     for b in d["batches"]]
        return {"model": model, "opt": opt, "sched": sched, "rng": rng, "step": d["step"],
                "cpu": d["cpu"], "curve": json.loads(d["curve"]), "batches": batches,
                "pos": d["pos"], "losses": d["losses"], "torch_rng": d["torch_rng"]}
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: incomplete training snapshot "
                         f"({first_line(e)})") from None
