"""ArchConfig, the one definition of a speech architecture, and the speech
search space it is a point of."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from hwnas.asr.decisions import FRAME_SHIFT_MS, SUBSAMPLING_FACTOR, default_decisions
from hwnas.space import SearchSpace
from hwnas.space.record import ArchRecord

#: the device graph of a full-context architecture runs one utterance of this
#: many 10 ms frames (4.8 s; divisible by every subsampling factor) ...
UTTERANCE_FRAMES = 480
UTTERANCE_MS = UTTERANCE_FRAMES * FRAME_SHIFT_MS
#: ... and, with an attention decoder, one teacher-forced pass over this many
#: tokens (the cost of rescoring one hypothesis)
DECODE_TOKENS = 32


@dataclass(frozen=True)
class ArchConfig(ArchRecord):
    """A point of the search space. Fields that do not apply are ``None``.

    Every builder, exporter, predictor and search stage reads this object;
    none keeps its own copy of the choices. Constructing one checks nothing
    (the space builds valid ones); ``from_dict``/``from_json``, which read
    what users and files say, check it against the speech space.
    """

    frontend: str                    # logmel | mfcc | learnable
    n_filters: int                   # filterbank channels / cepstra
    subsampling: str                 # conv2d4 | conv2d6 | conv2d8 | stack4
    encoder: str                     # conformer|transformer|lstm|blstm|cnn_lstm|contextnet
    streaming: bool                  # chunked streaming (True) or full context
    num_layers: int                  # encoder layers / blocks
    d_model: int                     # encoder width
    decoder: str                     # ctc | rnnt | las | transformer
    attention: str | None = None     # mhsa | relpos | local | linear (attention encoders)
    heads: int | None = None         # attention heads (attention encoders)
    local_window: int | None = None  # frames each side (local attention)
    ffn_ratio: int | None = None     # feed-forward expansion (attention encoders)
    conv_kernel: int | None = None   # conv kernel (conformer, cnn_lstm, contextnet)
    causal_conv: bool | None = None  # causal convs in full-context mode (conv encoders)
    decoder_layers: int | None = None  # decoder / prediction-net layers (not CTC)
    decoder_dim: int | None = None   # decoder / prediction-net width (not CTC)
    chunk_ms: int | None = None      # chunk length in ms (streaming)
    left_chunks: int | None = None   # attention left context in chunks (streaming)
    lookahead: int | None = None     # look-ahead encoder frames (streaming)
    vocab_size: int = 64             # output tokens incl. blank; set by the tokenizer

    # --- derived quantities -------------------------------------------------
    @property
    def subsampling_factor(self) -> int:
        return SUBSAMPLING_FACTOR[self.subsampling]

    @property
    def frame_ms(self) -> int:
        """Duration of one encoder frame."""
        return FRAME_SHIFT_MS * self.subsampling_factor

    @property
    def chunk_frames(self) -> int | None:
        """Encoder frames per chunk (streaming only)."""
        return None if not self.streaming else self.chunk_ms // self.frame_ms

    @property
    def graph(self) -> str:
        """The device graph it runs: "chunk" (streaming) or "utterance"."""
        return "chunk" if self.streaming else "utterance"

    @property
    def uses_conv_causally(self) -> bool:
        return bool(self.streaming or self.causal_conv)

    @classmethod
    def space(cls) -> SearchSpace:
        return default_space()


def parse_archs(text: str, where: str) -> list[ArchConfig]:
    """One architecture (a JSON object) or many (one per line) from ``text``;
    a bad line is named by its number in ``where``."""
    try:
        return [ArchConfig.from_json(text)]
    except ValueError:
        pass
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(ArchConfig.from_json(line))
            except ValueError as e:
                raise ValueError(f"{where} line {n}: {e}") from None
    if not out:
        raise ValueError(f"{where} holds no architecture")
    return out


#: the largest value of each numeric field any device here could hold (and the
#: smallest): an architecture beyond these is refused before anything is allocated
BOUNDS: dict[str, tuple[int, int | None]] = {
    "n_filters": (1, 512), "num_layers": (1, 64), "d_model": (1, 4096), "heads": (1, 64),
    "local_window": (1, 4096), "ffn_ratio": (1, 16), "conv_kernel": (1, 255),
    "decoder_layers": (1, 16), "decoder_dim": (1, 4096), "chunk_ms": (1, 10_000),
    "left_chunks": (0, 1024), "lookahead": (0, 64), "vocab_size": (2, 100_000)}


@lru_cache(maxsize=1)
def default_space() -> SearchSpace:
    """The built-in speech search space."""
    return SearchSpace(default_decisions(), ArchConfig, BOUNDS)
