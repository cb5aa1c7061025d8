"""The graphs that devices run, with named inputs and outputs.

* ``ChunkGraph`` (streaming architectures): one call per chunk,
  ``features (1, chunk_in, F), cache_0..cache_n [, prev_token, pred_h, pred_c]``
  -> ``logits (1, chunk, V), new_cache_0..new_cache_n [, new_pred_h, new_pred_c]``.
  For RNN-T the logits are the joint network of every chunk frame against one
  prediction-network step; for the attention decoders the chunk graph is the
  CTC first pass (the attention decoder rescores at the end of the utterance).
* ``UtteranceGraph`` (full context): one call per utterance of
  ``UTTERANCE_FRAMES`` frames; attention decoders add one teacher-forced pass
  over ``DECODE_TOKENS`` tokens (the cost of rescoring one hypothesis).

Token inputs are one-hot float vectors so that every input is a float tensor.

``sample_inputs`` gives inputs for quantisation and parity checks: features
of synthetic speech-like audio through the real front-end (so their ranges
match speech features), and chunk graphs driven as a stream, so their cache
inputs hold the values they have in use, not zeros.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from hwnas.asr.arch import DECODE_TOKENS, UTTERANCE_FRAMES  # noqa: F401 - re-exported
from hwnas.asr.models.decoders import RNNTDecoder
from hwnas.asr.models.model import SpeechModel
from hwnas.nn.audio import synthetic_audio
from hwnas.nn.frontend import HOP, N_FFT, SAMPLE_RATE, FeatureExtractor
from hwnas.nn.graph_io import initial_feeds
from hwnas.nn.spec import TensorSpec


class _Graph(nn.Module):
    inputs: list[TensorSpec]
    outputs: list[str]
    #: output index -> input index it feeds on the next call (streaming state)
    feedback: dict[int, int]

    def example_inputs(self, seed: int = 0) -> list[torch.Tensor]:
        """Random features and zero states (the start of a stream): the feeds
        every runtime times the graph with (:func:`hwnas.nn.graph_io.initial_feeds`)."""
        feeds = initial_feeds([{"name": s.name, "shape": list(s.shape)} for s in self.inputs],
                              seed)
        return [torch.from_numpy(v) for v in feeds.values()]

    def _features(self, frames: int, seed: int) -> torch.Tensor:
        arch = self.model.arch
        seconds = (frames - 1) * HOP / SAMPLE_RATE + N_FFT / SAMPLE_RATE
        wave = synthetic_audio(seconds + 0.01, seed)
        return FeatureExtractor(arch.frontend, arch.n_filters)(wave)[:, :frames]


class ChunkGraph(_Graph):
    def __init__(self, model: SpeechModel) -> None:
        super().__init__()
        self.model = model
        self.rnnt = isinstance(model.decoder, RNNTDecoder)
        self.cache_shapes = model.cache_shapes(1)
        self.n_cache = len(self.cache_shapes)
        self.inputs = [TensorSpec("features", (1, model.chunk_input_frames, model.input_dim))]
        # Caches cross the graph boundary flattened to (1, N): converters that
        # re-layout 3-D/4-D tensors (NCHW -> NHWC) leave 2-D tensors alone.
        self.inputs += [TensorSpec(f"cache_{i}", (1, math.prod(s[1:])))
                        for i, s in enumerate(self.cache_shapes)]
        self.outputs = ["logits"] + [f"new_cache_{i}" for i in range(self.n_cache)]
        self.feedback = {1 + i: 1 + i for i in range(self.n_cache)}
        if self.rnnt:
            assert isinstance(model.decoder, RNNTDecoder)
            self.pred_shape, _ = model.decoder.state_shapes(1)
            flat = (1, math.prod(self.pred_shape[1:]))
            V = model.arch.vocab_size
            self.inputs += [TensorSpec("prev_token", (1, V)), TensorSpec("pred_h", flat),
                            TensorSpec("pred_c", flat)]
            self.outputs += ["new_pred_h", "new_pred_c"]
            n = 1 + self.n_cache
            self.feedback.update({n: n + 1, n + 1: n + 2})

    def forward(self, features: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        caches = [c.reshape(s) for c, s in zip(states[: self.n_cache], self.cache_shapes)]
        enc, new = self.model.encode_chunk(features, caches)
        flat = [c.reshape(1, -1) for c in new]
        if self.rnnt:
            prev, h, c = states[self.n_cache:]
            shape = h.shape
            logits, h, c = self.model.decoder.step_joint(
                enc, prev, h.reshape(self.pred_shape), c.reshape(self.pred_shape))
            return (logits, *flat, h.reshape(shape), c.reshape(shape))
        assert self.model.ctc is not None
        return (self.model.ctc(enc), *flat)

    def sample_inputs(self, n: int, seed: int) -> list[list[np.ndarray]]:
        """``n`` input sets in input order: chunks of synthetic utterances, each
        stream from zero state, its state fed back from call to call."""
        samples: list[list[np.ndarray]] = []
        rng = torch.Generator().manual_seed(seed)
        utter = 0
        with torch.no_grad():
            while len(samples) < n:
                feats = self._features(400, seed * 1000 + utter)
                utter += 1
                state = self.example_inputs(seed)[1:]  # a new stream starts from zeros
                for chunk in self.model.split_chunks(feats):
                    ins = [chunk] + list(state)
                    if self.rnnt:  # a random previous token, as during decoding
                        V = self.model.arch.vocab_size
                        tok = torch.randint(0, V, (1,), generator=rng)
                        ins[1 + self.n_cache] = torch.nn.functional.one_hot(tok, V).float()
                    samples.append([x.numpy() for x in ins])
                    outs = self(*ins)
                    nxt = list(ins[1:])
                    for o, i in self.feedback.items():
                        nxt[i - 1] = outs[o]
                    state = nxt
                    if len(samples) == n:
                        break
        return samples


class UtteranceGraph(_Graph):
    def __init__(self, model: SpeechModel, frames: int = UTTERANCE_FRAMES) -> None:
        super().__init__()
        self.model = model
        self.kind = model.arch.decoder
        V = model.arch.vocab_size
        self.inputs = [TensorSpec("features", (1, frames, model.input_dim))]
        self.outputs = ["logits"]
        self.feedback = {}
        if self.kind == "rnnt":
            assert isinstance(model.decoder, RNNTDecoder)
            self.pred_shape, _ = model.decoder.state_shapes(1)
            flat = (1, math.prod(self.pred_shape[1:]))
            self.inputs += [TensorSpec("prev_token", (1, V)), TensorSpec("pred_h", flat),
                            TensorSpec("pred_c", flat)]
            self.outputs += ["new_pred_h", "new_pred_c"]
        elif self.kind in ("las", "transformer"):
            self.inputs.append(TensorSpec("tokens", (1, DECODE_TOKENS, V)))
            self.outputs.append("att_logits")

    def forward(self, features: torch.Tensor, *extra: torch.Tensor) -> tuple[torch.Tensor, ...]:
        enc, _ = self.model.encode(features)
        if self.kind == "rnnt":
            prev, h, c = extra
            logits, h2, c2 = self.model.decoder.step_joint(
                enc, prev, h.reshape(self.pred_shape), c.reshape(self.pred_shape))
            return logits, h2.reshape(h.shape), c2.reshape(c.shape)
        assert self.model.ctc is not None
        logits = self.model.ctc(enc)
        if self.kind == "ctc":
            return (logits,)
        return logits, self.model.decoder.forward_onehot(enc, extra[0])

    def sample_inputs(self, n: int, seed: int) -> list[list[np.ndarray]]:
        """``n`` input sets in input order: synthetic utterances' features."""
        out = []
        with torch.no_grad():
            for i in range(n):
                feats = self._features(self.inputs[0].shape[1], seed * 1000 + i)
                out.append([x.numpy() for x in [feats] + self.example_inputs(seed * 1000 + i)[1:]])
        return out


def device_graph(model: SpeechModel) -> ChunkGraph | UtteranceGraph:
    """The graph a device runs for this architecture, in eval mode."""
    model.eval()
    g: ChunkGraph | UtteranceGraph = (ChunkGraph(model) if model.arch.streaming
                                      else UtteranceGraph(model))
    return g.eval()
