"""A TTS training run on disk, from the built-in data: what `hwnas tts
train` does.

``<out>/``: ``snapshot.pt`` (resumable), ``weights.pt`` (a plain state dict),
``arch.json`` (as trained: what `hwnas export` takes), ``mel_norm.npz``,
``result.json`` (budget, curve, dev quality), ``wav/`` (a few dev sentences:
the model through Griffin-Lim with its own durations, and eSpeak's audio
beside it) and ``mel.png`` (predicted against true log-mel).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.errors import first_line
from hwnas.paths import write_atomic
from hwnas.tts import data
from hwnas.tts.arch import TTSArch
from hwnas.tts.quality import griffin_lim
from hwnas.tts.train import TTSResult, TTSTrainConfig, train

LISTEN = 3   # dev sentences written as WAVs


def train_run(workspace: Path, arch: TTSArch, out: Path, *, lang: str = "en",
              size: str = "small", seed: int = 0, cpu_seconds: float | None = None,
              steps: int | None = None, device: str | None = None,
              precision: str = "auto",
              on_data: Callable[[int, int], None] | None = None,
              on_step: Callable[[int, float, float], None] | None = None) -> dict[str, Any]:
    from hwnas.nn.fit import resolve_precision, train_device

    resolve_precision(precision, train_device(device))   # one line, before the data is built
    root = data.build(workspace, lang, size, seed, on_progress=on_data)
    phon = data.PhonemeSet.of(root)
    tr, dv = data.load_split(root, "train"), data.load_split(root, "dev")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = TTSTrainConfig(cpu_seconds=cpu_seconds, steps=steps, seed=seed,
                         snapshot=out / "snapshot.pt", device=device, precision=precision)
    if (out / "weights.pt").exists() and not cfg.snapshot.exists():
        # a finished run without its snapshot would start over: keep what it trained
        import logging

        kept = set_aside_run(out)
        logging.getLogger("hwnas").warning(
            f"{out} has a trained model but no snapshot to continue from; the run is set "
            f"aside in {kept} and trained again")
    before = _finished(out)
    res = train(arch, tr, dv, phon, cfg, on_step=on_step)
    if before is not None and before["steps"] == res.steps:
        return before   # nothing more trained: the run's files stay as they are
    return save(res, out, root, dv, phon)


RUN_FILES = ("weights.pt", "arch.json", "mel_norm.npz", "result.json", "mel.png", "wav",
             "snapshot.pt")

def _finished(out: Path) -> dict[str, Any] | None:
    """The run's result where it has one with its weights (else None)."""
    from hwnas.state import NUMBER, Shape, StateError, read_json

    if not (out / "weights.pt").is_file():
        return None
    try:
        return read_json(out / "result.json", Shape("TTS run result", required={
            "steps": int, "cpu_seconds": NUMBER, "arch": dict}))
    except StateError:
        return None


def set_aside_run(out: Path) -> Path:
    """Move the run's files into ``<out>/set-aside/<UTC stamp>/`` (nothing
    trained is deleted); returns that folder."""
    from hwnas.paths import stamped

    dest = stamped(out / "set-aside")
    dest.mkdir(parents=True)
    for name in RUN_FILES:
        if (out / name).exists():
            (out / name).replace(dest / name)
    return dest


def save(res: TTSResult, out: Path, root: Path, dev: list[data.Utterance],
         phon: data.PhonemeSet) -> dict[str, Any]:
    from hwnas.data.corpus import write_wav

    tmp = out / "weights.pt.tmp"
    torch.save(res.model.state_dict(), tmp)
    tmp.replace(out / "weights.pt")
    write_atomic(out / "arch.json", json.dumps(res.arch, indent=2) + "\n")
    with open(out / "mel_norm.npz.tmp", "wb") as f:
        np.savez(f, mean=res.norm[0], std=res.norm[1])
    (out / "mel_norm.npz.tmp").replace(out / "mel_norm.npz")
    wav = out / "wav"
    wav.mkdir(exist_ok=True)
    mean, std = (torch.from_numpy(x) for x in res.norm)
    pairs = []
    model = res.model.cpu().eval()   # the sentences to listen to are synthesised on the host
    for u in dev[:LISTEN]:
        mel = model.synthesize(torch.from_numpy(phon.ids(u.phonemes))) * std + mean
        write_wav(wav / f"{u.id}-model.wav", griffin_lim(mel))
        shutil.copyfile(root / "dev" / f"{u.id}.wav", wav / f"{u.id}-espeak.wav")
        pairs.append((u, mel.numpy()))
    _picture(pairs[:2], out / "mel.png")
    summary = {**res.to_dict(), "data": str(root), "out": str(out),
               "listen": sorted(p.name for p in wav.glob("*.wav"))}
    write_atomic(out / "result.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _picture(pairs: list[tuple[data.Utterance, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pairs), 2, figsize=(11, 2.6 * len(pairs)), squeeze=False)
    for row, (u, mel) in zip(axes, pairs):
        for ax, m, title in ((row[0], u.mel, "eSpeak (target)"),
                             (row[1], mel, "model (own durations)")):
            ax.imshow(m.T, origin="lower", aspect="auto", cmap="magma",
                      vmin=float(u.mel.min()), vmax=float(u.mel.max()))
            ax.set_title(f"{title}: {u.text[:40]}", fontsize=8)
            ax.set_xlabel("frame (10 ms)", fontsize=7)
            ax.set_ylabel("mel band", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def load_tts_run(run: Path) -> tuple[Any, Path, tuple[torch.Tensor, torch.Tensor]]:
    """(model in eval mode, its data folder, mel norm) of a `hwnas tts train` run."""
    from hwnas.tts.model import build

    run = Path(run)
    try:
        summary = json.loads((run / "result.json").read_text())
        arch = TTSArch.from_dict(summary["arch"])
        model = build(arch)
        model.load_state_dict(torch.load(run / "weights.pt", map_location="cpu",
                                         weights_only=True))
        with np.load(run / "mel_norm.npz") as z:
            norm = (torch.from_numpy(z["mean"]), torch.from_numpy(z["std"]))
    except Exception as e:  # noqa: BLE001 - a torn or foreign folder fails in many ways
        raise ValueError(f"{run}: not a complete TTS run ({first_line(e)})") from None
    return model.eval(), Path(summary["data"]), norm
