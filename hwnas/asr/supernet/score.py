"""Scoring an architecture with weights inherited from a supernet: dev CER of
the extracted subnet as it is (``inherited``), or after a short fine-tune
(``fine-tuned``) that continues from the inherited weights with the
stand-alone trainer."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from hwnas.asr import ArchConfig
from hwnas.asr.supernet.elastic import ElasticSupernet
from hwnas.asr.train import TrainConfig, dev_loss, evaluate, train
from hwnas.data.tokens import CharTokenizer
from hwnas.nn.fit import clock_kind, train_device

FINETUNE_LR = 5e-4   # a constant rate: the weights are already trained


def finetune_state(model: torch.nn.Module, seed: int) -> dict[str, Any]:
    """A ``train(resume=...)`` state that continues ``model`` from step 0, on
    the device it is on."""
    opt = torch.optim.AdamW(model.parameters(), lr=FINETUNE_LR, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return {"model": model, "opt": opt, "sched": sched, "rng": np.random.default_rng(seed),
            "step": 0, "cpu": 0.0, "curve": [], "batches": None, "pos": 0, "losses": [],
            "clock": clock_kind(next(model.parameters()).device)}


def score(net: ElasticSupernet, arch: ArchConfig, splits: Any, tok: CharTokenizer,
          finetune_cpu: float = 0.0, finetune_steps: int | None = None, seed: int = 0,
          dev_utts: int | None = None, with_loss: bool = False, device: str | None = None,
          precision: str = "auto") -> dict[str, Any]:
    """``{"cer", "wer", "source", "cpu_s", "steps", "utts"}`` of ``arch`` on the
    dev set, or on its first ``dev_utts`` utterances (a cheaper, noisier score).
    ``with_loss`` adds ``loss``, the training loss per token on the same
    utterances (it ranks worse than CER: README, "Weight sharing measured").
    ``cpu_s`` counts extraction, fine-tuning and scoring. ``device`` (as
    ``--train-device``; None: where the supernet is) is where the subnet is
    fine-tuned and scored, at ``precision``."""
    t0 = time.process_time()
    arch = arch.replace(vocab_size=tok.vocab_size)
    model = net.subnet(arch)
    if device is not None:
        model.to(train_device(device))
    on = next(model.parameters()).device
    norm = splits.train.stats()
    steps, source = 0, "inherited"
    if finetune_cpu > 0 or finetune_steps:
        budget = ({"steps": finetune_steps} if finetune_steps else
                  {"cpu_seconds": finetune_cpu})
        res = train(arch, splits.train, splits.dev, tok,
                    TrainConfig(seed=seed, eval_every=10**9, device=str(on),
                                precision=precision, **budget),
                    resume=finetune_state(model, seed))
        model, steps, source, r = res.model, res.steps, "fine-tuned", res.dev
    utts = min(dev_utts or len(splits.dev), len(splits.dev))
    if source == "inherited" or dev_utts:   # else the trainer scored the whole dev set
        r = evaluate(model, arch, splits.dev, tok, norm, np.arange(utts))
    out = {"cer": r["cer"], "wer": r["wer"], "source": source, "steps": steps, "utts": utts}
    if with_loss:
        out["loss"] = round(dev_loss(model, arch, splits.dev, tok, norm, np.arange(utts)), 4)
    return out | {"cpu_s": round(time.process_time() - t0, 2)}
