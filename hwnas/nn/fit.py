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
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.errors import first_line

#: training precisions: "auto" (bf16 on CUDA devices that have it, else
#: fp32), fp32, bf16 autocast of the forward pass (matrix products in bf16 on
#: CPUs with bf16 units: AMX, AVX-512 BF16), fp16 autocast with loss scaling
#: (CUDA only); losses always in fp32
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: the default training device where no --train-device is given
TRAIN_DEVICE_ENV = "HWNAS_TRAIN_DEVICE"


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def train_device(name: str | None = None) -> torch.device:
    """The device a training runs on: ``name`` (auto, cpu, cuda, cuda:N),
    else $HWNAS_TRAIN_DEVICE, else auto: the first CUDA device where one is
    visible, the CPU otherwise. A device that is not there is one line."""
    import re

    name = (name or os.environ.get(TRAIN_DEVICE_ENV) or "auto").strip()
    if name == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", name)
    if m is None:
        raise ValueError(f"training device {name!r}: give auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else \
            f"built for CUDA {torch.version.cuda}, but no GPU is visible"
        raise ValueError(f"training device {name}: no CUDA device here (torch "
                         f"{torch.__version__} is {build}); use --train-device cpu")
    index, count = int(m.group(1) or 0), torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"training device {name}: {count} CUDA device(s) visible "
                         f"(cuda:0..cuda:{count - 1}; CUDA_VISIBLE_DEVICES picks them)")
    return torch.device("cuda", index)


def trial_device(name: str | None, precision: str, executor: str
                 ) -> tuple[str, str, tuple[int, ...]]:
    """Where a search's trainings run, as the workers will see it: (device,
    precision, GPUs the process executor starts one worker each for).

    Worker processes on this host: checked here, one worker per GPU meant,
    each seeing only its own (its ``cuda:0``). A Ray cluster: a ``cuda`` name
    is for the cluster's GPU hosts, which this host need not have; Ray gives
    each trial its GPU as ``cuda:0`` and the precision resolves there (so
    ``auto`` stays ``auto``)."""
    import re

    name = name or os.environ.get(TRAIN_DEVICE_ENV) or "auto"
    if executor == "ray" and re.fullmatch(r"cuda(?::\d+)?", name.strip()):
        check_precision(precision)
        return "cuda", precision, ()
    device = train_device(name)
    gpus = gpus_meant(name, device) if executor == "process" else ()
    if gpus:
        device = torch.device("cuda", 0)
    return str(device), resolve_precision(precision, device), gpus


def gpus_meant(name: str | None, device: torch.device) -> tuple[int, ...]:
    """The GPUs a --train-device name means for workers, one per GPU: the one
    it names (cuda:N), else every visible one; none for the CPU."""
    if device.type != "cuda":
        return ()
    if name and ":" in name:
        return (int(device.index or 0),)
    return tuple(range(torch.cuda.device_count()))


def device_record(device: torch.device) -> dict[str, str]:
    """What a run records of its training device: the device, its name, and
    the clock its time budget counted (CPU seconds on a CPU, device seconds on
    an accelerator: wall time with the device synchronised)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:   # /proc/cpuinfo's model name (the adapters' host record is a layer above)
        import platform

        try:
            name = next(ln.split(":", 1)[1].strip() for ln in
                        Path("/proc/cpuinfo").read_text().splitlines()
                        if ln.startswith("model name"))
        except (OSError, StopIteration):
            name = platform.processor() or platform.machine()
    return {"device": str(device), "device_name": name, "clock": clock_kind(device)}


def clock_kind(device: torch.device) -> str:
    return "cpu_seconds" if device.type == "cpu" else "device_seconds"


def resolve_precision(precision: str, device: torch.device) -> str:
    """``precision`` as it runs on ``device`` ("auto" resolved); fp16 has no
    use on a CPU and is refused there."""
    check_precision(precision)
    if precision == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return "bf16" if cuda_bf16 else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 training needs a CUDA device; on a CPU use bf16 or fp32")
    return precision


def loss_scaler(device: torch.device, precision: str) -> Any:
    """fp16 needs its loss scaled so small gradients survive; in fp32 and bf16
    (fp32's range) the scaler passes everything through unchanged."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def update(loss: torch.Tensor, module: torch.nn.Module, opt: Any, sched: Any, scaler: Any,
           max_norm: float) -> None:
    """One optimiser update as every training takes it: the (scaled) backward
    pass, gradients clipped to ``max_norm``, the step and the schedule."""
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm)
    scaler.step(opt)
    scaler.update()
    sched.step()


class OtherDevice(ValueError):
    """A run trained on the other kind of device: refused (its budget would
    change meaning), never set aside and started over."""


