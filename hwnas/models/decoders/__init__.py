"""Decoder types, one module each: CTC, RNN-T, LAS-style attention and
transformer. The two attention decoders are always paired with a CTC head
(joint CTC/attention), which is what a streaming first pass emits."""

from hwnas.models.decoders.ctc import CTCHead
from hwnas.models.decoders.las import LASDecoder
from hwnas.models.decoders.rnnt import RNNTDecoder
from hwnas.models.decoders.transformer import TransformerDecoder

__all__ = ["CTCHead", "LASDecoder", "RNNTDecoder", "TransformerDecoder"]
