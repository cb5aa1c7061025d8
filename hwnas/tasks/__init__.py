"""The tasks an architecture can belong to, by name, and the functions the
shared machinery calls on any architecture: each finds the architecture's
task and asks it (``hwnas.tasks._base.Task`` is the interface).

An architecture's task is its ``task`` field (``"tts"``); one without it is a
speech recogniser (files written before tasks have none). Built in: ``asr``
and ``tts``. Another task is one module with a ``Task`` subclass plus one
registry line -- ``register("name", "package.module:Class")`` -- or an entry
point in the ``hwnas.tasks`` group of an installed package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hwnas.tasks._base import Task

__all__ = ["DEFAULT", "TASKS", "Task", "analytic", "arch_from_dict", "arch_from_json",
           "audio_ms", "build_model", "calls_per_stream", "default_space", "device_graph",
           "get", "names", "preset", "preset_names", "register", "require", "row_fields",
           "stats", "task_of"]

#: name -> "module:Class" (imported on first use: a command that never meets
#: a TTS architecture never imports the TTS code)
_REGISTRY: dict[str, str | Callable[[], Task]] = {"asr": "hwnas.tasks.asr:ASR",
                                                  "tts": "hwnas.tasks.tts:TTS"}
_LOADED: dict[str, Task] = {}
TASKS = ("asr", "tts")   # the built-in ones
#: the task of an architecture that names none (files written before tasks),
#: and of commands given no --task
DEFAULT = "asr"


def register(name: str, target: str | Callable[[], Task]) -> None:
    """Make task ``name`` known: ``"module:Class"`` or a factory."""
    _REGISTRY[name] = target
    _LOADED.pop(name, None)


def _plugins() -> None:
    """Tasks installed packages declare (``hwnas.tasks`` entry points)."""
    from hwnas.plugins import installed

    for name, target in installed("hwnas.tasks").items():
        _REGISTRY.setdefault(name, target)


def names() -> list[str]:
    _plugins()
    return sorted(_REGISTRY)


def get(name: str) -> Task:
    """The task called ``name`` (ValueError naming the known ones)."""
    if name not in _LOADED:
        _plugins()
        target = _REGISTRY.get(name)
        if target is None:
            raise ValueError(f"unknown task {name!r}; known: {', '.join(names())}")
        if isinstance(target, str):
            from hwnas.plugins import load

            target = load(target)
        _LOADED[name] = target()
    return _LOADED[name]


def task_of(arch: Any) -> str:
    return getattr(arch, "task", None) or DEFAULT


def _task(arch: Any) -> Task:
    return get(task_of(arch))


def require(arch: Any, allowed: tuple[str, ...], where: str) -> Any:
    """``arch`` when its task is one of ``allowed``, else one ValueError line."""
    task = task_of(arch)
    if task not in allowed:
        hint = get(task).help if task in _REGISTRY else ""
        raise ValueError(f"{where} is a {task.upper()} architecture; this command takes "
                         f"{' or '.join(t.upper() for t in allowed)} ones"
                         f"{f' ({hint})' if hint else ''}")
    return arch


def arch_from_dict(data: Any) -> Any:
    name = data.get("task") if isinstance(data, dict) else None
    return get(name if isinstance(name, str) and name else DEFAULT).arch_from_dict(data)


def arch_from_json(text: str) -> Any:
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    return arch_from_dict(data)


def default_space(task: str = DEFAULT) -> Any:
    """The task's built-in search space."""
    return get(task).default_space()


def preset_names(task: str = DEFAULT) -> list[str]:
    """The task's hand-designed reference architectures, by name."""
    return list(get(task).presets())


def preset(name: str, task: str = DEFAULT) -> Any:
    """The task's preset ``name`` (ValueError naming the known ones)."""
    known = get(task).presets()
    if name not in known:
        raise ValueError(f"unknown preset {name!r}; one of {', '.join(known)}")
    return known[name]


def analytic(task: str, cols: dict[str, Any]) -> dict[str, Any]:
    """The task's analytic cost model over the space's ``columns``."""
    return get(task).analytic(cols)


def build_model(arch: Any) -> Any:
    return _task(arch).build_model(arch)


def device_graph(model: Any) -> Any:
    return _task(model.arch).device_graph(model)


def stats(arch: Any) -> dict[str, Any]:
    """``params`` (of the device graph) and ``flops`` of one graph call."""
    return _task(arch).stats(arch)


def audio_ms(arch: Any) -> float:
    """Audio one device-graph call stands for: the real-time factor is a
    call's latency over this."""
    return _task(arch).audio_ms(arch)


def calls_per_stream(arch: Any) -> int | None:
    """Calls a stream of ``arch``'s device graph is timed over before its state
    restarts (None: each call is a whole input)."""
    return _task(arch).calls_per_stream(arch)


def row_fields(arch: Any) -> dict[str, Any]:
    """The columns a profile row shows about its architecture."""
    return _task(arch).row_fields(arch)