def check_clock(kind: str, device: torch.device, what: str = "run") -> None:
    """One line when a run's budget counted another kind of seconds (``kind``)
    than training on ``device`` would: CPU seconds against device seconds."""
    if kind != clock_kind(device):
        raise OtherDevice(f"this {what} was trained on another kind of device (its budget "
                          f"counted {kind}); continue it on the same kind (--train-device)")


def forward_precision(precision: str, device_type: str = "cpu") -> Any:
    """The context a training forward runs in; its outputs are cast back to
    fp32 by the caller before the loss (CTC and RNN-T stay in fp32)."""
    import contextlib

    check_precision(precision)
    if precision in ("fp32", "auto"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type, dtype=dtype)


def as_fp32(out: Any) -> Any:
    """A forward's outputs (a tensor, or a dict of them) back in fp32."""
    if isinstance(out, dict):
        return {k: as_fp32(v) for k, v in out.items()}
    if isinstance(out, torch.Tensor) and out.is_floating_point() and out.dtype != torch.float32:
        return out.float()
    return out


def to_device(batch: tuple[torch.Tensor, ...], device: torch.device
              ) -> tuple[torch.Tensor, ...]:
    """A batch moved once to ``device`` (through pinned memory to a GPU, so
    the copy overlaps the work already queued there)."""
    if device.type == "cpu":
        return batch
    return tuple(t.pin_memory().to(device, non_blocking=True) for t in batch)


def next_batch(st: dict[str, Any], new_epoch: Callable[[], list]) -> Any:
    """The next batch of the epoch in progress (``st["batches"]``, ``st["pos"]``,
    kept in snapshots), after ``new_epoch()`` where the last one ended."""
    if st["batches"] is None or st["pos"] >= len(st["batches"]):
        st["batches"], st["pos"] = new_epoch(), 0
    st["pos"] += 1
    return st["batches"][st["pos"] - 1]


class Clock:
    """Seconds charged to a run, less evaluations, plus what it had spent
    before a resume. On a CPU: this process's CPU time. On an accelerator:
    wall time read after the device has finished its queued work (the time
    of a step is when its kernels end, not when Python queued them)."""

    def __init__(self, spent: float = 0.0, device: torch.device | None = None) -> None:
        self._cuda = device is not None and device.type == "cuda"
        self._device = device
        self._t0 = self._now() - spent
        self._free = 0.0

    def _now(self) -> float:
        if self._cuda:
            torch.cuda.synchronize(self._device)
            return time.perf_counter()
        return time.process_time()

    def __call__(self) -> float:
        return self._now() - self._t0 - self._free

    @contextmanager
    def uncharged(self) -> Iterator[None]:
        """Work inside (a dev evaluation) does not count against the budget."""
        e0 = self._now()
        try:
            yield
        finally:
            self._free += self._now() - e0


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


def training_layout(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """On a CPU, 2-D convolution weights in channels-last order: oneDNN then
    runs the convolutions and their backward pass in its channels-last
    kernels, faster than in NCHW for the few channels of a subsampling front
    (x1.11 per conformer_xs step: bench/train_throughput.py part d). The
    values and the module are unchanged (the weights it saves load into any
    layout); only the order of the numbers in memory, and so the order of
    summation, differs. Call it before the optimiser, whose state follows
    the weights."""
    if device.type != "cpu":
        return model
    return model.to(memory_format=torch.channels_last)


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
                "torch_rng": st["torch_rng"], "clock": st.get("clock", "cpu_seconds"),
                **({"cuda_rng": st["cuda_rng"]} if st.get("cuda_rng") is not None else {})},
               tmp)
    tmp.replace(path)


def restore_snapshot(path: Path, arch: Any, fresh: Callable[[], tuple[Any, Any, Any]],
                     clock: str = "cpu_seconds") -> dict[str, Any]:
    """A snapshot of ``arch``'s training (any task) as live objects:
    ``fresh()`` makes the model, optimiser and schedule the state loads into
    (on the training device). A run's budget counted ``clock``'s seconds: one
    that counted the other kind is refused, as its budget would change meaning."""
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a torn or foreign file fails in many ways inside unpickling
        raise ValueError(f"{path}: unreadable training snapshot "
                         f"({first_line(e)})") from None
    if not isinstance(d, dict) or d.get("arch") != arch.to_dict():
        raise ValueError(f"{path}: the snapshot is of another architecture or vocabulary")
    if d.get("clock", "cpu_seconds") != clock:
        was = "a CPU" if d.get("clock", "cpu_seconds") == "cpu_seconds" else "an accelerator"
        raise ValueError(f"{path}: trained on {was}, whose budget counts "
                         f"{d.get('clock', 'cpu_seconds').replace('_', ' ')}; continue it "
                         f"on the same kind of device (--train-device)")
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
                "pos": d["pos"], "losses": d["losses"], "torch_rng": d["torch_rng"],
                "clock": clock, "cuda_rng": d.get("cuda_rng")}
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: incomplete training snapshot "
                         f"({first_line(e)})") from None
