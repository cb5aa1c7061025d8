"""Parameter count and FLOPs per architecture."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hwnas.asr import ArchConfig
from hwnas.asr.models.graphs import ChunkGraph, device_graph
from hwnas.asr.models.model import build


@dataclass(frozen=True)
class ModelStats:
    params: int        # every parameter of the model
    graph_params: int  # parameters of the device graph (a streaming attention
                       # decoder rescoring at utterance end is not in it)
    flops: int         # FLOPs of one device-graph call (per chunk / per utterance)
    graph: str         # "chunk" or "utterance"

    def to_dict(self) -> dict[str, int | str]:
        return {"params": self.params, "graph_params": self.graph_params,
                "flops": self.flops, "graph": self.graph}


def _lstm_flops(m: nn.LSTM, x: torch.Tensor) -> int:
    """2 x 4 gates x H x (input + H) multiply-adds per step, layer and direction.
    PyTorch's FLOP counter does not see inside the fused LSTM kernel."""
    B, T = x.shape[0], x.shape[1]
    dirs = 2 if m.bidirectional else 1
    total, d_in = 0, m.input_size
    for _ in range(m.num_layers):
        total += 2 * 4 * m.hidden_size * (d_in + m.hidden_size) * B * T * dirs
        d_in = m.hidden_size * dirs
    return total


def count_flops(graph: nn.Module, inputs: list[torch.Tensor]) -> int:
    lstm = 0

    def hook(m: nn.Module, args: tuple[torch.Tensor, ...], _out: object) -> None:
        nonlocal lstm
        lstm += _lstm_flops(m, args[0])  # type: ignore[arg-type]

    hooks = [m.register_forward_hook(hook) for m in graph.modules() if isinstance(m, nn.LSTM)]
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            graph(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return int(counter.get_total_flops()) + lstm


def model_stats(arch: ArchConfig) -> ModelStats:
    """Params (total and in the device graph) and FLOPs of one graph call."""
    torch.manual_seed(0)
    model = build(arch)
    graph = device_graph(model)
    total = sum(p.numel() for p in model.parameters())
    unused = 0
    if isinstance(graph, ChunkGraph) and arch.decoder in ("las", "transformer"):
        assert model.decoder is not None
        unused = sum(p.numel() for p in model.decoder.parameters())
    return ModelStats(params=total, graph_params=total - unused,
                      flops=count_flops(graph, graph.example_inputs()),
                      graph=arch.graph)
