from __future__ import annotations

import itertools
import json
import random
from collections import Counter

import optuna
import pytest

from hwnas.asr import ArchConfig, default_space, preset, preset_names
from hwnas.space import SearchSpace

REDUCED = {
    "frontend": ["logmel"], "n_filters": [40], "subsampling": ["conv2d4", "conv2d6"],
    "encoder": ["conformer", "transformer", "lstm", "blstm", "contextnet"],
    "num_layers": [1], "d_model": [96, 144], "attention": ["mhsa", "local", "linear"],
    "heads": [4, 5], "local_window": [8, 16], "ffn_ratio": [2], "conv_kernel": [3, 15],
    "decoder": ["ctc", "rnnt"], "decoder_layers": [1], "decoder_dim": [128, 256],
    "chunk_ms": [80, 240], "left_chunks": [0, 2], "lookahead": [0, 1],
}


def brute_force_count(space: SearchSpace) -> int:
    """Walk the full Cartesian product of every decision's choices, null the
    decisions that do not apply, drop the combinations a rule forbids, and
    count the distinct architectures left."""
    seen = set()
    for combo in itertools.product(*(d.choices for d in space.decisions)):
        ctx: dict = {}
        ok = True
        for d, v in zip(space.decisions, combo):
            if not d.applies(ctx):
                ctx[d.name] = None
            elif d.allowed(v, ctx):
                ctx[d.name] = v
            else:
                ok = False
                break
        if ok:
            seen.add(tuple(sorted(ctx.items())))
    return len(seen)


def test_count_matches_brute_force_on_reduced_space():
    space = default_space().with_choices(REDUCED)
    n = space.count()
    assert n == brute_force_count(space)
    assert n == len({ArchConfig(**d).id for d in space.enumerate()})
    assert 1000 < n < 61440  # the rules remove most of the product


def test_count_reflects_conditional_rules():
    # chunk 80 ms fits conv2d4 (40 ms frames) but not conv2d6 (60 ms frames)
    sp = default_space().with_choices({**REDUCED, "encoder": ["lstm"], "decoder": ["ctc"],
                                       "frontend": ["logmel"], "d_model": [96]})
    archs = [ArchConfig(**d) for d in sp.enumerate()]
    assert sp.count() == len(archs)
    assert not any(a.subsampling == "conv2d6" and a.chunk_ms == 80 for a in archs)
    assert any(a.subsampling == "conv2d4" and a.chunk_ms == 80 for a in archs)


def test_default_space_count_is_stable():
    assert default_space().count() == 57_030_480


def test_sample_200_valid_distinct_covering_deterministic():
    space = default_space()
    a = space.sample_distinct(200, 7)
    b = space.sample_distinct(200, 7)
    assert [x.id for x in a] == [x.id for x in b]
    assert len({x.id for x in a}) == 200
    for field, expected in [("encoder", 6), ("decoder", 4), ("attention", 4), ("frontend", 3),
                            ("subsampling", 4)]:
        values = {getattr(x, field) for x in a} - {None}
        assert len(values) == expected, (field, values)
    assert {x.streaming for x in a} == {True, False}
    assert all(space.contains(x) for x in a)


def test_json_round_trip_and_stable_id():
    a = preset("conformer_xs")
    assert ArchConfig.from_json(a.to_json()) == a
    assert ArchConfig.from_dict({"id": "ignored", **a.to_dict()}) == a
    # the id is a hash of the canonical JSON; it must not drift between releases
    assert a.id == "ed5be732ed08"
    assert json.loads(a.to_json())["encoder"] == "conformer"


@pytest.mark.parametrize("change, field", [
    (dict(encoder="blstm", streaming=True, chunk_ms=240, lookahead=0), "streaming"),
    (dict(heads=5), "heads"),
    (dict(encoder="lstm"), "attention"),
    (dict(conv_kernel=None), "conv_kernel"),
    (dict(conv_kernel=4), "conv_kernel"),
    (dict(decoder_dim=128), "decoder_dim"),
    (dict(encoder="gru"), "encoder"),
    (dict(d_model="big"), "d_model"),
    (dict(d_model=0), "d_model"),
    (dict(streaming=True, subsampling="conv2d6", chunk_ms=200, left_chunks=1, lookahead=0,
          causal_conv=None), "chunk_ms"),
])
def test_invalid_configs_name_field_and_rule(change, field):
    base = preset("conformer_xs").to_dict()
    with pytest.raises(ValueError, match=repr(field)):
        ArchConfig.from_dict({**base, **change})


