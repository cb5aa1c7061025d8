"""TTS acoustic models: ``hwnas.tts``'s architectures behind the task interface."""

from __future__ import annotations

from typing import Any

from hwnas.tasks._base import Task


class TTS(Task):
    name = "tts"
    help = "see `hwnas tts --help`"
    quality = ("mcd", "cer")
    objectives = {"mcd": "dev MCD (dB)",
                  "cer": "intelligibility CER (needs --asr-run)",
                  "latency": "compute ms per call (measured)",
                  "rtf": "real-time factor (measured)", "params": "parameters"}
    latency = "measured"
    trains_on_accelerators = True
    untrained = 1e3
    export_files = ("mel_norm.npz",)
    default_rungs = "60s"

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

    # --- search -----------------------------------------------------------------------
    def judge(self, arch: Any, latency_ms: float) -> dict[str, float]:
        """A call synthesises a whole bucket at once: its first sound comes
        when the compute ends (no input to wait for)."""
        from hwnas.tts.arch import default_space
        from hwnas.tts.cost import analytic

        cost = analytic(default_space().columns([arch]))
        return {"latency": latency_ms, "algorithmic": 0.0, "delay": latency_ms,
                "rtf": latency_ms / self.audio_ms(arch),
                "params": float(int(cost["params"][0])), "size": float(cost["weight_mb"][0])}

    def presets(self) -> dict[str, Any]:
        from hwnas.tts.arch import PRESETS, preset

        return {name: preset(name) for name in PRESETS}

    def search_space(self, space: Any, data: Any) -> Any:
        return space.with_fixed(n_phonemes=data.phonemes())

    def describe(self, arch: Any) -> tuple[dict[str, Any], str]:
        st, line = super().describe(arch)
        return st, f"{line} (61 phonemes -> 5 s of mel frames)"

    def rung_unit(self, data: Any, arch: dict[str, Any], *, workspace: str, budget: float,
                  unit: str, seed: int, run_dir: str, resume: bool, extra: dict[str, Any],
                  options: dict[str, Any]) -> Any:
        from hwnas.tasks.units import TTSTrainRung

        return TTSTrainRung(arch=arch, data={"lang": data.lang, "size": data.size,
                                             "asr_run": data.asr_run},
                            workspace=workspace, budget=budget, unit=unit, seed=seed,
                            run_dir=run_dir, resume=resume, extra=extra,
                            train_options={k: options[k] for k in ("device", "precision")
                                           if k in options},
                            gpus=options.get("gpus", 1.0))

    def set_aside_run(self, run_dir: Any) -> Any:
        from pathlib import Path

        from hwnas.tts.run import set_aside_run

        return set_aside_run(Path(run_dir))

    def check_run(self, run_dir: Any) -> None:
        from hwnas.tts.run import load_tts_run

        load_tts_run(run_dir)
