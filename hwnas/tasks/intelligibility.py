"""Intelligibility: what a TTS model says, as a speech recogniser hears it.
It joins the two tasks, so it lives here, above both (the recogniser's
training), not in ``hwnas.tts``.

The dev sentences are synthesised by the TTS model (its own durations),
turned to audio by Griffin-Lim, and transcribed by a reference hwnas ASR
run trained on the built-in corpus; CER and WER are against the sentence
text. Beside them, two ceilings through the same recogniser: eSpeak's own
audio of the same sentences, and Griffin-Lim of eSpeak's true mels (what
the vocoder alone loses). A reference recogniser trained only minutes has a
high floor of its own, so read the model's CER against those ceilings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


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
    from hwnas.asr.train import load_run, transcribe
    from hwnas.data.corpus import read_wav
    from hwnas.data.tokens import error_rates
    from hwnas.tts import data
    from hwnas.tts.quality import griffin_lim
    from hwnas.tts.run import load_tts_run

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
