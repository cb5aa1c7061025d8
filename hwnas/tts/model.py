"""The TTS acoustic model a :class:`~hwnas.tts.arch.TTSArch` describes, and
the fixed-shape graph devices run.

phonemes -> embedding + positions -> encoder blocks -> duration predictor
-> length regulator -> decoder blocks (+ positions) -> linear -> log-mel.

Every block is pre-norm: ``x + mixer(norm(x))`` then ``x + ffn(x)``; padded
positions are zeroed after each block, and convolutions zero them again
right before they mix frames (a projection's bias would leak into the last
real frames), so a padded batch computes what each utterance alone does.
The length regulator is written with static shapes (an alignment matrix
frames x phonemes from the cumulative durations, then a matmul) so that the
same code trains with the true durations and exports to ONNX/TFLite with a
fixed bucket of phonemes in and of frames out.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.nn.attention import AttentionPlan, SelfAttention
from hwnas.nn.common import FeedForward, TimeConv, sinusoid_table
from hwnas.tts.arch import FRAME_BUCKET, PHONEME_BUCKET, TTSArch

FFN_RATIO = 4
MAX_POSITIONS = 4096


def _shifted(x: torch.Tensor, k: int) -> list[torch.Tensor]:
    """The k views x[t - k//2 + j], j < k, of (B, T, D) ``x``, zero beyond
    its ends. The zeros are made from the input, not a Pad, as TimeConv does
    (onnx2tf mis-infers the layout of padded 3-D tensors)."""
    if k == 1:
        return [x]
    half = k // 2
    zeros = x[:, :1] * 0.0 + x.new_zeros(1, half, 1)
    padded = torch.cat([zeros, x, zeros], dim=1)
    T = x.shape[1]
    return [padded[:, j:j + T] for j in range(k)]


class SepConv(nn.Module):
    """Depthwise convolution then pointwise projection (LightSpeech's block)."""

    def __init__(self, d: int, kernel: int) -> None:
        super().__init__()
        self.depthwise = TimeConv(d, d, kernel, causal=False, depthwise=True)
        self.pointwise = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.pointwise(torch.relu(self.depthwise(x * mask[..., None])))


class LightConv(nn.Module):
    """Lightweight convolution (Wu et al., 2019): GLU input projection, then
    one softmax-normalised kernel per head shared by the head's channels."""

    def __init__(self, d: int, kernel: int, heads: int) -> None:
        super().__init__()
        self.kernel, self.heads, self.d = kernel, heads, d
        self.inp = nn.Linear(d, 2 * d)
        self.weight = nn.Parameter(torch.randn(heads, kernel) * 0.1)
        self.out = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = nn.functional.glu(self.inp(x), dim=-1) * mask[..., None]
        w = torch.softmax(self.weight, dim=-1).repeat_interleave(self.d // self.heads, dim=0)
        y = sum(v * w[:, j] for j, v in enumerate(_shifted(x, self.kernel)))
        return self.out(y)


class DynConv(nn.Module):
    """Dynamic convolution (Wu et al., 2019): like :class:`LightConv`, but each
    frame predicts its own kernels (one per head) from its input."""

    def __init__(self, d: int, kernel: int, heads: int) -> None:
        super().__init__()
        self.kernel, self.heads, self.d = kernel, heads, d
        self.inp = nn.Linear(d, 2 * d)
        self.kernels = nn.Linear(d, heads * kernel)
        self.out = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # head by head in 3-D: converters lose the layout of 4-D reshapes
        h = nn.functional.glu(self.inp(x), dim=-1) * mask[..., None]
        logits = self.kernels(x)                                   # (B, T, heads * k)
        views = _shifted(h, self.kernel)
        c, k = self.d // self.heads, self.kernel
        out = []
        for i in range(self.heads):
            w = torch.softmax(logits[..., i * k:(i + 1) * k], dim=-1)
            out.append(sum(v[..., i * c:(i + 1) * c] * w[..., j:j + 1]
                           for j, v in enumerate(views)))
        return self.out(torch.cat(out, dim=-1) if self.heads > 1 else out[0])


class Attention(nn.Module):
    """Multi-head self-attention over the valid positions."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.att = SelfAttention(d, AttentionPlan("mhsa", heads))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.att(x, mask[:, None, :] > 0.5)


def _mixer(block: str, d: int, heads: int | None, kernel: int | None) -> nn.Module:
    if block == "transformer":
        return Attention(d, heads or 1)
    if block == "sepconv":
        return SepConv(d, kernel or 1)
    if block == "lightconv":
        return LightConv(d, kernel or 1, heads or 1)
    if block == "dynconv":
        return DynConv(d, kernel or 1, heads or 1)
    raise ValueError(f"unknown TTS block {block!r}")


class Block(nn.Module):
    def __init__(self, block: str, d: int, heads: int | None, kernel: int | None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.mixer = _mixer(block, d, heads, kernel)
        self.ffn = FeedForward(d, FFN_RATIO)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``mask`` (B, T) float: 1 on valid positions."""
        keep = mask[..., None]
        x = (x + self.mixer(self.norm(x), mask)) * keep
        return (x + self.ffn(x)) * keep


class Stack(nn.Module):
    def __init__(self, n: int, block: str, d: int, heads: int | None,
                 kernel: int | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(block, d, heads, kernel) for _ in range(n))
        self.register_buffer("pos", sinusoid_table(MAX_POSITIONS, d), persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = (x + self.pos[: x.shape[1]]) * mask[..., None]
        for b in self.blocks:
            x = b(x, mask)
        return x


class DurationPredictor(nn.Module):
    """FastSpeech 2's variance predictor: two (conv, ReLU, norm) layers and a
    linear output, predicting log(1 + frames) per phoneme."""

    def __init__(self, d_in: int, d: int, kernel: int) -> None:
        super().__init__()
        self.c1, self.n1 = TimeConv(d_in, d, kernel, causal=False), nn.LayerNorm(d)
        self.c2, self.n2 = TimeConv(d, d, kernel, causal=False), nn.LayerNorm(d)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.n1(torch.relu(self.c1(x)))) * mask[..., None]
        x = self.drop(self.n2(torch.relu(self.c2(x)))) * mask[..., None]
        return self.out(x)[..., 0] * mask


def regulate(h: torch.Tensor, dur: torch.Tensor, frames: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Length regulator: phoneme states (B, N, D) repeated ``dur`` (B, N)
    times each into (B, frames, D), and the (B, frames) float mask of frames
    that some phoneme covers. Cumulative sums as a matmul with a triangular
    matrix, which every converter takes; a batch of one (the device graph)
    compares in 2-D, as 3-D broadcasts are where converters lose the layout."""
    B, N = dur.shape
    tri = torch.triu(torch.ones(N, N, dtype=h.dtype, device=h.device))
    d = dur.to(h.dtype)
    ends = d @ tri                                     # (B, N)
    starts = ends - d
    t = torch.arange(frames, dtype=h.dtype, device=h.device)[:, None]   # (T, 1)
    if B == 1:
        align = ((t >= starts) & (t < ends)).to(h.dtype)                  # (T, N)
        covered = (t < ends[:, N - 1:]).to(h.dtype)                       # (T, 1)
        return (align @ h[0])[None], covered.reshape(1, frames)
    align = ((t[None] >= starts[:, None, :]) & (t[None] < ends[:, None, :])).to(h.dtype)
    return align @ h, (t[None, :, 0] < ends[:, N - 1:]).to(h.dtype)


class AcousticModel(nn.Module):
    def __init__(self, arch: TTSArch) -> None:
        super().__init__()
        self.arch = arch
        self.embed = nn.Embedding(arch.n_phonemes, arch.enc_hidden)
        self.encoder = Stack(arch.enc_layers, arch.enc_block, arch.enc_hidden, arch.enc_heads,
                             arch.enc_kernel)
        self.duration = DurationPredictor(arch.enc_hidden, arch.var_hidden, arch.var_kernel)
        self.bridge = nn.Linear(arch.enc_hidden, arch.dec_hidden)
        self.decoder = Stack(arch.dec_layers, arch.dec_block, arch.dec_hidden, arch.dec_heads,
                             arch.dec_kernel)
        self.mel = nn.Linear(arch.dec_hidden, arch.n_mels)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded phonemes (B, N, enc_hidden) -> (states, predicted log(1 + frames))."""
        h = self.encoder(x, mask)
        return h, self.duration(h, mask)

    def decode(self, h: torch.Tensor, dur: torch.Tensor, frames: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
        y, fmask = regulate(self.bridge(h), dur, frames)
        return self.mel(self.decoder(y, fmask)) * fmask[..., None], fmask

    def forward(self, phonemes: torch.Tensor, dur: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training: phoneme ids (B, N) (0 pads), true durations (B, N) ->
        (mel (B, T, n_mels), predicted log-durations (B, N), frame mask)."""
        mask = (phonemes != 0).to(torch.float32)
        h, log_dur = self.encode(self.embed(phonemes), mask)
        frames = int(dur.sum(dim=1).max())
        mel, fmask = self.decode(h, dur, frames)
        return mel, log_dur, fmask

    @staticmethod
    def frames_of(log_dur: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted durations, rounded, as the device graph computes them."""
        return torch.floor(torch.clamp(torch.exp(log_dur) - 1.0, min=0.0) + 0.5) * mask

    @torch.no_grad()
    def synthesize(self, phonemes: torch.Tensor) -> torch.Tensor:
        """Phoneme ids (N,) -> log-mel (T, n_mels) with predicted durations."""
        ids = phonemes[None]
        mask = torch.ones_like(ids, dtype=torch.float32)
        h, log_dur = self.encode(self.embed(ids), mask)
        dur = self.frames_of(log_dur, mask)
        mel, _ = self.decode(h, dur, max(1, int(dur.sum())))
        return mel[0]


def build(arch: TTSArch) -> AcousticModel:
    return AcousticModel(arch)


class TTSGraph(nn.Module):
    """What a device runs: ``tokens (1, PHONEME_BUCKET, n_phonemes)`` one-hot
    phonemes (one-hot index 0 pads the bucket) -> ``mel (1, FRAME_BUCKET,
    n_mels)`` and ``frames (1, 1)``, the frames that hold speech (at most the
    bucket). The compute is the same for any input: a fixed-shape graph."""

    def __init__(self, model: AcousticModel, phonemes: int = PHONEME_BUCKET,
                 frames: int = FRAME_BUCKET) -> None:
        super().__init__()
        from hwnas.nn.spec import TensorSpec

        self.model, self.frames = model, frames
        self.inputs = [TensorSpec("tokens", (1, phonemes, model.arch.n_phonemes))]
        self.outputs = ["mel", "frames"]
        self.feedback: dict[int, int] = {}

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = 1.0 - tokens[..., 0]
        h, log_dur = self.model.encode(tokens @ self.model.embed.weight, mask)
        dur = self.model.frames_of(log_dur, mask)
        mel, fmask = self.model.decode(h, dur, self.frames)
        return mel, fmask.sum(dim=1, keepdim=True)

    def example_inputs(self, seed: int = 0) -> list[torch.Tensor]:
        return [torch.from_numpy(x) for x in self.sample_inputs(1, seed)[0]]

    def sample_inputs(self, n: int, seed: int) -> list[list]:
        """``n`` input sets: random phoneme strings filling 30-100% of the
        bucket, padded."""
        g = torch.Generator().manual_seed(seed)
        N, P = self.inputs[0].shape[1:]
        out = []
        for _ in range(n):
            length = int(torch.randint(max(1, N * 3 // 10), N + 1, (1,), generator=g))
            ids = torch.zeros(N, dtype=torch.long)
            ids[:length] = torch.randint(2, P, (length,), generator=g)
            out.append([nn.functional.one_hot(ids, P).float()[None].numpy()])
        return out


def device_graph(model: AcousticModel) -> TTSGraph:
    return TTSGraph(model).eval()
