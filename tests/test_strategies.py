"""The strategy seam: params_of inverts suggest, the registry, proposals from
a non-Optuna strategy entering the study, and state rebuilt on resume."""

from __future__ import annotations

import contextlib
import random

import optuna
import pytest

from hwnas import strategies
from hwnas.asr import ArchConfig, default_space
from hwnas.search.study import SearchConfig, pareto, run_search
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
    sampler = next(a for a in search._actions if a.dest == "strategy")
    assert tuple(sampler.choices) == strategies.names()
    assert "evolution" in strategies.names() and "darts" in strategies.names()
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
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


NEW = ["evolution", "rl", "rl-hard", "bo", "transfer"]


def _cfg(storage, trials, strategy, **kw):
    return SearchConfig(target="cpu", max_latency_ms=2.0, trials=trials, seed=3,
                        sampler=strategy, population_size=4, storage=storage, study="s",
                        space=SMALL, rungs=(100.0,), **kw)


def _ids(study):
    return [t.user_attrs["arch_id"] for t in study.trials
            if t.state == optuna.trial.TrialState.COMPLETE]


@pytest.mark.parametrize("name", NEW)
def test_a_strategy_proposes_into_the_study_and_resumes_exactly(tmp_path, name):
    whole = run_search(_cfg(f"sqlite:///{tmp_path / 'a.db'}", 20, name), lat, fake_trainer())
    ids = _ids(whole)
    assert len(ids) == 20 and len(set(ids)) > 10
    assert all(SMALL.contains(ArchConfig.from_dict(t.user_attrs["arch"])) for t in whole.trials)
    storage = f"sqlite:///{tmp_path / 'b.db'}"
    run_search(_cfg(storage, 8, name), lat, fake_trainer())
    assert _ids(run_search(_cfg(storage, 20, name), lat, fake_trainer())) == ids
    if name in ("bo", "transfer"):   # after the random start, only feasible proposals
        assert all(t.user_attrs["trained"] for t in whole.trials[8:])


def test_the_rl_policy_samples_only_allowed_choices_and_learns():
    from hwnas.strategies.rl import Reinforce

    rl = Reinforce(SMALL, seed=0, objectives=("cer", "latency"), population=4)
    before = rl.ask(300)
    assert all(SMALL.contains(a) for a in before)
    assert {a.encoder for a in before} == {"conformer", "lstm", "contextnet"}
    # conditioned on earlier decisions: heads only where attention applies, and
    # only heads dividing d_model
    assert all((a.heads is None) == (a.encoder != "conformer") for a in before)
    for a in before:    # rewarded: lstm; everything else scores CER 0.9
        rl.tell(a, {"cer": 0.1 if a.encoder == "lstm" else 0.9, "latency": 1.0}, True)
    after = [a.encoder for a in rl.ask(300)]
    share = [sum(e == "lstm" for e in enc) / len(enc)
             for enc in ([a.encoder for a in before], after)]
    assert share[0] < 0.45 and share[1] > 0.8, share


def test_the_rl_reward_is_mnasnets(tmp_path):
    from hwnas.strategies.rl import Reinforce, ReinforceHard

    study = optuna.create_study()
    study.set_user_attr("constraints", {"max_latency_ms": 2.0})
    soft, hard = (cls(SMALL, objectives=("cer", "latency")) for cls in (Reinforce, ReinforceHard))
    for s in (soft, hard):
        s.bind(study)
    assert soft.reward({"cer": 0.2, "latency": 4.0}) == pytest.approx(0.8 * 2 ** -0.07)
    assert soft.reward({"cer": 0.2, "latency": 1.0}) == pytest.approx(0.8 * 0.5 ** -0.07)
    assert hard.reward({"cer": 0.2, "latency": 1.0}) == pytest.approx(0.8)
    assert hard.reward({"cer": 0.2, "latency": 4.0}) == pytest.approx(0.4)
    assert Reinforce(SMALL).reward({"cer": 0.3, "latency": 9.0}) == pytest.approx(0.7)


