"""Intelligibility: what a TTS model says, as a speech recogniser hears it.

The dev sentences are synthesised by the TTS model (its own durations),
turned to audio by Griffin-Lim, and transcribed by a reference hwnas ASR
run trained on the built-in corpus; CER and WER are against the sentence
text. Beside them, two ceilings through the same recogniser: eSpeak's own
audio of the same sentences, and Griffin-Lim of eSpeak's true mels (what
the vocoder alone loses). A reference recogniser trained only minutes has a
high floor of its own, so read the model's CER against those ceilings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.errors import first_line


def load_tts_run(run: Path) -> tuple[Any, Path, tuple[torch.Tensor, torch.Tensor]]:
    """(model in eval mode, its data folder, mel norm) of a `hwnas tts train` run."""
    from hwnas.tts.arch import TTSArch
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


def _features(name: str, waves: list[np.ndarray], ids: list[str], texts: list[str],
              frontend: str, n_filters: int) -> Any:
    """A FeatureSet of in-memory waveforms, as the recogniser's front-end sees them."""
    from hwnas.nn.frontend import FeatureExtractor
    from hwnas.training.features import FeatureSet

    fe = FeatureExtractor(frontend, n_filters)
    frames = [fe(torch.from_numpy(w).float())[0].numpy().astype(np.float16) for w in waves]
    offsets = np.cumsum([0] + [len(f) for f in frames]).astype(np.int64)
    return FeatureSet(name, ids, texts, np.concatenate(frames), offsets)


def score(tts_run: Path, asr_run: Path, n: int = 50) -> dict[str, Any]:
    from hwnas.data.corpus import read_wav
    from hwnas.data.tokens import error_rates
    from hwnas.training.trainer import load_run, transcribe
    from hwnas.tts import data
    from hwnas.tts.quality import griffin_lim

    model, root, (mean, std) = load_tts_run(tts_run)
    asr, asr_arch, tok, norm = load_run(asr_run)
    phon = data.PhonemeSet.of(root)
    dev = data.load_split(root, "dev")[:n]
    texts = [u.text for u in dev]
    sources = {
        "model": [griffin_lim(model.synthesize(torch.from_numpy(phon.ids(u.phonemes)))
                              * std + mean) for u in dev],
        "espeak": [read_wav(root / "dev" / f"{u.id}.wav") for u in dev],
        "espeak_griffin_lim": [griffin_lim(torch.from_numpy(u.mel)) for u in dev],
    }
    out: dict[str, Any] = {"utterances": len(dev), "asr_run": str(asr_run),
                           "tts_run": str(tts_run)}
    hyps_of = {}
    for name, waves in sources.items():
        fs = _features(name, waves, [u.id for u in dev], texts, asr_arch.frontend,
                       asr_arch.n_filters)
        hyps = transcribe(asr, asr_arch, fs, tok, norm)
        hyps_of[name] = hyps
        out[name] = {k: round(float(v), 4) for k, v in error_rates(texts, hyps).items()
                     if k in ("cer", "wer")}
    out["examples"] = [{"text": t, **{k: hyps_of[k][i] for k in hyps_of}}
                       for i, t in enumerate(texts[:3])]
    return out
