"""Training data for latency predictors, read from a measured profile.

One label per architecture: the median over its stored repeats (``hwnas
profile --repeats R``) of the chosen latency column. Failed rows and rows
flagged for drift are left out (an architecture with only such rows is left
out); a row flagged only as imprecise (its p50's interval stayed wider than
the plan's ``max_ci`` within ``max_ci_seconds``) keeps its estimate, which
is as unbiased as any other, only less precise.

Labels (``label``):
  rel   ``rel_p50``: p50 as a ratio to the reference workload timed beside
        every call (CPU devices): host speed swings divided out, and the unit
        that travels between hosts (``hwnas.predict.calibration``); the
        default where every row has it
  norm  ``norm_p50_ms``: rel_p50 x the profile's reference time (ms on the
        scale of the host that made the profile)
  raw   ``p50_ms`` as measured
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.space.space import Arch
from hwnas.tasks import arch_from_dict

LABELS = {"rel": "rel_p50", "norm": "norm_p50_ms", "raw": "p50_ms"}
HOLDOUT_SHARE = 0.2


@dataclass
class LatencyData:
    archs: list[Arch]
    y: np.ndarray                      # label (ms, or ratio for rel), median over repeats
    label: str                         # column the label came from
    repeats: np.ndarray                # ok measurements behind each label
    spread: np.ndarray                 # max/min - 1 over repeats (0 with one)
    info: dict[str, Any] = field(default_factory=dict)
    hosts: np.ndarray | None = None    # (N, len(HOST_FEATURES)): each label's host, where
    #                                    profiles of several CPUs are learnt together

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def ids(self) -> list[str]:
        return [a.id for a in self.archs]

    @property
    def families(self) -> np.ndarray:
        from hwnas.tasks import row_fields

        return np.array([row_fields(a)["encoder"] for a in self.archs])

    def subset(self, mask: np.ndarray) -> LatencyData:
        idx = np.flatnonzero(mask)
        return LatencyData([self.archs[i] for i in idx], self.y[idx], self.label,
                           self.repeats[idx], self.spread[idx], dict(self.info),
                           None if self.hosts is None else self.hosts[idx])


def holdout_mask(ids: list[str], share: float = HOLDOUT_SHARE, salt: str = "holdout"
                 ) -> np.ndarray:
    """True for held-out architectures: a hash of the id, so an architecture
    stays on its side as a profile grows, and every run splits the same way."""
    cut = int(share * 2**32)
    return np.array([int.from_bytes(hashlib.sha256(f"{salt}:{i}".encode()).digest()[:4], "big")
                     < cut for i in ids])


def usable(row: dict[str, Any]) -> bool:
    """An estimate to learn from: ok, or flagged only for imprecision."""
    if row.get("status") == "ok":
        return True
    flags = row.get("flags") or []
    if isinstance(flags, str):
        import json

        flags = json.loads(flags)
    return row.get("status") == "flagged" and bool(flags) and all(
        str(f).startswith("imprecise") for f in flags)


def from_rows(rows: list[dict[str, Any]], label: str = "auto") -> LatencyData:
    """Group profile rows by architecture and take the median label."""
    ok = [r for r in rows if usable(r)]
    if label == "auto":
        label = "rel" if ok and all(r.get("rel_p50") for r in ok) else "raw"
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; one of {', '.join(LABELS)}")
    col = LABELS[label]
    by_arch: dict[str, list[float]] = {}
    arch_of: dict[str, dict[str, Any]] = {}
    for r in ok:
        v = r.get(col)
        if v is None or not v > 0:
            continue
        by_arch.setdefault(r["arch_id"], []).append(float(v))
        arch_of[r["arch_id"]] = r["arch"]
    ids = sorted(by_arch)
    archs = [arch_from_dict(arch_of[i]) for i in ids]
    vals = [np.array(by_arch[i]) for i in ids]
    return LatencyData(
        archs=archs, y=np.array([float(np.median(v)) for v in vals]), label=col,
        repeats=np.array([len(v) for v in vals]),
        spread=np.array([float(v.max() / v.min() - 1) for v in vals]),
        info={"rows": len(rows), "ok_rows": len(ok),
              "left_out": len({r["arch_id"] for r in rows}) - len(ids)})


def from_profiles(profiles: list[tuple[list[dict[str, Any]], dict[str, Any]]],
                  label: str = "rel") -> LatencyData:
    """Profiles made on several CPUs as one training set: per profile
    (rows, manifest), its labels grouped per architecture *and host kind*
    (a profile resumed on another CPU holds two), each with that host's
    descriptor as features (``hwnas.predict.hosts``). An architecture
    measured on two hosts is two labels."""
    from hwnas.predict.hosts import row_host

    parts: list[LatencyData] = []
    for rows, manifest in profiles:
        ref = (manifest.get("reference") or {}).get("nominal_ms")
        groups: dict[str, list[dict[str, Any]]] = {}
        vectors: dict[str, np.ndarray] = {}
        for r in rows:
            key, vec = row_host(r, ref)
            groups.setdefault(key, []).append(r)
            vectors[key] = vec
        for key, group in groups.items():
            d = from_rows(group, label)
            d.hosts = np.tile(vectors[key], (len(d), 1))
            d.info["host"] = key
            parts.append(d)
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("these profiles have no usable rows")
    if len({p.label for p in parts}) > 1:
        raise ValueError("profiles of several hosts must share one label (use --label rel)")
    return LatencyData(
        archs=[a for p in parts for a in p.archs], y=np.concatenate([p.y for p in parts]),
        label=parts[0].label, repeats=np.concatenate([p.repeats for p in parts]),
        spread=np.concatenate([p.spread for p in parts]),
        info={"hosts": [{"host": p.info["host"], "labels": len(p)} for p in parts]},
        hosts=np.concatenate([p.hosts for p in parts]))


def repeat_noise(data: LatencyData) -> dict[str, Any] | None:
    """How far two measurements of the same architecture disagree: the floor
    under any predictor's error. None without repeats."""
    m = data.repeats >= 2
    if not m.any():
        return None
    s = data.spread[m]
    # with two repeats, |a/b - 1| = spread; the label (their median = mean)
    # sits spread/2 from either, so a perfect predictor of the true mean
    # still sees about spread/2 against one repeat
    return {"archs": int(m.sum()), "median": float(np.median(s)),
            "p90": float(np.quantile(s, 0.9)), "max": float(s.max()),
            "within_5pct": float(np.mean(s <= 0.05)),
            "within_10pct": float(np.mean(s <= 0.10))}
