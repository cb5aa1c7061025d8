"""Latency as a user of a streaming recogniser feels it.

A sound can be emitted only after the audio its chunk needs has arrived, and
only then does compute start:

  algorithmic delay = audio per call + look-ahead + the front-end's window
  emission delay    = algorithmic delay + compute per call (measured or predicted)
  real-time factor  = compute per call / audio per call

What is counted, for the sound at the *start* of a chunk (the worst case in
the chunk; a sound at its end waits a chunk less):

* the chunk itself (``chunk_ms``); in full context, the whole utterance the
  device graph takes (``UTTERANCE_MS``, 4.8 s): nothing is emitted
  before it has all arrived;
* the look-ahead: ``lookahead`` encoder frames of ``frame_ms`` each past the
  chunk's end;
* the front-end: the STFT window is 25 ms with a 10 ms hop and no centre
  padding, so the chunk's last frame needs 15 ms of audio past its hop start.

Not counted, because they add none: causal convolutional subsampling and
every cache (they only look back), frame stacking (it groups frames inside
the chunk, whose length is a multiple of the stacked frame), audio capture
and transport (the device's, not the model's).
"""

from __future__ import annotations

from hwnas.asr.arch import UTTERANCE_MS, ArchConfig
from hwnas.asr.decisions import FRAME_SHIFT_MS, SUBSAMPLING_FACTOR
from hwnas.space import SearchSpace

WINDOW_MS = 25                               # STFT window (frontend.N_FFT at 16 kHz)
FRONTEND_MS = WINDOW_MS - FRAME_SHIFT_MS     # past the last hop start: 15 ms


def audio_ms(arch: ArchConfig) -> float:
    """Audio one device-graph call covers: a chunk, or the utterance."""
    return float(arch.chunk_ms if arch.streaming else UTTERANCE_MS)


def lookahead_ms(arch: ArchConfig) -> float:
    return float(arch.lookahead * arch.frame_ms) if arch.streaming and arch.lookahead else 0.0


def algorithmic_delay_ms(arch: ArchConfig) -> float:
    """Audio that must arrive before the call that emits a chunk's first sound."""
    return audio_ms(arch) + lookahead_ms(arch) + FRONTEND_MS


def emission_delay_ms(arch: ArchConfig, compute_ms: float) -> float:
    return algorithmic_delay_ms(arch) + compute_ms


def rtf(arch: ArchConfig, compute_ms: float) -> float:
    return compute_ms / audio_ms(arch)


def describe(arch: ArchConfig) -> dict[str, float | None]:
    """The delay terms of one architecture, for tables and model cards."""
    return {"chunk_ms": float(arch.chunk_ms) if arch.streaming else None,
            "lookahead_ms": lookahead_ms(arch), "frontend_ms": float(FRONTEND_MS),
            "audio_ms": audio_ms(arch), "algorithmic_ms": algorithmic_delay_ms(arch)}


def within_delay(space: SearchSpace, max_delay_ms: float) -> SearchSpace:
    """``space`` without the choices whose every architecture waits longer
    than ``max_delay_ms`` before compute even starts. Algorithmic delay is
    exact, not predicted, so no trial needs to discover this: the chunks,
    look-aheads and full context that cannot meet the limit are left out."""
    by = {d.name: d for d in space.decisions}
    subs = list(by["subsampling"].choices)
    frame = {s: FRAME_SHIFT_MS * SUBSAMPLING_FACTOR[s] for s in subs}

    def fits(chunk: int, la: int) -> bool:
        return any(chunk % frame[s] == 0 and chunk + la * frame[s] + FRONTEND_MS <= max_delay_ms
                   for s in subs)

    chunks = [c for c in by["chunk_ms"].choices if any(fits(c, la)
                                                       for la in by["lookahead"].choices)]
    if not chunks:
        shortest = min(by["chunk_ms"].choices) + FRONTEND_MS
        raise ValueError(f"--max-delay {max_delay_ms:g} ms cannot be met: the shortest chunk of "
                         f"the space waits {shortest:g} ms for its audio before compute starts")
    out: dict[str, list] = {"chunk_ms": chunks,
                            "lookahead": [la for la in by["lookahead"].choices
                                          if any(fits(c, la) for c in chunks)]}
    if UTTERANCE_MS + FRONTEND_MS > max_delay_ms:
        out["streaming"] = [True]
    return space.with_choices({k: v for k, v in out.items()
                               if list(by[k].choices) != v})


def narrow(space: SearchSpace, streaming: bool = False, max_delay_ms: float | None = None
           ) -> tuple[SearchSpace, dict[str, list]]:
    """The space a search with ``--streaming`` and ``--max-delay`` explores,
    and the choices each left out (``{decision: [choices]}``)."""
    if streaming and True not in space.choices("streaming"):
        raise ValueError("--streaming: this space has no streaming architectures "
                         "(streaming = [false]); drop --streaming or allow true in the space")
    out = space.with_choices({"streaming": [True]}) if streaming else space
    if max_delay_ms:
        out = within_delay(out, max_delay_ms)
    kept = {d.name: d.choices for d in out.decisions}
    gone = {d.name: [c for c in d.choices if c not in kept[d.name]] for d in space.decisions}
    return out, {k: v for k, v in gone.items() if v}
