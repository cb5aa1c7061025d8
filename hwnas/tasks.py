"""The tasks an architecture can belong to (speech recognition, TTS) and
the few things the shared machinery (export, profiling, runtimes) asks of
one: read it from JSON, build its device graph, count its cost, and say how
much audio one graph call stands for. A TTS architecture says
``"task": "tts"``; anything else is a speech recogniser (older files have
no ``task`` field)."""

from __future__ import annotations

from typing import Any

TASKS = ("asr", "tts")


def task_of(arch: Any) -> str:
    return "tts" if getattr(arch, "task", None) == "tts" else "asr"


def require(arch: Any, allowed: tuple[str, ...], where: str) -> Any:
    """``arch`` when its task is one of ``allowed``, else one ValueError line."""
    task = task_of(arch)
    if task not in allowed:
        hint = " (see `hwnas tts --help`)" if task == "tts" else ""
        raise ValueError(f"{where} is a {task.upper()} architecture; this command takes "
                         f"{' or '.join(t.upper() for t in allowed)} ones{hint}")
    return arch


def arch_from_dict(data: Any) -> Any:
    if isinstance(data, dict) and data.get("task") == "tts":
        from hwnas.tts.arch import TTSArch

        return TTSArch.from_dict(data)
    from hwnas.asr import ArchConfig

    return ArchConfig.from_dict(data)


def arch_from_json(text: str) -> Any:
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    return arch_from_dict(data)


def default_space(task: str = "asr") -> Any:
    """The task's built-in search space."""
    if task == "tts":
        from hwnas.tts import default_space as space
    else:
        from hwnas.asr import default_space as space
    return space()


def analytic(task: str, cols: dict[str, Any]) -> dict[str, Any]:
    """The task's analytic cost model over the space's ``columns`` (the
    columns of :data:`hwnas.asr.cost.ANALYTIC`, for either task)."""
    if task == "tts":
        from hwnas.tts.cost import analytic as cost
    else:
        from hwnas.asr.cost import analytic as cost
    return cost(cols)


def build_model(arch: Any) -> Any:
    if task_of(arch) == "tts":
        from hwnas.tts.model import build
    else:
        from hwnas.asr.models import build
    return build(arch)


def device_graph(model: Any) -> Any:
    if task_of(model.arch) == "tts":
        from hwnas.tts.model import device_graph as graph
    else:
        from hwnas.asr.models import device_graph as graph
    return graph(model)


def stats(arch: Any) -> dict[str, Any]:
    """``params`` (of the device graph) and ``flops`` of one graph call."""
    if task_of(arch) == "tts":
        import torch

        from hwnas.asr.models.stats import count_flops

        torch.manual_seed(0)
        graph = device_graph(build_model(arch))
        return {"params": sum(p.numel() for p in graph.parameters()),
                "flops": count_flops(graph, graph.example_inputs())}
    from hwnas.asr.models.stats import model_stats

    st = model_stats(arch)
    return {"params": st.graph_params, "flops": st.flops}


def audio_ms(arch: Any) -> float:
    """Audio one device-graph call stands for: the real-time factor is a
    call's latency over this. For TTS, the frames of the output bucket."""
    if task_of(arch) == "tts":
        from hwnas.tts.arch import FRAME_BUCKET, FRAME_MS

        return float(FRAME_BUCKET * FRAME_MS)
    from hwnas.asr import delay

    return delay.audio_ms(arch)


def row_fields(arch: Any) -> dict[str, Any]:
    """The columns a profile row shows about its architecture."""
    if task_of(arch) == "tts":
        return {"encoder": f"tts:{arch.enc_block}",
                "decoder": f"tts:{arch.dec_block}", "streaming": False}
    return {"encoder": arch.encoder, "decoder": arch.decoder,
            "streaming": arch.streaming}
