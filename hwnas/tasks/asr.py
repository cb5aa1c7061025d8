"""Speech recognition: ``hwnas.asr``'s architectures behind the task interface."""

from __future__ import annotations

from typing import Any

from hwnas.tasks._base import Task


class ASR(Task):
    name = "asr"

    def arch_from_dict(self, data: dict[str, Any]) -> Any:
        from hwnas.asr import ArchConfig

        return ArchConfig.from_dict(data)

    def default_space(self) -> Any:
        from hwnas.asr import default_space

        return default_space()

    def analytic(self, cols: dict[str, Any]) -> dict[str, Any]:
        from hwnas.asr.cost import analytic

        return analytic(cols)

    def build_model(self, arch: Any) -> Any:
        from hwnas.asr.models import build

        return build(arch)

    def device_graph(self, model: Any) -> Any:
        from hwnas.asr.models import device_graph

        return device_graph(model)

    def stats(self, arch: Any) -> dict[str, Any]:
        from hwnas.asr.models.stats import model_stats

        st = model_stats(arch)
        return {"params": st.graph_params, "flops": st.flops}

    def audio_ms(self, arch: Any) -> float:
        from hwnas.asr import delay

        return delay.audio_ms(arch)

    def row_fields(self, arch: Any) -> dict[str, Any]:
        return {"encoder": arch.encoder, "decoder": arch.decoder, "streaming": arch.streaming}
