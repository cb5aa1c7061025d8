"""TTS acoustic models: ``hwnas.tts``'s architectures behind the task interface."""

from __future__ import annotations

from typing import Any

from hwnas.tasks._base import Task


class TTS(Task):
    name = "tts"
    help = "see `hwnas tts --help`"

    def arch_from_dict(self, data: dict[str, Any]) -> Any:
        from hwnas.tts.arch import TTSArch

        return TTSArch.from_dict(data)

    def default_space(self) -> Any:
        from hwnas.tts import default_space

        return default_space()

    def analytic(self, cols: dict[str, Any]) -> dict[str, Any]:
        from hwnas.tts.cost import analytic

        return analytic(cols)

    def build_model(self, arch: Any) -> Any:
        from hwnas.tts.model import build

        return build(arch)

    def device_graph(self, model: Any) -> Any:
        from hwnas.tts.model import device_graph

        return device_graph(model)

    def stats(self, arch: Any) -> dict[str, Any]:
        import torch

        from hwnas.asr.models.stats import count_flops

        torch.manual_seed(0)
        graph = self.device_graph(self.build_model(arch))
        return {"params": sum(p.numel() for p in graph.parameters()),
                "flops": count_flops(graph, graph.example_inputs())}

    def audio_ms(self, arch: Any) -> float:
        from hwnas.tts.arch import FRAME_BUCKET, FRAME_MS

        return float(FRAME_BUCKET * FRAME_MS)

    def row_fields(self, arch: Any) -> dict[str, Any]:
        return {"encoder": f"tts:{arch.enc_block}", "decoder": f"tts:{arch.dec_block}",
                "streaming": False}
