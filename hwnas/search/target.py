"""The target's latency predictor, adapted to this host first where needed.

A predictor of a host-CPU device (``cpu``, ``cpu-torch`` ...) describes the
host it was measured on. When the one found (workspace, then shipped) was
measured on another CPU model or core count, the search does not use it as
is: it measures a few architectures here and adapts it (few-shot
adaptation, ``hwnas.predict.adapt``). Measurements and the adapted predictor
are kept under a host-specific name, ``<target>.host-<hash>`` (profiles/ and
predictors/ of the workspace), so the next search on this host starts from
them and the original profile and predictor stay as they were. Other targets
(phones, Edge TPU, GPUs) are their own hardware and use their predictor as
found.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

ADAPT_N = 20  # measurements for a fresh host (~1 minute on a small CPU)


def target_predictor(target: str, workspace: Path, spec: Any,
                     here: dict[str, Any] | None = None,
                     measure: Callable[[Any], None] | None = None,
                     say: Callable[[str], None] = lambda s: None, n: int = ADAPT_N,
                     ) -> tuple[Any, str, dict[str, Any] | None, Any]:
    """(predictor, where it came from, adaptation report or None, the device
    spec to measure with: ``spec`` itself, or its host-specific copy whose
    profile holds this host's measurements)."""
    import dataclasses
    import hashlib

    from hwnas.adapters._base import host_details
    from hwnas.predict.adapt import HOST_ADAPTERS, adapt_predictor, host_mismatch
    from hwnas.predict.latency import LatencyPredictor, find_predictor, predictor_dir

    where = find_predictor(target, workspace)
    predictor = LatencyPredictor.load(where)
    if spec.adapter not in HOST_ADAPTERS:
        return predictor, str(where), None, spec
    here = here or host_details()
    why = host_mismatch(predictor.card, here)
    if why is None:
        return predictor, str(where), None, spec
    tag = hashlib.sha1(f"{here.get('cpu')}|{here.get('cores')}".encode()).hexdigest()[:8]
    local = dataclasses.replace(spec, name=f"{target}.host-{tag}")
    mine = predictor_dir(workspace, local.name)
    if (mine / "card.json").is_file():
        adapted = LatencyPredictor.load(mine)
        if host_mismatch(adapted.card, here) is None:
            return adapted, str(mine), None, local
    say(f"the {target} latency predictor ({where}) does not describe this host: {why}; "
        f"adapting it with {n} measurements here (few-shot)")
    adapted, report = adapt_predictor(predictor, target, local, workspace, n=n,
                                      measure=measure)
    adapted.card["host"] = {k: here.get(k) for k in ("cpu", "cores", "os")}
    out = adapted.save(mine)
    say(f"adapted predictor saved to {out} (correction: {report['method']})")
    return adapted, str(out), report, local
