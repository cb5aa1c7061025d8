from __future__ import annotations

import itertools

import pytest
import torch

from hwnas.asr import default_space, preset, preset_names
from hwnas.asr.models import build, device_graph, speech_model
from hwnas.asr.models.stats import model_stats
from hwnas.nn.frontend import FeatureExtractor, input_dim
from tests.helpers import small, streamed_and_full

ENCODER_VARIANTS = ([("conformer", a) for a in ("mhsa", "relpos", "local", "linear")]
                    + [("transformer", a) for a in ("mhsa", "relpos", "local", "linear")]
                    + [(e, None) for e in ("lstm", "blstm", "cnn_lstm", "contextnet")])
ALL_COMBOS = list(itertools.product(ENCODER_VARIANTS, ("ctc", "rnnt", "las", "transformer"),
                                    ("logmel", "mfcc", "learnable")))


@pytest.mark.parametrize("enc, decoder, frontend", ALL_COMBOS,
                         ids=[f"{e[0]}-{e[1]}-{d}-{f}" for e, d, f in ALL_COMBOS])
def test_every_combination_trains_on_padded_batch(enc, decoder, frontend):
    arch = small(enc[0], decoder, enc[1], frontend)
    model = build(arch)
    B, T, U = 3, 67, 5
    feats = torch.randn(B, T, input_dim(frontend, 40))
    lengths = torch.tensor([67, 50, 23])
    targets = torch.randint(1, 32, (B, U))
    out = model(feats, lengths, targets)
    T_enc = -(-T // 4)
    assert out["enc"].shape == (B, T_enc, 96)
    assert out["enc_lengths"].tolist() == [17, 13, 6]
    if decoder == "rnnt":
        assert out["rnnt_logits"].shape == (B, T_enc, U + 1, 32)
        loss = out["rnnt_logits"].logsumexp(-1).mean()
    else:
        assert out["ctc_logits"].shape == (B, T_enc, 32)
        loss = out["ctc_logits"].logsumexp(-1).mean()
        if decoder != "ctc":
            assert out["att_logits"].shape == (B, U + 1, 32)
            loss = loss + out["att_logits"].logsumexp(-1).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


@pytest.mark.parametrize("enc", ENCODER_VARIANTS, ids=[f"{e}-{a}" for e, a in ENCODER_VARIANTS])
@pytest.mark.parametrize("streaming", [False, True])
def test_padding_does_not_change_valid_outputs(enc, streaming):
    if streaming and enc[0] == "blstm":
        pytest.skip("blstm cannot stream")
    arch = small(enc[0], "ctc", enc[1], "logmel", streaming=streaming)
    model = build(arch).eval()
    feats = torch.randn(2, 64, 40)
    with torch.no_grad():
        batch = model(feats, torch.tensor([64, 36]))["ctc_logits"]
        alone = model(feats[1:, :36], torch.tensor([36]))["ctc_logits"]
    assert torch.allclose(batch[1, :9], alone[0, :9], atol=1e-4)


STREAMING = [
    *(("conformer", a, {}) for a in ("mhsa", "relpos", "local", "linear")),
    *(("transformer", a, {}) for a in ("mhsa", "relpos", "local", "linear")),
    ("lstm", None, {}), ("cnn_lstm", None, {}), ("contextnet", None, {}),
    ("conformer", "relpos", dict(left_chunks=0)),
    ("conformer", "local", dict(left_chunks=4, local_window=16)),
    ("conformer", "mhsa", dict(lookahead=2)),
    ("contextnet", None, dict(lookahead=1, subsampling="conv2d6", chunk_ms=240)),
    ("transformer", "relpos", dict(subsampling="conv2d8", chunk_ms=240, left_chunks=2)),
    ("lstm", None, dict(subsampling="stack4", frontend="learnable")),
]


@pytest.mark.parametrize("enc, att, kw", STREAMING,
                         ids=[f"{e}-{a}-{'-'.join(f'{k}{v}' for k, v in kw.items())}"
                              for e, a, kw in STREAMING])
def test_chunk_by_chunk_equals_full_context(enc, att, kw):
    frontend = kw.pop("frontend", "logmel") if "frontend" in kw else "logmel"
    arch = small(enc, "ctc", att, frontend, streaming=True, **kw)
    streamed, full = streamed_and_full(build(arch).eval())
    assert streamed.shape == full.shape
    assert (streamed - full).abs().max().item() < 1e-4


def test_streaming_is_causal_beyond_lookahead():
    arch = small("conformer", "ctc", "mhsa", "logmel", streaming=True, lookahead=1)
    model = build(arch).eval()
    feats = torch.randn(1, 64, 40)
    changed = feats.clone()
    changed[:, 40:] += 5.0  # change the future from frame 40 on
    with torch.no_grad():
        a, _ = model.encode(feats)
        b, _ = model.encode(changed)
    # chunk 4 encoder frames = 16 input frames; frames 0-31 form chunks 0-1, whose
    # look-ahead (1 encoder frame = 4 input frames) reaches frame 35 < 40
    assert torch.allclose(a[:, :8], b[:, :8], atol=1e-6)
    assert not torch.allclose(a[:, 8:], b[:, 8:], atol=1e-3)


@pytest.mark.parametrize("decoder", ["ctc", "rnnt", "las", "transformer"])
@pytest.mark.parametrize("streaming", [False, True])
def test_device_graphs_run_with_declared_shapes(decoder, streaming):
    arch = small("conformer", decoder, "relpos", "mfcc", streaming=streaming)
    graph = device_graph(build(arch))
    ins = graph.example_inputs()
    assert [tuple(x.shape) for x in ins] == [s.shape for s in graph.inputs]
    with torch.no_grad():
        outs = graph(*ins)
    assert len(outs) == len(graph.outputs)
    for o, i in graph.feedback.items():  # every state output fits its input
        assert outs[o].shape == ins[i].shape


def test_stats_count_params_and_flops_including_lstm():
    lstm = model_stats(small("lstm", "ctc", None, "logmel"))
    bigger = model_stats(small("lstm", "ctc", None, "logmel", num_layers=4))
    assert bigger.params > lstm.params and bigger.flops > lstm.flops
    # the LSTM FLOPs dominate: 2 layers x 120 frames x 2*4*96*(96+96)
    assert lstm.flops > 2 * 120 * 2 * 4 * 96 * 192
    s = model_stats(small("conformer", "las", "mhsa", "logmel", streaming=True))
    assert s.graph == "chunk" and s.graph_params < s.params  # rescoring decoder not in graph


def test_presets_build_and_factory_validates():
    for name in preset_names():
        assert sum(p.numel() for p in build(preset(name)).parameters()) > 100_000
    m = speech_model(**preset("conformer_xs").to_dict())
    assert m.arch == preset("conformer_xs")
    with pytest.raises(ValueError, match="'heads'"):
        speech_model(**{**preset("conformer_xs").to_dict(), "heads": 7})


@pytest.mark.parametrize("frontend", ["logmel", "mfcc", "learnable"])
def test_feature_extractor_frames_and_streaming(frontend):
    fx = FeatureExtractor(frontend, 40)
    wave = torch.randn(16000)
    feats = fx(wave)
    assert feats.shape == (1, FeatureExtractor.num_frames(16000), input_dim(frontend, 40))
    # no centre padding: extracting the first half alone gives the same frames
    half = fx(wave[:8000])
    assert torch.allclose(feats[:, : half.shape[1]], half, atol=1e-4)
    with pytest.raises(ValueError, match="too short"):
        fx(torch.randn(100))


def test_sampled_architectures_build_and_run():
    """Every output is named, finite and shaped as documented: logits
    (1, frames out, vocabulary) and each state shaped as the input it feeds."""
    import math

    for arch in default_space().sample_distinct(30, 11):
        model = build(arch)
        graph = device_graph(model)
        inputs = graph.example_inputs()
        with torch.no_grad():
            out = graph(*inputs)
        assert len(out) == len(graph.outputs), arch.id
        frames = arch.chunk_frames if arch.streaming else \
            math.ceil(inputs[0].shape[1] / model.factor)
        assert tuple(out[0].shape) == (1, frames, arch.vocab_size), arch.id
        for o, i in graph.feedback.items():
            assert out[o].shape == inputs[i].shape, (arch.id, graph.outputs[o])
        if "att_logits" in graph.outputs:
            att = out[graph.outputs.index("att_logits")]
            assert tuple(att.shape) == (*inputs[-1].shape[:2], arch.vocab_size), arch.id
        assert all(torch.isfinite(t).all() for t in out), arch.id
