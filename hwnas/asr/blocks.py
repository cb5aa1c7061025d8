"""Which block of a recogniser an exported node belongs to. torch.onnx
writes each node's module path into its name (``/encoder/layers.3/att/
MatMul``); the module names are this package's own (``models/``)."""

from __future__ import annotations

import re

_LAYER = re.compile(r"^/encoder/(?:[^/]+/)*?(?:layers|blocks|convs)\.(\d+)/([^/]+)")
_PARTS = (
    ("attention", ("att", "self_att", "q", "kv", "qkv", "o", "query", "pos", "cross")),
    ("convolution", ("conv", "dw", "pw", "pw1", "pw2", "convs", "se", "context")),
    ("feed-forward", ("ff", "ff1", "ff2", "fc")),
    ("recurrent", ("rnn", "lstm")),
)


#: chunk graphs exported before ``nn.common.chunk_call`` (their parts called by
#: method, not by module) lost the layer from their scopes: the exporter numbered
#: repeated scopes in call order instead, at the first level that repeats
#: (``/conv_3/``, ``/ff1/net/net.1_3/``); for a part each layer calls once, that
#: number is the layer. Today's chunk graphs carry the utterance graph's paths.
_CHUNK_PART = re.compile(r"^/([a-z_]+?[a-z12])(?:_(\d+))?/")
_REPEAT = re.compile(r"_(\d+)$")
_RNN = re.compile(r"^(?:/encoder)?/(?:rnn|lstm)(?:_\d+)?/")
_RNN_OP = re.compile(r"^(?:LSTM|GRU|RNN)(?:_(\d+))?$")
#: parts a layer calls exactly once (a norm may be called twice: its number is no layer)
_ONCE = {"att", "self_att", "qkv", "kv", "conv", "dw", "pw1", "pw2", "ff1", "ff2", "ff"}
_NORMS = ("norm", "norm2", "att_norm", "n2", "norms")


def block_of(node: str) -> str | None:
    """"front-end", "subsampling", "encoder layer N: attention" (or
    convolution, feed-forward, recurrent, norm+residual), "encoder",
    "decoder", "joiner"; None for a node outside every module."""
    m = _LAYER.match(node)
    if m:
        part = m[2].split(".")[0]
        kind = next((k for k, names in _PARTS if part in names), "norm+residual")
        return f"encoder layer {m[1]}: {kind}"
    if _RNN.match(node):
        # one multi-layer RNN module: its layers are the ops LSTM, LSTM_1, ...
        op = _RNN_OP.match(node.rsplit("/", 1)[-1])
        return (f"encoder layer {int(op[1] or 0)}: recurrent" if op
                else "encoder: recurrent state")
    m = _CHUNK_PART.match(node)
    if m and m[1] in _ONCE:
        kind = next(k for k, names in _PARTS if m[1] in names)
        layer = m[2]
        for seg in node.split("/")[2:-1] if layer is None else ():
            got = _REPEAT.search(seg)
            if got:
                layer = got[1]
                break
        return f"encoder layer {int(layer or 0)}: {kind}"
    if m and m[1] in _NORMS:
        return "encoder: norm+residual"
    top = node.split("/")[1] if node.startswith("/") and node.count("/") > 1 else ""
    if top in ("frontend", "features", "fbank"):
        return "front-end"
    if top == "subsampling":
        return "subsampling"
    if top == "encoder":
        return "encoder"
    if top in ("decoder", "ctc", "las", "pred", "pred_proj", "embed"):
        return "decoder"
    if top in ("joiner", "rnnt", "enc_proj"):
        return "joiner"
    return None
