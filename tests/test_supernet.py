"""The elastic supernet: subnets are the models build(arch) gives, with
weights that really are shared; every sampled subnet runs, exports and
streams; supernet training resumes exactly."""

from __future__ import annotations

import random

import pytest
import torch

from hwnas.asr import default_space
from hwnas.asr.models.model import build
from hwnas.asr.supernet.elastic import ElasticSupernet
from hwnas.asr.supernet.sandwich import (
    SupernetConfig,
    load_snapshot,
    load_supernet,
    sandwich,
    save_supernet,
    train_supernet,
)
from tests.helpers import streamed_and_full, synthetic_splits

FAMILIES = ("conformer", "transformer", "lstm", "blstm", "cnn_lstm", "contextnet")
# every kind of choice the supernet slices, at sizes that build in milliseconds
SPACE = default_space().with_choices({
    "frontend": ["logmel", "learnable"], "n_filters": [40], "subsampling": ["conv2d4", "stack4"],
    "num_layers": [1, 2], "d_model": [96, 144], "conv_kernel": [3, 7], "decoder_dim": [128, 256],
    "chunk_ms": [240, 480]})
VOCAB = 12


@pytest.fixture(scope="module")
def nets() -> dict[str, ElasticSupernet]:
    return {f: ElasticSupernet(SPACE, f, VOCAB, seed=0) for f in FAMILIES}


def _inputs(model, T: int = 96):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, T, model.input_dim, generator=g)
    y = torch.randint(1, model.arch.vocab_size, (2, 5), generator=g)
    return x, torch.tensor([T, T - 21]), y


def _same(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a if a[k].dtype.is_floating_point)


@pytest.mark.parametrize("family", FAMILIES)
def test_extracted_subnets_equal_the_supernets_own_forward(nets, family):
    net = nets[family]
    rng = random.Random(1)
    for _ in range(4):
        for arch in sandwich(net, net.sample(rng)):   # the largest, the smallest, a sample
            sub = net.subnet(arch)
            assert type(sub) is type(build(arch))
            x, xl, y = _inputs(sub)
            with torch.no_grad():
                assert _same(net(arch, x, xl, y), sub(x, xl, y)) < 1e-6


def test_weights_are_shared_between_subnets(nets):
    net = nets["conformer"]
    ctx = net.sample(random.Random(0))
    big, small, _ = sandwich(net, ctx)
    assert big != small
    w_big, w_small = net.weights(big), net.weights(small)
    # depth: the small subnet's layers are the big one's first layers; width: the
    # first rows and columns; q/k/v each keep their own block
    name = "encoder.layers.0.att.qkv.weight"
    d, D = small.d_model, big.d_model
    for block in range(3):
        assert torch.equal(w_small[name][block * d:(block + 1) * d],
                           w_big[name][block * D:block * D + d, :d])
    # kernel: the centre (symmetric) or newest (causal) taps, through a transform
    x, xl, y = _inputs(net.subnet(small))
    before = net(big, x, xl).get("ctc_logits").detach()
    loss = net(small, x, xl)["ctc_logits"].logsumexp(-1).mean()
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
    assert (net(big, x, xl)["ctc_logits"] - before).abs().max() > 1e-4   # big moved too
    net.zero_grad(set_to_none=True)


def test_architectures_outside_the_supernet_are_refused(nets):
    net = nets["lstm"]
    conformer = nets["conformer"].sample(random.Random(0))
    with pytest.raises(ValueError, match="not in the lstm supernet"):
        net.subnet(conformer)
    too_wide = net.sample(random.Random(0)).replace(d_model=256)
    with pytest.raises(ValueError, match="outside this supernet's space"):
        net.weights(too_wide)
    with pytest.raises(ValueError, match="no encoder family"):
        ElasticSupernet(SPACE.with_choices({"encoder": ["lstm"]}), "conformer", VOCAB)


def _sampled(n: int, seed: int):
    rng = random.Random(seed)
    return [SPACE.sample(rng) for _ in range(n)]


@pytest.mark.parametrize("arch", _sampled(8, 5) + [
    pytest.param(a, marks=pytest.mark.slow) for a in _sampled(24, 6)], ids=lambda a: a.id)
def test_sampled_subnets_run_export_and_stream(nets, arch, tmp_path):
    from hwnas.asr.models.graphs import device_graph
    from hwnas.export.onnx import export_onnx
    from hwnas.export.pipeline import check_parity

    net = nets[arch.encoder]
    sub = net.subnet(arch).eval()
    x, xl, y = _inputs(sub)
    with torch.no_grad():
        out = sub(x, xl, y)
    assert torch.isfinite(out["enc"]).all()
    if arch.streaming:   # chunk by chunk equals the full-context forward under the same mask
        streamed, full = streamed_and_full(sub, chunks=4)
        assert (streamed - full).abs().max() < 1e-4
    graph = device_graph(sub)
    path = export_onnx(graph, tmp_path / "model.onnx")
    assert check_parity(graph, "onnx", path, n=2)["max_abs_diff"] < 1e-3


