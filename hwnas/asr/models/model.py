"""SpeechModel: front-end -> (look-ahead) -> subsampling -> encoder -> decoder.

Training-time forward works on padded batches with lengths. Streaming
architectures additionally run chunk by chunk through ``forward_chunk`` with
explicit caches; the full-sequence forward of the same model applies the same
causal/chunk masks, so both give the same outputs.

Look-ahead (streaming): a depthwise convolution over ``lookahead *
subsampling`` future feature frames, applied before subsampling. A chunk
therefore receives ``chunk * factor + lookahead * factor`` feature frames; the
last ones are read again as the start of the next chunk, and the algorithmic
latency grows by the look-ahead.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.asr import ArchConfig
from hwnas.asr.models.decoders import CTCHead, LASDecoder, RNNTDecoder, TransformerDecoder
from hwnas.asr.models.encoders import build_encoder
from hwnas.asr.models.subsampling import build_subsampling
from hwnas.nn.common import chunk_call, keep_frames, length_mask
from hwnas.nn.frontend import LearnableFilterbank, input_dim


class SpeechModel(nn.Module):
    """Input features (B, T, F) with F = ``input_dim``; see ``forward``."""

    def __init__(self, arch: ArchConfig) -> None:
        super().__init__()
        self.arch = arch
        self.input_dim = input_dim(arch.frontend, arch.n_filters)
        f, d, V = arch.n_filters, arch.d_model, arch.vocab_size
        self.frontend: nn.Module = (LearnableFilterbank(f) if arch.frontend == "learnable"
                                    else nn.Identity())
        self.factor = arch.subsampling_factor
        self.lookahead_frames = (arch.lookahead or 0) * self.factor
        self.lookahead: nn.Conv1d | None = None
        if self.lookahead_frames:
            self.lookahead = nn.Conv1d(f, f, self.lookahead_frames + 1, groups=f)
            with torch.no_grad():  # start close to "no look-ahead"
                self.lookahead.weight[:, :, 0] += 1.0
        self.subsampling = build_subsampling(arch.subsampling, f, d)
        self.encoder = build_encoder(arch)
        self.ctc = CTCHead(d, V) if arch.decoder != "rnnt" else None
        self.decoder: nn.Module | None = None
        if arch.decoder != "ctc":
            assert arch.decoder_dim is not None and arch.decoder_layers is not None
            cls = {"rnnt": RNNTDecoder, "las": LASDecoder,
                   "transformer": TransformerDecoder}[arch.decoder]
            self.decoder = cls(d, V, arch.decoder_dim, arch.decoder_layers)

    # --- full sequence ---------------------------------------------------------
    def encode(self, feats: torch.Tensor, lengths: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, F) -> encoder output (B, ceil(T / factor), D) and its lengths."""
        if feats.dim() != 3 or feats.shape[-1] != self.input_dim:
            raise ValueError(f"features must be (B, T, {self.input_dim}), got {tuple(feats.shape)}")
        B, T, _ = feats.shape
        x = self.frontend(feats)
        if lengths is not None:
            x = x * keep_frames(x, lengths)
        pad = (-T) % self.factor
        if pad:
            x = nn.functional.pad(x, (0, 0, 0, pad))
        if self.lookahead is not None:
            x = nn.functional.pad(x.transpose(1, 2), (0, self.lookahead_frames))
            x = self.lookahead(x).transpose(1, 2)
        x = self.subsampling(x)
        enc_lengths = None
        if lengths is not None:
            enc_lengths = torch.div(lengths + self.factor - 1, self.factor, rounding_mode="floor")
        return self.encoder(x, enc_lengths), enc_lengths

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor | None = None,
                targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training-time forward.

        feats (B, T, F), lengths (B,), targets (B, U) token ids without blank or
        start symbols. Returns ``enc`` (B, T', D), ``enc_lengths``, and as the
        decoder has them: ``ctc_logits`` (B, T', V); ``rnnt_logits`` (B, T', U+1, V);
        ``att_logits`` (B, U+1, V) for decoder input [0, y1..yU] predicting
        [y1..yU, 0] (token 0 is blank, start and end).
        """
        enc, enc_lengths = self.encode(feats, lengths)
        out: dict[str, torch.Tensor] = {"enc": enc}
        if enc_lengths is not None:
            out["enc_lengths"] = enc_lengths
        if self.ctc is not None:
            out["ctc_logits"] = self.ctc(enc)
        if targets is not None and self.decoder is not None:
            if isinstance(self.decoder, RNNTDecoder):
                out["rnnt_logits"] = self.decoder(enc, targets)
            else:
                valid = None
                if enc_lengths is not None:
                    valid = length_mask(enc_lengths, enc.shape[1], enc.shape[0])
                dec_in = torch.cat([torch.zeros_like(targets[:, :1]), targets], dim=1)
                out["att_logits"] = self.decoder(enc, dec_in, valid)
        return out

    # --- chunk mode ---------------------------------------------------------------
    @property
    def chunk_input_frames(self) -> int:
        """Feature frames one chunk call receives (chunk plus look-ahead)."""
        if not self.arch.streaming:
            raise ValueError("full-context architectures have no chunk model")
        assert self.arch.chunk_frames is not None
        return self.arch.chunk_frames * self.factor + self.lookahead_frames

    def cache_shapes(self, B: int = 1) -> list[tuple[int, ...]]:
        return self.subsampling.cache_shapes(B) + self.encoder.cache_shapes(B)

    def init_caches(self, B: int = 1) -> list[torch.Tensor]:
        return [torch.zeros(s) for s in self.cache_shapes(B)]

    def encode_chunk(self, feats: torch.Tensor, caches: list[torch.Tensor]
                     ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, chunk_input_frames, F) and caches -> (B, chunk, D) and new caches."""
        x = self.frontend(feats)
        if self.lookahead is not None:
            x = self.lookahead(x.transpose(1, 2)).transpose(1, 2)
        n = len(self.subsampling.cache_shapes(1))
        x, c1 = chunk_call(self.subsampling, x, caches[:n])
        y, c2 = chunk_call(self.encoder, x, caches[n:])
        return y, c1 + c2

    def split_chunks(self, feats: torch.Tensor) -> list[torch.Tensor]:
        """Cut (B, T, F) features into overlapping chunk inputs (zero-padded end)."""
        step = self.chunk_input_frames - self.lookahead_frames
        T = feats.shape[1]
        n = -(-T // step)
        padded = nn.functional.pad(feats, (0, 0, 0, n * step + self.lookahead_frames - T))
        return [padded[:, i * step: i * step + self.chunk_input_frames] for i in range(n)]


def build(arch: ArchConfig) -> SpeechModel:
    """Build the PyTorch model of an architecture (random initialisation);
    MemoryError naming the estimate where its weights would not fit in the
    memory this machine has free."""
    need = weight_bytes(arch)
    free = available_memory()
    if free is not None and need * BUILD_FACTOR > free:
        raise MemoryError(f"architecture {arch.id} has {need / 4 / 1e6:,.0f} M weights: about "
                          f"{need * BUILD_FACTOR / 2**30:,.1f} GiB to build and use, and this "
                          f"machine has {free / 2**30:,.1f} GiB free")
    return SpeechModel(arch)


#: memory to build, run and export a model, per byte of its fp32 weights (the
#: weights, one copy in the exporter or optimiser, and the activations)
BUILD_FACTOR = 3.0


def weight_bytes(arch: ArchConfig) -> int:
    """fp32 bytes of the model's weights, counted on PyTorch's meta device (no
    memory is allocated, however large the model)."""
    with torch.device("meta"):
        model = SpeechModel(arch)
    return 4 * sum(p.numel() for p in model.parameters())


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux's MemAvailable), or
    None where it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def speech_model(**hparams: object) -> SpeechModel:
    """Explicit factory: every hyper-parameter of :class:`ArchConfig` as a
    keyword (unset conditional ones stay ``None``); invalid settings raise
    ValueError naming the field and the rule."""
    return SpeechModel(ArchConfig.from_dict(hparams))