def test_the_rl_policy_is_saved_with_the_study(tmp_path):
    study = run_search(_cfg(f"sqlite:///{tmp_path / 'r.db'}", 12, "rl"), lat, fake_trainer())
    saved = study.user_attrs["rl_policy"]
    assert saved["told"] == 8 and saved["decisions"] == [d.name for d in SMALL.decisions]
    assert any(any(x != 0 for x in b) for b in saved["bias"])   # it learned something


def test_compound_scaling_follows_efficientnet():
    from hwnas.strategies.transfer import scale

    space = default_space()
    base = space.nearest({**space.sample_distinct(1, 0)[0].to_dict(), "encoder": "conformer",
                          "num_layers": 4, "d_model": 144, "n_filters": 64})
    assert (base.encoder, base.num_layers, base.d_model, base.n_filters) == \
        ("conformer", 4, 144, 64)
    up, down = scale(space, base, 2.0), scale(space, base, -4.0)
    assert (up.num_layers, up.d_model, up.n_filters) == (6, 192, 80)     # 5.8, 174, 85
    assert (down.num_layers, down.d_model, down.n_filters) == (2, 96, 40)  # 1.9, 98, 37
    assert scale(space, base, 0.0).id == base.id and space.contains(up)


def test_warm_start_evaluates_another_studys_front_first(tmp_path):
    donor = run_search(_cfg(f"sqlite:///{tmp_path / 'd.db'}", 12, "random"), lat, fake_trainer())
    front = [ArchConfig.from_dict(r["arch"]) for r in pareto(donor)]
    assert front
    study = run_search(_cfg(f"sqlite:///{tmp_path / 'w.db'}", len(front) + 4, "transfer",
                            warm_start=tuple(front)), lat, fake_trainer())
    assert _ids(study)[:len(front)] == [a.id for a in front]