def test_a_stopped_and_resumed_supernet_run_equals_an_uninterrupted_one(tmp_path):
    splits_of, tok = synthetic_splits()
    space = SPACE.with_choices({"decoder": ["ctc", "rnnt"], "frontend": ["logmel"]})

    def run(steps: int, snap, resume: bool) -> ElasticSupernet:
        net = ElasticSupernet(space, "conformer", tok.vocab_size, seed=0)
        cfg = SupernetConfig(steps=steps, batch_frames=300, eval_every=10**9, eval_utts=2,
                             snapshot=snap, warmup=2)
        state = load_snapshot(snap, net, cfg) if resume else None
        train_supernet(net, splits_of, tok, cfg, resume=state)
        return net

    whole = run(6, tmp_path / "a.pt", False)
    run(3, tmp_path / "b.pt", False)
    resumed = run(6, tmp_path / "b.pt", True)
    for (k, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    # and the trained supernet travels as a file, loaded without pickle
    save_supernet(tmp_path / "supernet.pt", resumed, {"steps": 6})
    loaded, info = load_supernet(tmp_path / "supernet.pt")
    assert info == {"steps": 6}
    arch = loaded.sample(random.Random(2))
    x, xl, y = _inputs(loaded.subnet(arch))
    with torch.no_grad():
        assert _same(loaded(arch, x, xl, y), resumed(arch, x, xl, y)) == 0.0


def test_snapshots_of_another_supernet_are_refused(tmp_path):
    splits_of, tok = synthetic_splits()
    net = ElasticSupernet(SPACE, "lstm", tok.vocab_size)
    cfg = SupernetConfig(steps=1, batch_frames=300, eval_every=10**9, eval_utts=2,
                         snapshot=tmp_path / "s.pt")
    train_supernet(net, splits_of, tok, cfg)
    other = ElasticSupernet(SPACE, "blstm", tok.vocab_size)
    with pytest.raises(ValueError, match="another family"):
        load_snapshot(tmp_path / "s.pt", other, cfg)
    (tmp_path / "torn.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="unreadable supernet snapshot"):
        load_snapshot(tmp_path / "torn.pt", net, cfg)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_sandwich_step_and_a_darts_step_make_no_tensor_off_the_supernets_device(nets, family):
    """What makes supernet training and DARTS run on a GPU, checked without one
    (as the trainer's test): under ``torch.device("meta")`` a tensor made
    without naming its device is a meta tensor, and mixing it with the store's
    CPU tensors fails. The subnets' modules are built first, outside (a
    cache), as a training step finds them after its first step."""
    from hwnas.asr.supernet.relax import Relaxation
    from hwnas.asr.supernet.sandwich import distill_loss
    from hwnas.asr.train import task_loss

    net = nets[family]
    ctx = net.sample(random.Random(3))
    archs = sandwich(net, ctx)
    rel = Relaxation(net, ctx) if family in ("conformer", "transformer", "contextnet",
                                             "cnn_lstm") else None
    x, xl, y = _inputs(net.subnet(ctx))
    yl = torch.tensor([5, 3])

    def step() -> None:
        outs = [net(a, x, xl, y if a.decoder != "ctc" else None) for a in archs]
        loss = task_loss(archs[0], outs[0], y, yl)
        for a, o in zip(archs[1:], outs[1:]):
            loss = loss + task_loss(a, o, y, yl) + distill_loss(o, outs[0], yl)
        if rel is not None and rel.alpha:
            out = rel(x, xl, y if rel.top.decoder != "ctc" else None)
            cost = {k: {c: 1.0 + i for i, c in enumerate(v)} for k, v in rel.options.items()}
            loss = loss + task_loss(rel.top, out, y, yl) + rel.expected(cost, 1.0)
        loss.backward()

    step()   # builds and caches the subnets' modules
    net.zero_grad(set_to_none=True)
    with torch.device("meta"):
        step()
    net.zero_grad(set_to_none=True)


def test_a_supernet_records_its_device_and_refuses_a_snapshot_of_the_other_kind(tmp_path):
    """Trained on an explicit device, the result says where; a snapshot whose
    budget counted device seconds is refused on the CPU in one line (kept where
    it is, not set aside and started over)."""
    import json
    from types import SimpleNamespace

    from hwnas.asr.supernet.sandwich import OtherDevice
    from hwnas.asr.supernet.workspace import train_family

    splits_of, tok = synthetic_splits()
    net = ElasticSupernet(SPACE, "lstm", tok.vocab_size)
    cfg = SupernetConfig(steps=1, batch_frames=300, eval_every=10**9, eval_utts=2,
                         snapshot=tmp_path / "s.pt", device="cpu", precision="fp32")
    res = train_supernet(net, splits_of, tok, cfg)
    assert res.device["device"] == "cpu" and res.precision == "fp32" and res.steps == 1
    from hwnas.asr.supernet.score import score  # a fine-tune on an explicit device

    arch = net.sample(random.Random(1))
    got = score(net, arch, splits_of(arch.frontend, arch.n_filters), tok, finetune_steps=1,
                dev_utts=2, device="cpu", precision="fp32")
    assert got["source"] == "fine-tuned" and got["steps"] == 1 and 0 <= got["cer"] <= 1.5
    d = torch.load(tmp_path / "s.pt", weights_only=True)
    assert d["clock"] == "cpu_seconds"
    d["clock"] = "device_seconds"
    torch.save(d, tmp_path / "s.pt")
    with pytest.raises(OtherDevice, match="trained on another kind of device"):
        load_snapshot(tmp_path / "s.pt", ElasticSupernet(SPACE, "lstm", tok.vocab_size), cfg)

    corpus = SimpleNamespace(tokenizer=tok, splits=splits_of, description={"kind": "test"})
    space = SPACE.with_choices({"frontend": ["logmel"], "subsampling": ["conv2d4"]})
    folder, info = train_family(tmp_path / "ws", "lstm", space, corpus, 0.5, device="cpu")
    assert info["clock"] == "cpu_seconds" and info["device"] == "cpu"
    info_file = folder / "info.json"
    info_file.write_text(json.dumps({**json.loads(info_file.read_text()),
                                     "clock": "device_seconds"}))
    with pytest.raises(ValueError, match="another kind of device"):
        train_family(tmp_path / "ws", "lstm", space, corpus, 1.0, device="cpu")
    assert (folder / "supernet.pt").is_file() and not (folder / "set-aside").exists()


TINY_SPACE = """[choices]
frontend = ["logmel"]
n_filters = [40]
subsampling = ["conv2d4"]
num_layers = [1, 2]
d_model = [96]
decoder = ["ctc", "rnnt"]
decoder_dim = [128]
"""


def test_the_supernet_command_trains_continues_lists_and_scores(tmp_path, monkeypatch, capsys):
    import json

    from hwnas.cli.main import main

    from hwnas.data import corpus

    monkeypatch.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    (tmp_path / "tiny.toml").write_text(TINY_SPACE)
    common = ["--workspace", str(tmp_path), "--size", "tiny", "--space",
              str(tmp_path / "tiny.toml")]
    assert main(["supernet", "train", "--family", "lstm", "--budget", "2s", "--json",
                 *common]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert first["family"] == "lstm" and first["cpu_seconds"] >= 2
    # a larger budget continues the same supernet
    assert main(["supernet", "train", "--family", "lstm", "--budget", "4s", "--json",
                 *common]) == 0
    again = json.loads(capsys.readouterr().out)[0]
    assert again["folder"] == first["folder"] and again["steps"] > first["steps"]
    assert main(["supernet", "list", "--workspace", str(tmp_path), "--json"]) == 0
    assert [r["family"] for r in json.loads(capsys.readouterr().out)] == ["lstm"]
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({
        "frontend": "logmel", "n_filters": 40, "subsampling": "conv2d4", "encoder": "lstm",
        "streaming": True, "num_layers": 1, "d_model": 96, "decoder": "ctc",
        "chunk_ms": 480, "lookahead": 0}))
    assert main(["supernet", "score", str(arch), "--json", *common]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["source"] == "inherited" and 0 <= r["cer"] <= 1.5 and r["utts"] == 4
    # a search's narrowed space finds the supernet of the space that contains it
    assert main(["supernet", "score", str(arch), "--utts", "2", "--streaming", "--max-delay",
                 "1000", "--json", *common]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["utts"] == 2 and r["supernet"] == first["folder"]
    assert main(["supernet", "train", "--budget", "1s", "--max-delay", "50", *common]) == 1
    assert "cannot be met" in capsys.readouterr().err
    assert main(["supernet", "score", str(arch), "--finetune", "1s", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "fine-tuned"
    # another family has no supernet here: one line that says how to make one
    arch.write_text(arch.read_text().replace('"lstm"', '"cnn_lstm"').replace(
        '"lookahead": 0', '"lookahead": 0, "conv_kernel": 3'))
    assert main(["supernet", "score", str(arch), *common]) == 1
    assert "hwnas supernet train --family cnn_lstm" in capsys.readouterr().err
