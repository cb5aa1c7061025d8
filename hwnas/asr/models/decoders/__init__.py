"""Decoder types, one module each: CTC, RNN-T, LAS-style attention and
transformer. The two attention decoders are always paired with a CTC head
(joint CTC/attention), which is what a streaming first pass emits."""

from hwnas.asr.models.decoders.ctc import CTCHead
from hwnas.asr.models.decoders.las import LASDecoder
from hwnas.asr.models.decoders.rnnt import RNNTDecoder
from hwnas.asr.models.decoders.transformer import TransformerDecoder

__all__ = ["CTCHead", "LASDecoder", "RNNTDecoder", "TransformerDecoder"]