def test_unknown_and_missing_fields():
    base = preset("conformer_xs").to_dict()
    with pytest.raises(ValueError, match="unknown field.*'colour'"):
        ArchConfig.from_dict({**base, "colour": "red"})
    del base["encoder"]
    with pytest.raises(ValueError, match="missing field.*'encoder'"):
        ArchConfig.from_dict(base)
    with pytest.raises(ValueError, match="invalid JSON"):
        ArchConfig.from_json("{nope")


def test_mutate_and_crossover_stay_valid():
    space = default_space()
    rng = random.Random(3)
    parents = space.sample_distinct(50, 1)
    changed = 0
    for a, b in zip(parents, parents[1:]):
        m = space.mutate(a, rng)
        assert space.contains(m)
        changed += m != a
        c = space.crossover(a, b, rng)
        assert space.contains(c)
        # every decision shared by both parents is inherited
        for d in space.decisions:
            if getattr(a, d.name) == getattr(b, d.name) and getattr(a, d.name) is not None:
                assert getattr(c, d.name) == getattr(a, d.name)
    assert changed == len(parents) - 1


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler(seed=0),
                                     optuna.samplers.NSGAIISampler(seed=0, population_size=8),
                                     optuna.samplers.TPESampler(seed=0)])
def test_suggest_through_optuna(sampler):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = default_space()
    seen: list[ArchConfig] = []

    def objective(trial):
        a = space.suggest(trial)
        seen.append(a)
        return [a.d_model * a.num_layers, a.n_filters] if isinstance(
            sampler, optuna.samplers.NSGAIISampler) else a.d_model * a.num_layers

    directions = ["minimize", "minimize"] if isinstance(
        sampler, optuna.samplers.NSGAIISampler) else ["minimize"]
    study = optuna.create_study(directions=directions, sampler=sampler)
    study.optimize(objective, n_trials=40)
    assert len(seen) == 40 and all(space.contains(a) for a in seen)
    assert len({a.encoder for a in seen}) >= 4


def test_suggest_is_reproducible():
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def run() -> list[str]:
        ids: list[str] = []
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
        study.optimize(lambda t: ids.append(default_space().suggest(t).id) or 0.0, n_trials=10)
        return ids

    assert run() == run()


def test_encode_shape_and_content():
    space = default_space()
    names = space.feature_names()
    for a in space.sample_distinct(20, 2):
        v = space.encode(a)
        assert len(v) == len(names)
        feat = dict(zip(names, v))
        assert feat[f"encoder={a.encoder}"] == 1.0
        assert feat["d_model"] == a.d_model
        assert feat["heads:applies"] == float(a.heads is not None)


def test_toml_override(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text('[choices]\nencoder = ["lstm", "conformer"]\nd_model = [128, 512]\n')
    space = default_space().with_toml(f)
    archs = space.sample_distinct(30, 0)
    assert {a.encoder for a in archs} <= {"lstm", "conformer"}
    assert {a.d_model for a in archs} <= {128, 512}
    assert space.count() < default_space().count()
    f.write_text('[choices]\nencoder = ["gru"]\n')
    with pytest.raises(ValueError, match="'encoder'"):
        default_space().with_toml(f)
    f.write_text('[choices]\nwidth = [1]\n')
    with pytest.raises(ValueError, match="unknown decision 'width'"):
        default_space().with_toml(f)
    f.write_text('[choices\n')
    with pytest.raises(ValueError, match="not valid TOML"):
        default_space().with_toml(f)
    with pytest.raises(ValueError, match="not found"):
        default_space().with_toml(tmp_path / "missing.toml")


def test_presets_are_valid_and_named():
    names = preset_names()
    assert {"conformer_s", "lstm_rnnt"} <= set(names)
    ids = Counter(preset(n).id for n in names)
    assert max(ids.values()) == 1


def test_choices_that_leave_a_decision_empty_are_pruned():
    import optuna

    sp = default_space().with_choices({"streaming": [True]})
    assert "blstm" not in sp._by_name["encoder"].choices  # cannot stream
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):  # every suggestion is a streaming architecture, none fails
        assert sp.suggest(study.ask()).streaming
    with pytest.raises(ValueError, match="bidirectional encoders"):
        default_space().with_choices({"streaming": [True], "encoder": ["blstm"]})
