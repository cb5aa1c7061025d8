"""What the shared machinery (export, profiling, runtimes, predictor
features) asks of a task: read an architecture, its built-in space, build
its model and device graph, count its cost, and say how much audio one graph
call stands for. A task implements this once, in ``hwnas/tasks/<name>.py``,
and is registered by name (``hwnas.tasks.register``, or an installed
package's ``hwnas.tasks`` entry point)."""

from __future__ import annotations

from typing import Any


class Task:
    #: the registry name; an architecture of this task says ``"task": name``
    #: in its JSON (the speech recogniser, for files written before tasks,
    #: says nothing)
    name: str = ""
    #: where its own commands are documented, for a one-line refusal
    help: str = ""

    def arch_from_dict(self, data: dict[str, Any]) -> Any:
        """The architecture record of ``data`` (ValueError naming what is wrong)."""
        raise NotImplementedError

    def default_space(self) -> Any:
        """The task's built-in ``SearchSpace``."""
        raise NotImplementedError

    def analytic(self, cols: dict[str, Any]) -> dict[str, Any]:
        """The analytic cost model over the space's ``columns`` (the columns
        of ``hwnas.nn.costs.ANALYTIC``, whatever the task)."""
        raise NotImplementedError

    def build_model(self, arch: Any) -> Any:
        """The PyTorch model (random initialisation)."""
        raise NotImplementedError

    def device_graph(self, model: Any) -> Any:
        """The module a device runs: one call, with ``example_inputs()``."""
        raise NotImplementedError

    def stats(self, arch: Any) -> dict[str, Any]:
        """``params`` (of the device graph) and ``flops`` of one graph call."""
        raise NotImplementedError

    def audio_ms(self, arch: Any) -> float:
        """Audio one device-graph call stands for (its real-time factor is a
        call's latency over this)."""
        raise NotImplementedError

    def row_fields(self, arch: Any) -> dict[str, Any]:
        """``encoder``, ``decoder`` and ``streaming`` as a profile row shows them."""
        raise NotImplementedError
