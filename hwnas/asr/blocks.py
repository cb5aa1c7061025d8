"""Which block of a recogniser an exported node belongs to. torch.onnx
writes each node's module path into its name (``/encoder/layers.3/att/
MatMul``); the module names are this package's own (``models/``)."""

from __future__ import annotations

import re

_LAYER = re.compile(r"^/encoder/(?:[^/]+/)*?(?:layers|blocks|convs)\.(\d+)/([^/]+)")
_PARTS = (
    ("attention", ("att", "self_att", "q", "kv", "o", "query", "pos", "cross")),
    ("convolution", ("conv", "dw", "pw", "pw1", "pw2", "convs", "se", "context")),
    ("feed-forward", ("ff", "ff1", "ff2", "fc")),
    ("recurrent", ("rnn", "lstm")),
)


def block_of(node: str) -> str | None:
    """"front-end", "subsampling", "encoder layer N: attention" (or
    convolution, feed-forward, recurrent, norm+residual), "encoder",
    "decoder", "joiner"; None for a node outside every module."""
    m = _LAYER.match(node)
    if m:
        part = m[2].split(".")[0]
        kind = next((k for k, names in _PARTS if part in names), "norm+residual")
        return f"encoder layer {m[1]}: {kind}"
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
