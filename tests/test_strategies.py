"""The strategy seam: params_of inverts suggest, the registry, proposals from
a non-Optuna strategy entering the study, and state rebuilt on resume."""

from __future__ import annotations

import random

import optuna
import pytest

from hwnas import strategies
from hwnas.asr import default_space
from hwnas.search.study import SearchConfig, run_search
from hwnas.strategies.evolution import Evolution
from tests.helpers import fake_trainer
from tests.test_search import SMALL, lat


@pytest.mark.parametrize("space", [default_space(), SMALL], ids=["default", "small"])
def test_params_of_is_the_inverse_of_suggest(space):
    for arch in space.sample_distinct(60, seed=3):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.enqueue_trial(space.params_of(arch))
        assert space.suggest(study.ask()).id == arch.id
    arch = space.sample_distinct(1, seed=4)[0]
    with pytest.raises(ValueError, match="not one of the space's choices"):
        space.with_choices({"encoder": [e for e in ("conformer", "lstm", "contextnet",
                                                    "transformer") if e != arch.encoder]}
                           ).params_of(arch)


def test_the_registry_lists_what_the_cli_offers():
    from cli.main import build_parser

    search = build_parser()._subparsers._group_actions[0].choices["search"]
    sampler = next(a for a in search._actions if a.dest == "sampler")
    assert tuple(sampler.choices) == strategies.names()
    assert "evolution" in strategies.names()
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        strategies.make("nope", SMALL)


def test_evolution_proposes_into_the_study_and_resumes_where_it_stopped(tmp_path):
    def cfg(storage, trials):
        return SearchConfig(target="cpu", max_latency_ms=2.0, trials=trials, seed=2,
                            sampler="evolution", population_size=4, storage=storage,
                            study="e", space=SMALL, rungs=(100.0,))

    whole = run_search(cfg(f"sqlite:///{tmp_path / 'a.db'}", 16), lat, fake_trainer([]))
    ids = [t.user_attrs["arch_id"] for t in whole.trials]
    assert len(ids) == 16 and all(t.state.name == "COMPLETE" for t in whole.trials)
    # after the first population, children are mutations of members: each differs
    # from some earlier architecture in few decisions
    first = {t.user_attrs["arch_id"] for t in whole.trials[:4]}
    assert set(ids[4:]) - first
    # stopped after 8 trials and resumed: the same 16 architectures (state comes
    # from the study's finished trials, nothing else)
    storage = f"sqlite:///{tmp_path / 'b.db'}"
    run_search(cfg(storage, 8), lat, fake_trainer([]))
    resumed = run_search(cfg(storage, 16), lat, fake_trainer([]))
    assert [t.user_attrs["arch_id"] for t in resumed.trials] == ids


def test_evolution_prefers_feasible_non_dominated_parents():
    evo = Evolution(SMALL, seed=0, objectives=("cer", "latency"), population=4)
    archs = SMALL.sample_distinct(4, seed=1)
    evo.tell(archs[0], {"cer": 0.2, "latency": 1.0}, True)     # best
    evo.tell(archs[1], {"cer": 0.3, "latency": 1.5}, True)     # dominated by 0
    evo.tell(archs[2], {"cer": 0.1, "latency": 9.0}, False)    # infeasible
    evo.tell(archs[3], {"cer": 0.4, "latency": 2.0}, True)     # dominated by 0 and 1
    fit = evo._fitness()
    assert min(range(4), key=lambda i: fit[i]) == 0
    assert fit[2][0] == 1 and fit[3][1] == 2
    kids = evo.ask(8)
    assert len(kids) == 8 and all(SMALL.contains(k) for k in kids)
    rng = random.Random(0)
    assert SMALL.mutate(archs[0], rng).id != archs[0].id
