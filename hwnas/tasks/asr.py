"""Speech recognition: ``hwnas.asr``'s architectures behind the task interface."""

from __future__ import annotations

from typing import Any

from hwnas.tasks._base import Task


class ASR(Task):
    name = "asr"
    quality = ("cer", "cer_mean", "cer_worst")
    trains_on_accelerators = True
    objectives = {"cer": "dev CER", "cer_mean": "dev CER, mean over languages",
                  "cer_worst": "dev CER, worst language",
                  "latency": "compute ms per call (predicted)",
                  "delay": "emission delay ms (predicted)",
                  "rtf": "real-time factor (predicted)", "params": "parameters"}
    supernets = final_phase = test_sets = True
    export_files = ("tokenizer.json", "feature_norm.npz")

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

    def describe(self, arch: Any) -> tuple[dict[str, Any], str]:
        from hwnas.asr.models.stats import model_stats

        st = model_stats(arch)
        per = "per chunk" if st.graph == "chunk" else "per utterance (4.8 s)"
        return st.to_dict(), (f"{st.params:,} parameters ({st.graph_params:,} in the device "
                              f"graph), {st.flops / 1e6:,.1f} MFLOPs {per}")

    def calls_per_stream(self, arch: Any) -> int | None:
        from hwnas.asr.arch import UTTERANCE_MS

        return max(1, UTTERANCE_MS // arch.chunk_ms) if arch.streaming else None

    def row_fields(self, arch: Any) -> dict[str, Any]:
        return {"encoder": arch.encoder, "decoder": arch.decoder, "streaming": arch.streaming}

    def op_block(self, node: str) -> str | None:
        from hwnas.asr.blocks import block_of

        return block_of(node)

    # --- search -----------------------------------------------------------------------
    def quality_key(self, objective: str) -> str:
        return "cer"   # a record's "cer" is the study's measure: pooled, mean or worst

    def judge(self, arch: Any, latency_ms: float) -> dict[str, float]:
        from hwnas.asr import default_space, delay
        from hwnas.asr.cost import analytic

        cost = analytic(default_space().columns([arch]))
        algorithmic = delay.algorithmic_delay_ms(arch)
        return {"latency": latency_ms, "algorithmic": algorithmic,
                "delay": algorithmic + latency_ms, "rtf": delay.rtf(arch, latency_ms),
                "params": float(int(cost["params"][0])), "size": float(cost["weight_mb"][0])}

    def delay_parts(self, arch: Any) -> dict[str, Any] | None:
        from hwnas.asr import delay

        return delay.describe(arch)

    def narrow(self, space: Any, streaming: bool, max_delay_ms: float | None
               ) -> tuple[Any, dict[str, list[Any]]]:
        from hwnas.asr.delay import narrow

        return narrow(space, streaming, max_delay_ms)

    def presets(self) -> dict[str, Any]:
        from hwnas.asr.presets import preset, preset_names

        return {name: preset(name) for name in preset_names()}

    def rung_unit(self, data: Any, arch: dict[str, Any], *, workspace: str, budget: float,
                  unit: str, seed: int, run_dir: str, resume: bool, extra: dict[str, Any],
                  options: dict[str, Any]) -> Any:
        from hwnas.tasks.units import TrainRung

        return TrainRung(arch=arch, corpus=data.description, workspace=workspace,
                         budget=budget, unit=unit, seed=seed, run_dir=run_dir, resume=resume,
                         extra={**extra, "corpus": data.description},
                         train_options={"eval_every": 10**9,
                                        **{k: v for k, v in options.items()
                                           if k not in ("snapshot_every_s", "gpus")}},
                         gpus=options.get("gpus", 1.0),
                         **({"snapshot_every_s": options["snapshot_every_s"]}
                            if "snapshot_every_s" in options else {}))

    def set_aside_run(self, run_dir: Any) -> Any:
        from hwnas.asr.train import set_aside_run

        return set_aside_run(run_dir)

    def test_scores(self, run_dir: Any, test_sets: Any) -> dict[str, dict[str, Any]]:
        from hwnas.asr.train import evaluate, load_run

        model, arch, tok, norm = load_run(run_dir)
        return {name: evaluate(model, arch, fs, tok, norm, lexicon=lex)
                for name, (fs, lex) in test_sets(arch.frontend, arch.n_filters).items()}

    def weight_sharing(self) -> Any:
        from hwnas.asr import supernet

        return supernet

    def check_run(self, run_dir: Any) -> None:
        from hwnas.asr.train import load_run

        load_run(run_dir)
