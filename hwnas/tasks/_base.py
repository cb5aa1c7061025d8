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

    def describe(self, arch: Any) -> tuple[dict[str, Any], str]:
        """What `hwnas stats` shows of ``arch``: its figures (JSON) and one line
        of them for people (after the id)."""
        st = self.stats(arch)
        return st, f"{st['params']:,} parameters, {st['flops'] / 1e6:,.1f} MFLOPs per call"

    def calls_per_stream(self, arch: Any) -> int | None:
        """How many device-graph calls one stream is timed over before its state
        starts again from zeros (None: each call is a whole input)."""
        return None

    def row_fields(self, arch: Any) -> dict[str, Any]:
        """``encoder``, ``decoder`` and ``streaming`` as a profile row shows them."""
        raise NotImplementedError

    def op_block(self, node: str) -> str | None:
        """The block of the model an exported graph's node belongs to (from the
        module path the exporter writes into node names); None: not one of
        this task's graphs, or a node outside every block."""
        return None

    # --- what a search asks of it ------------------------------------------------------
    #: its trained-quality objectives (a search minimises one of them; the
    #: first is the default), and every objective a search of it offers, each
    #: with the label a study shows for it
    quality: tuple[str, ...] = ()
    objectives: dict[str, str] = {}
    #: whether its rung of training takes ``device`` and ``precision`` options
    #: (``nn.fit.train_device``): a GPU, bf16 or fp16; else CPU and fp32 only
    trains_on_accelerators: bool = False
    #: where a search's speed figures come from: "predicted" (the target's
    #: latency predictor, verified on the device at the end) or "measured"
    #: (each proposed architecture measured on the target, rows reused)
    latency: str = "predicted"
    #: the rung budget a search trains by default (CLI form, e.g. "40s,2m")
    default_rungs: str = "40s,2m"
    #: what its searches may use besides the shared loop: weight-sharing
    #: supernets (``--cer-source supernet``, ``--strategy darts``), a final
    #: phase that trains the finalists longer, test-set scores of the finalists
    supernets: bool = False
    final_phase: bool = False
    test_sets: bool = False

    #: the quality value an untrained (infeasible) trial is told: worse than
    #: any trained one
    untrained: float = 1.0

    def quality_key(self, objective: str) -> str:
        """The field of a trial's record holding the value of quality
        ``objective``."""
        return objective

    #: a trained run's files an exported model is shipped with (what reading
    #: its graph's inputs and outputs needs)
    export_files: tuple[str, ...] = ()

    def delay_parts(self, arch: Any) -> dict[str, Any] | None:
        """What an architecture's emission delay is made of, for a model card
        (None: no delay but the compute)."""
        return None

    def judge(self, arch: Any, latency_ms: float) -> dict[str, float]:
        """What is known of ``arch`` before training, given its compute per
        device-graph call: ``latency``, ``algorithmic`` (the delay its input
        alone takes to arrive), ``delay`` (algorithmic + compute), ``rtf``,
        ``params`` and ``size`` (fp32 weights, MB)."""
        raise NotImplementedError

    def narrow(self, space: Any, streaming: bool, max_delay_ms: float | None
               ) -> tuple[Any, dict[str, list[Any]]]:
        """The space a search with these options can use, and what was left out
        (decision -> values) because no architecture with it could meet them."""
        return space, {}

    def presets(self) -> dict[str, Any]:
        """Hand-designed reference architectures by name: a new study trains the
        ones that fit first, as baselines to beat."""
        return {}

    def search_space(self, space: Any, data: Any) -> Any:
        """``space`` with the fields its training data fixes (a vocabulary)."""
        return space

    def rung_unit(self, data: Any, arch: dict[str, Any], *, workspace: str, budget: float,
                  unit: str, seed: int, run_dir: str, resume: bool, extra: dict[str, Any],
                  options: dict[str, Any]) -> Any:
        """The unit of work (``hwnas.execution``) that trains ``arch`` on
        ``data`` up to ``budget`` (``unit``: "cpu_seconds" or "steps") in
        ``run_dir``, continuing its snapshot when ``resume``; its result has
        ``quality`` (objective -> dev value), ``snapshot``, ``steps`` and
        ``cpu_seconds``."""
        raise NotImplementedError

    def set_aside_run(self, run_dir: Any) -> Any:
        """Move a trained run's files out of ``run_dir`` (into its
        ``set-aside/<UTC stamp>/``) before a fresh start writes there; the
        folder they went to, or None when nothing trained was there."""
        raise NotImplementedError

    def test_scores(self, run_dir: Any, test_sets: Any) -> dict[str, dict[str, Any]]:
        """A trained run's scores on each test set (``test_sets(...)``: name ->
        the set); for tasks with ``test_sets``."""
        raise NotImplementedError

    def weight_sharing(self) -> Any:
        """Its weight-sharing package (tasks with ``supernets``): a module with
        ``held_supernet``, ``train_family``, ``supernet_of``, ``SupernetScreen``
        and ``differentiable_search`` (``hwnas.asr.supernet`` for the recogniser)."""
        raise NotImplementedError

    def check_run(self, run_dir: Any) -> None:
        """ValueError (one line) when a trained run's folder cannot be used."""
        raise NotImplementedError
