"""Multi-objective successive halving and the CER predictor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwnas.asr import default_space
from hwnas.predict.cer import CERPredictor
from hwnas.training.halving import (
    Candidate,
    nondominated_fronts,
    select,
    successive_halving,
)
from tests.helpers import fake_trainer


def test_fronts_and_selection():
    pts = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [4, 4], [6, 6]], dtype=float)
    assert nondominated_fronts(pts) == [[0, 1, 2], [3], [4], [5]]
    assert sorted(select(pts, 3)) == [0, 1, 2]
    assert sorted(select(pts, 4)) == [0, 1, 2, 3]
    two = select(pts, 2)  # the extremes of the first front have infinite crowding
    assert sorted(two) == [0, 2]


def test_successive_halving_promotes_the_non_dominated_and_keeps_rung_results():
    archs = default_space().sample_distinct(27, 4)
    cands = [Candidate(a, latency_ms=float(i % 5 + 1)) for i, a in enumerate(archs)]
    calls: list = []
    out = successive_halving(cands, fake_trainer(calls), rungs=(120, 360, 1080), eta=3)
    per_rung = [sum(1 for _, b in calls if b == r) for r in (120, 360, 1080)]
    assert per_rung == [27, 9, 3]
    finished = [c for c in out if c.stopped_at is None]
    assert len(finished) == 3 and all(len(c.rungs) == 3 for c in finished)
    assert all(c.rungs[0]["budget_s"] == 120 for c in out)
    # survivors of rung 0 are never dominated by a candidate stopped there
    r0 = {id(c): (c.rungs[0]["cer"], c.latency_ms) for c in out}
    promoted = [c for c in out if len(c.rungs) > 1]
    stopped = [c for c in out if c.stopped_at == 0]
    for p in promoted:
        for s in stopped:
            a, b = r0[id(s)], r0[id(p)]
            assert not (a[0] < b[0] and a[1] < b[1])
    with pytest.raises(ValueError, match="increasing"):
        successive_halving(cands, fake_trainer([]), rungs=(360, 120))


def test_cer_predictor_learns_final_from_early(tmp_path):
    archs = default_space().sample_distinct(60, 8)
    rng = np.random.default_rng(0)
    records = []
    for a in archs:
        early = float(rng.uniform(0.3, 0.9))
        final = 0.6 * early - 0.02 * a.num_layers + 0.2
        records.append({"arch": a.to_dict(), "early_cer": early, "early_loss": 2 * early,
                        "early_steps": 100, "final_cer": final})
    p = CERPredictor.fit(records[:45])
    test = records[45:]
    early = np.array([[r["early_cer"], r["early_loss"], r["early_steps"]] for r in test])
    from hwnas.asr import ArchConfig

    pred = p.predict([ArchConfig.from_dict(r["arch"]) for r in test], early)
    truth = np.array([r["final_cer"] for r in test])
    naive = early[:, 0]  # "the final CER is the early CER"
    assert np.mean(np.abs(pred - truth)) < 0.5 * np.mean(np.abs(naive - truth))
    q = CERPredictor.load(p.save(tmp_path / "cer"))
    assert np.allclose(q.predict([ArchConfig.from_dict(r["arch"]) for r in test], early), pred)
    with pytest.raises(ValueError, match="too few"):
        CERPredictor.fit(records[:3])


def test_cer_predictor_from_the_architecture_alone(tmp_path):
    from hwnas.asr import ArchConfig

    archs = default_space().sample_distinct(80, 9)
    records = [{"arch": a.to_dict(), "final_cer": 0.9 - 0.1 * math.log2(a.d_model / 96)
                - 0.05 * a.num_layers} for a in archs]
    p = CERPredictor.fit(records[:60], curve=False)
    assert not p.uses_curve and p.card["inputs"] == "architecture"
    test = [ArchConfig.from_dict(r["arch"]) for r in records[60:]]
    truth = np.array([r["final_cer"] for r in records[60:]])
    pred = p.predict(test)
    assert np.mean(np.abs(pred - truth)) < 0.5 * np.mean(np.abs(truth.mean() - truth))
    q = CERPredictor.load(p.save(tmp_path / "cer"))
    assert np.allclose(q.predict(test), pred)
    with_curve = [{**r, "early_cer": 0.9, "early_loss": 2.0, "early_steps": 100}
                  for r in records[:20]]
    with pytest.raises(ValueError, match="needs the early learning curve"):
        CERPredictor.fit(with_curve).predict(test)


def test_promotion_among_equally_crowded_prefers_lower_cer():
    pts = np.array([[0.909, 0.44], [0.806, 0.69], [0.685, 1.55]])  # one front, both ends inf
    assert select(pts, 1) == [2]
    assert sorted(select(pts, 2)) == [0, 2]
