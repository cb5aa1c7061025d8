from __future__ import annotations

import os

import pytest
import torch

# One thread: the 2-core CI machine gives erratic timings and stalls with more.
torch.set_num_threads(1)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
