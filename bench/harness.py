"""What every benchmark shares: one thread (this machine's two vCPUs give
about one core of throughput, and torch with two threads flips between 7 ms
and 450 ms), the repository's root, and where results go. Imported before
torch, so that the thread settings hold for every library."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FIGURES = ROOT / "docs"


def one_thread() -> None:
    """torch on one thread too (its own pool ignores OMP_NUM_THREADS once started)."""
    import torch

    torch.set_num_threads(1)


def save(name: str, value: Any) -> Path:
    """``bench/results/<name>`` written atomically (JSON, indented)."""
    from hwnas.paths import write_atomic

    path = RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    return path
