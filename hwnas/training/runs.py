"""What every trained run's folder shares, whatever its task."""

from __future__ import annotations

from hwnas.state import NUMBER, Shape

#: a run's result.json as `hwnas train` and the search's rungs write it
RESULT = Shape("training run result", required={"arch": dict},
               optional={"corpus": (dict, str, None), "langs": list, "rungs": list,
                         "steps": int, "final_budget": (int, float, None), "precision": str,
                         "device": str, "device_name": str, "clock": str,
                         "gpu_memory_peak_mb": NUMBER, "gpu_util_mean_pct": NUMBER,
                         "gpu_util_samples": int})
