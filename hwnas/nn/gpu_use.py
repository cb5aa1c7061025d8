"""What a training used of its GPU: peak memory (torch's own allocator
counter) and utilisation sampled while it runs.

Utilisation is NVML's "percent of time a kernel was running" for the whole
card, so trials that share a card (``--gpus-per-trial 0.5``) each record the
card's figure, not their share. It is read through ``torch.cuda.utilization``
(needs the ``nvidia-ml-py`` package) or, without it, ``nvidia-smi``; where
neither answers, the run records memory only and says nothing of utilisation.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import torch

Reader = Callable[[], float]


def utilisation_reader(device: torch.device) -> Reader | None:
    """A function returning ``device``'s utilisation in percent now, or None
    where this host cannot read it."""
    try:
        torch.cuda.utilization(device)
        return lambda: float(torch.cuda.utilization(device))
    except Exception:   # no NVML binding here (ModuleNotFoundError) or NVML refused
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    # by UUID: CUDA's device order and CUDA_VISIBLE_DEVICES renumber cards, NVML's does not
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is None:
        return None
    ident = str(uuid) if str(uuid).startswith("GPU-") else f"GPU-{uuid}"

    def read() -> float:
        out = subprocess.run([smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                              "-i", ident], capture_output=True, text=True, timeout=5, check=True)
        return float(out.stdout.strip().splitlines()[0])

    try:
        read()
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None
    return read


class Sampler:
    """Calls ``read`` every ``every_s`` seconds on a background thread between
    ``start()`` and ``stop()``; readings that fail are skipped, not guessed."""

    def __init__(self, read: Reader, every_s: float = 1.0) -> None:
        self.read, self.every_s = read, every_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.samples.append(float(self.read()))
            except Exception:   # a failed reading is skipped, never recorded as a value
                continue

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, name="gpu-use", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(10.0, 2 * self.every_s))

    def summary(self) -> dict[str, float | int]:
        if not self.samples:
            return {}
        return {"gpu_util_mean_pct": round(sum(self.samples) / len(self.samples), 1),
                "gpu_util_samples": len(self.samples)}


class GpuUse:
    """``with GpuUse(device) as use: ...train...``; then ``use.record()`` is
    what the run records (empty on a CPU)."""

    def __init__(self, device: torch.device, every_s: float = 1.0,
                 reader: Callable[[torch.device], Reader | None] = utilisation_reader) -> None:
        self.device, self.every_s, self.reader = device, every_s, reader
        self.sampler: Sampler | None = None

    def __enter__(self) -> GpuUse:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            read = self.reader(self.device)
            if read is not None:
                self.sampler = Sampler(read, self.every_s).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.sampler is not None:
            self.sampler.stop()

    def record(self) -> dict[str, float | int]:
        if self.device.type != "cuda":
            return {}
        peak = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return {"gpu_memory_peak_mb": peak,
                **(self.sampler.summary() if self.sampler is not None else {})}