@pytest.mark.parametrize("argv, message", [
    (["--warm-start", "nope"], "--warm-start nope: no such study"),
    (["--warm-start", "hwnas"], "--warm-start names this study itself"),
    (["--population", "1"], "--population must be >= 2, got 1"),
    (["--strategy", "nope"], "invalid choice: 'nope'"),
])
def test_search_strategy_options_refuse_bad_input_in_one_line(argv, message, tmp_path, capsys):
    from cli.main import main

    with contextlib.suppress(SystemExit):   # argparse exits 2 on a bad choice
        assert main(["search", "--target", "cpu", "--workspace", str(tmp_path), *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]                       # the last line says it all ...
    assert len(err) == 1 or err[0].startswith("usage:")   # ... after argparse's usage


KILLED_SEARCH = """
import sys, time
sys.path.insert(0, {root!r})
from tests.test_strategies import _cfg
from tests.test_search import lat
from tests.helpers import fake_trainer
from hwnas.search.study import run_search
fast = fake_trainer()
def slow(arch, budget, state):
    time.sleep(0.3)
    return fast(arch, budget, state)
run_search(_cfg({storage!r}, 16, {name!r}), lat, slow)
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_kill_9_mid_generation_then_the_rerun_proposes_what_an_uninterrupted_run_did(
        tmp_path, name):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    whole = _ids(run_search(_cfg(f"sqlite:///{tmp_path / 'a.db'}", 16, name), lat,
                            fake_trainer()))
    storage = f"sqlite:///{tmp_path / 'k.db'}"
    from hwnas.search.storage import open_storage

    open_storage(storage)   # the schema exists before two processes open the file
    proc = subprocess.Popen([sys.executable, "-c", KILLED_SEARCH.format(
        root=str(Path(__file__).resolve().parents[1]), storage=storage, name=name)])
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)   # until the third generation is asked and training
            with contextlib.suppress(KeyError):
                trials = optuna.load_study(study_name="s", storage=storage).trials
                if sum(t.state.name == "COMPLETE" for t in trials) == 8 \
                        and sum("arch_id" in t.user_attrs for t in trials[8:]) == 4:
                    break
        else:
            pytest.fail(f"the search did not reach its third generation (exit {proc.poll()})")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _ids(run_search(_cfg(storage, 16, name), lat, fake_trainer())) == whole


def _darts(monkeypatch, storage, trials):
    """A DARTS search over untrained supernets of SMALL and random features."""
    from hwnas.asr.supernet.elastic import ElasticSupernet
    from hwnas.asr.supernet.relax import differentiable_search
    from hwnas.search.study import make_strategy
    from hwnas.strategies import darts
    from tests.helpers import synthetic_splits

    monkeypatch.setattr(darts, "STEPS", 3)
    splits_of, tok = synthetic_splits()
    cfg = _cfg(storage, trials, "darts")
    strategy = make_strategy(cfg)
    strategy.use_supernets({f: ElasticSupernet(SMALL, f, tok.vocab_size, seed=0)
                            for f in SMALL.choices("encoder")}, splits_of, tok,
                           differentiable_search)
    return run_search(cfg, lat, fake_trainer(), strategy=strategy), strategy


def test_darts_proposes_derived_architectures_and_resumes_exactly(tmp_path, monkeypatch):
    whole, strategy = _darts(monkeypatch, f"sqlite:///{tmp_path / 'a.db'}", 12)
    ids = _ids(whole)
    assert len(ids) == 12 and len(set(ids)) >= 8
    assert strategy.runs and all(r["steps"] >= 1 for r in strategy.runs)
    assert all(SMALL.contains(ArchConfig.from_dict(t.user_attrs["arch"])) for t in whole.trials)
    storage = f"sqlite:///{tmp_path / 'b.db'}"
    _darts(monkeypatch, storage, 4)
    assert _ids(_darts(monkeypatch, storage, 12)[0]) == ids


@pytest.mark.parametrize("family", ["conformer", "transformer", "contextnet", "cnn_lstm"])
def test_the_relaxation_at_one_hot_is_exactly_the_derived_subnet(family):
    import torch

    from hwnas.asr.supernet.elastic import ElasticSupernet
    from hwnas.asr.supernet.relax import Relaxation

    space = default_space().with_choices({"frontend": ["logmel"], "n_filters": [40],
                                          "d_model": [96], "num_layers": [1, 2, 4]})
    net = ElasticSupernet(space, family, 12)
    rng = random.Random(0)
    for _ in range(2):
        rel = Relaxation(net, net.sample(rng))
        assert rel.alpha   # depth, FFN ratio and/or kernel are relaxed
        with torch.no_grad():
            for a in rel.alpha.values():
                a.fill_(-60.0)
                a[rng.randrange(len(a))] = 60.0
        sub = net.subnet(rel.derive()).eval()
        x, xl = torch.randn(2, 80, sub.input_dim), torch.tensor([80, 57])
        y = torch.randint(1, 12, (2, 4))
        with torch.no_grad():
            mixed, alone = rel(x, xl, y), sub(x, xl, y)
        assert max(float((mixed[k] - alone[k]).abs().max()) for k in alone
                   if alone[k].dtype.is_floating_point) < 1e-5
        with torch.no_grad():   # soft weights: every relaxed decision gets a gradient
            for a in rel.alpha.values():
                a.zero_()
        rel(x, xl, y)["enc"].pow(2).mean().backward()
        assert all(a.grad is not None and float(a.grad.abs().sum()) > 0
                   for a in rel.alpha.values())


def test_the_latency_term_moves_darts_to_cheaper_choices():
    from hwnas.asr.supernet.elastic import ElasticSupernet
    from hwnas.asr.supernet.relax import differentiable_search
    from tests.helpers import synthetic_splits

    splits_of, tok = synthetic_splits()
    space = default_space().with_choices({"frontend": ["logmel"], "n_filters": [40],
                                          "d_model": [96], "decoder": ["ctc"]})
    net = ElasticSupernet(space, "conformer", tok.vocab_size)
    base = net.space.nearest({**net.sample(random.Random(1)).to_dict(), "num_layers": 4,
                              "conv_kernel": 15})

    def cost(a):
        return a.num_layers * a.conv_kernel * a.ffn_ratio

    free, _ = differentiable_search(net, base, splits_of, tok, cost, 100.0, steps=6,
                                    latency_weight=0.0, seed=0, batch_frames=300)
    cheap, info = differentiable_search(net, base, splits_of, tok, cost, 100.0, steps=6,
                                        latency_weight=50.0, seed=0, batch_frames=300)
    assert cost(cheap) < cost(base) and cost(cheap) <= cost(free)
    assert set(info["probs"]) == {"num_layers", "ffn_ratio", "conv_kernel"}
