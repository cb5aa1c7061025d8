"""Losses against brute force, decoders, error rates, deterministic training."""

from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.asr import preset
from hwnas.asr.decode import (
    Lexicon,
    ctc_beam,
    ctc_greedy,
    ctc_lexicon_beam,
    snap_to_lexicon,
)
from hwnas.asr.losses import attention_loss, rnnt_loss
from hwnas.asr.train import TrainConfig, evaluate, train, transcribe
from hwnas.data import corpus
from hwnas.data.loaders import load_builtin
from hwnas.data.tokens import CharTokenizer, error_rates
from hwnas.training.features import compute

from .helpers import garbage, lost, stored


def _rnnt_brute(lp: torch.Tensor, y: list[int], T: int) -> float:
    """-log P(y|x) by summing every alignment: a path is a sequence of T blanks
    and U labels in which the last step is a blank at t = T-1."""
    U = len(y)
    total = -math.inf
    for pos in itertools.combinations(range(T + U - 1), U):  # label slots before the last
        t = u = 0
        logp = 0.0
        for k in range(T + U - 1):
            if k in pos:
                logp += float(lp[t, u, y[u]])
                u += 1
            else:
                logp += float(lp[t, u, 0])
                t += 1
        logp += float(lp[T - 1, U, 0])
        total = np.logaddexp(total, logp)
    return -total


def test_rnnt_loss_equals_the_sum_over_all_alignments():
    torch.manual_seed(0)
    B, T, U, V = 3, 4, 3, 5
    logits = torch.randn(B, T, U + 1, V, dtype=torch.float64)
    targets = torch.tensor([[1, 2, 3], [4, 1, 0], [2, 0, 0]])
    t_len, u_len = torch.tensor([4, 3, 2]), torch.tensor([3, 2, 1])
    lp = logits.log_softmax(-1)
    expect = np.mean([_rnnt_brute(lp[b], targets[b, :u_len[b]].tolist(), int(t_len[b]))
                      / (int(u_len[b]) + 1) for b in range(B)])
    got = rnnt_loss(logits, t_len, targets, u_len)
    assert float(got) == pytest.approx(expect, rel=1e-9)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: rnnt_loss(z, t_len, targets, u_len), (logits,))


def test_attention_loss_ignores_padding():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6)
    y, yl = torch.tensor([[1, 2, 3], [4, 0, 0]]), torch.tensor([3, 1])
    full = attention_loss(logits, y, yl)
    logits2 = logits.clone()
    logits2[1, 2:] = 100.0  # positions past the second utterance's end token
    assert float(attention_loss(logits2, y, yl)) == pytest.approx(float(full))


def test_ctc_decoders():
    # frames: a a _ a b b  -> greedy "a a b" with the blank keeping the two a's apart
    ids = [1, 1, 0, 1, 2, 2]
    logits = torch.full((1, 6, 3), -10.0)
    for t, k in enumerate(ids):
        logits[0, t, k] = 0.0
    assert ctc_greedy(logits, torch.tensor([6])) == [[1, 1, 2]]
    assert ctc_beam(logits[0].log_softmax(-1).numpy(), beam=4) == [1, 1, 2]
    # the classic case where prefix beam search beats greedy: two frames, each
    # blank 0.4 / 'a' 0.3 / 'b' 0.3 -> greedy says "", "a" sums to 0.39 > 0.16
    p = np.log(np.array([[0.4, 0.3, 0.3], [0.4, 0.3, 0.3]]))
    assert ctc_greedy(torch.tensor(p)[None], torch.tensor([2])) == [[]]
    assert ctc_beam(p, beam=4) in ([1], [2])


def test_lexicon_snapping_and_error_rates():
    lex = ["red", "green", "blue", "cat", "dog"]
    assert snap_to_lexicon("grean blu cot", lex) == "green blue cat"
    r = error_rates(["the red cat", "a dog"], ["the red cat", "a dig"])
    assert r["wer"] == pytest.approx(1 / 5) and r["cer"] == pytest.approx(1 / 16)
    assert error_rates(["Hello, World!"], ["hello world"])["wer"] == 0.0


def _ctc_logprob(lp: np.ndarray, seq: list[int]) -> float:
    """log P(seq | lp) summed over every CTC alignment (PyTorch's CTC loss)."""
    x = torch.tensor(lp, dtype=torch.float64)[:, None]
    if not seq:
        return float(x[:, 0, 0].sum())
    loss = torch.nn.functional.ctc_loss(x, torch.tensor([seq]), torch.tensor([len(lp)]),
                                        torch.tensor([len(seq)]), reduction="sum")
    return -float(loss)


def test_lexicon_beam_finds_the_most_probable_word_sequence():
    """Without pruning, the constrained search returns the lexicon-valid label
    sequence of highest CTC probability -- checked against every such sequence."""
    tok = CharTokenizer(["a", "b"])  # ids: blank 0, space 1, a 2, b 3
    words = ["a", "ab", "bb"]
    lex = Lexicon(words, tok.encode)
    valid = {()}
    for _ in range(3):  # every sequence of up to three words
        valid |= {v + ((1,) if v else ()) + tuple(tok.encode(w)) for v in valid for w in words}
    rng = np.random.default_rng(0)
    for trial in range(25):
        T = int(rng.integers(3, 7))
        lp = torch.tensor(rng.normal(size=(T, 4)) * 2).log_softmax(-1).numpy()
        scores = {v: _ctc_logprob(lp, list(v)) for v in valid if len(v) <= T}
        best = max(scores, key=scores.get)
        got = ctc_lexicon_beam(lp, lex, beam=10_000, prune=1e9)
        assert scores[tuple(got)] == pytest.approx(scores[best], abs=1e-9), trial
        text = tok.decode(got)
        assert all(w in words for w in text.split())


def test_lexicon_beam_turns_a_misspelling_into_a_word():
    tok = CharTokenizer(list("acdgot"))
    lex = Lexicon(["cat", "dog", "cod"], tok.encode)
    # frames spell "cst"-like noise: c, then 'a' slightly below 'o', then t
    ids = {c: tok.encode(c)[0] for c in "acdgot"}
    lp = np.full((5, tok.vocab_size), -8.0)
    for t, (c, p) in enumerate([("c", -0.1), ("o", -0.6), ("t", -0.1)]):
        lp[t, ids[c]] = p
    lp[1, ids["a"]] = -0.9
    lp[3:, 0] = -0.01
    greedy = tok.decode(ctc_greedy(torch.tensor(lp)[None], torch.tensor([5]))[0])
    assert greedy == "cot"  # not a word of this lexicon
    assert tok.decode(ctc_lexicon_beam(lp, lex, beam=8)) == "cat"
    with pytest.raises(ValueError, match="no word"):
        Lexicon(["123"], tok.encode)


@pytest.fixture(scope="module")
def tiny_features(tmp_path_factory):
    ws = tmp_path_factory.mktemp("corpus")
    mp = pytest.MonkeyPatch()
    mp.setitem(corpus.SIZES, "tiny", (24, 6, 6))
    root = corpus.build(ws, ["en"], "tiny", 0, workers=1)
    mp.undo()
    tr = compute(load_builtin(root, "en", "train"), "logmel", 40, ws / "cache")
    dv = compute(load_builtin(root, "en", "dev"), "logmel", 40, ws / "cache")
    again = compute(load_builtin(root, "en", "dev"), "logmel", 40, ws / "cache")
    assert np.array_equal(again.frames, dv.frames)  # from the cache
    return tr, dv


@pytest.mark.parametrize("decoder", ["ctc", "rnnt", "las"])
def test_training_is_deterministic_for_a_seed(tiny_features, decoder):
    tr, dv = tiny_features
    tok = CharTokenizer.for_languages(["en"])
    arch = preset("conformer_xs").replace(n_filters=40, num_layers=1, d_model=96, heads=2)
    if decoder != "ctc":
        arch = arch.replace(decoder=decoder, decoder_layers=1, decoder_dim=128)
    cfg = TrainConfig(steps=3, eval_every=2, eval_utts=4, batch_frames=3000)
    a, b = train(arch, tr, dv, tok, cfg), train(arch, tr, dv, tok, cfg)
    assert a.steps == b.steps == 3 and [p["step"] for p in a.curve] == [2, 3]
    assert a.dev == b.dev and a.curve[-1]["loss"] == b.curve[-1]["loss"]
    for (n, p), (_, q) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(p, q), n
    assert math.isfinite(a.curve[-1]["loss"])
    words = list(corpus.words("en"))
    r = evaluate(a.model, a.model.arch, dv, tok, a.norm, lexicon=words)
    assert ("wer_lexicon_beam" in r) == (decoder != "rnnt")  # RNN-T has no CTC head
    if decoder == "rnnt":
        with pytest.raises(ValueError, match="needs a CTC head"):
            transcribe(a.model, a.model.arch, dv, tok, a.norm, lexicon=Lexicon(words, tok.encode))


def test_cpu_training_lays_convolutions_out_channels_last_and_its_weights_load_anywhere(
        tiny_features):
    """nn.fit.training_layout: on a CPU the subsampling's 2-D convolution
    weights train in channels-last order (oneDNN's faster kernels); the
    values are the module's own, and the weights a run saves give the same
    outputs in a model of the default layout (export, scoring)."""
    from hwnas.asr.models.model import build
    from hwnas.nn.fit import training_layout

    tr, dv = tiny_features
    tok = CharTokenizer.for_languages(["en"])
    arch = preset("conformer_xs").replace(n_filters=40, num_layers=1, d_model=96, heads=2)
    torch.manual_seed(0)
    plain = build(arch.replace(vocab_size=tok.vocab_size))
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    laid = training_layout(plain, torch.device("cpu"))
    convs = {k: v for k, v in laid.state_dict().items() if v.dim() == 4}
    assert len(convs) == 2 and all(v.is_contiguous(memory_format=torch.channels_last)
                                   for v in convs.values())
    assert not convs["subsampling.convs.1.weight"].is_contiguous()   # one input channel: alike
    assert all(torch.equal(v, before[k]) for k, v in laid.state_dict().items())
    assert training_layout(torch.nn.Conv2d(1, 4, 3), torch.device("meta")).weight.is_contiguous()

    res = train(arch, tr, dv, tok, TrainConfig(steps=2, eval_every=2, eval_utts=4,
                                               batch_frames=3000))
    assert all(v.is_contiguous(memory_format=torch.channels_last)
               for v in res.model.state_dict().values() if v.dim() == 4)
    fresh = build(res.model.arch)
    fresh.load_state_dict(res.model.state_dict())
    assert all(v.is_contiguous() for v in fresh.state_dict().values())
    x = torch.randn(2, 64, 40)
    lengths = torch.tensor([64, 50])
    res.model.eval()
    fresh.eval()
    with torch.no_grad():
        a, b = res.model(x, lengths), fresh(x, lengths)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a
                                        if isinstance(a[k], torch.Tensor))


def test_train_command_prints_curve_and_test_sets(tmp_path, monkeypatch, capsys):
    from cli.main import main

    monkeypatch.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    argv = ["train", "--preset", "conformer_xs", "--steps", "2", "--size", "tiny", "--beam", "2",
            "--workspace", str(tmp_path)]
    assert main(argv + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 2 and set(out["tests"]) == {"en/test-clean", "en/test-noisy"}
    assert 0 <= out["tests"]["en/test-clean"]["cer"] <= 1.5
    assert (Path(out["out"]) / "weights.pt").is_file()
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "learning curve" in text and "en/test-noisy" in text and "lexicon beam" in text
    # scored again later on the built-in test sets it recorded: the same figures
    assert main(["score", out["out"], "--beam", "2", "--json", "--workspace",
                 str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["tests"] == out["tests"]
    assert main(["train", "--preset", "conformer_xs", "--workspace", str(tmp_path)]) == 1
    assert "give a budget" in capsys.readouterr().err
    assert main(["train", "--preset", "conformer_xs", "--budget", "soon",
                 "--workspace", str(tmp_path)]) == 1
    assert "budget 'soon'" in capsys.readouterr().err


def test_multilingual_training_reports_each_language(tmp_path, monkeypatch, capsys):
    """Russian and Hindi beside English: one model, one tokenizer over three
    scripts, dev error rates per language and test sets per language."""
    from cli.main import main

    monkeypatch.setitem(corpus.SIZES, "tiny", (6, 3, 2))
    argv = ["train", "--preset", "conformer_xs", "--steps", "2", "--size", "tiny", "--langs",
            "en,ru,hi", "--workspace", str(tmp_path)]
    assert main(argv + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by = out["dev"]["by_lang"]
    assert set(by) == {"en", "ru", "hi"} and all(0 <= r["cer"] <= 5 for r in by.values())
    assert {t.split("/")[0] for t in out["tests"]} == {"en", "ru", "hi"}
    result = json.loads((Path(out["out"]) / "result.json").read_text())
    assert result["dev"]["by_lang"] == by
    assert main(argv) == 0
    assert "  hi: CER" in capsys.readouterr().out


def test_error_rates_by_part_follow_the_evaluated_utterances():
    from types import SimpleNamespace

    from hwnas.asr.train import by_part

    fs = SimpleNamespace(parts=[("en", 2), ("ru", 3)],
                         texts=["ab", "cd", "да", "нет", "мир"])
    got = by_part(fs, np.array([1, 2, 4]), ["cd", "дa", "мир"])
    assert got["en"]["cer"] == 0 and got["ru"]["cer"] == 0.2 and set(got) == {"en", "ru"}
    assert by_part(fs, np.array([0]), ["ab"]) == {"en": {"cer": 0.0, "wer": 0.0, "n": 1}}


def test_train_command_continues_a_stopped_run(tmp_path, monkeypatch, capsys):
    from cli.main import main

    monkeypatch.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    base = ["train", "--preset", "conformer_xs", "--size", "tiny", "--json"]
    a, b = ["--workspace", str(tmp_path / "a")], ["--workspace", str(tmp_path / "b")]
    assert main(base + a + ["--steps", "2"]) == 0
    capsys.readouterr()
    assert main(base + a + ["--steps", "4"]) == 0  # continues the 2-step run
    cont = json.loads(capsys.readouterr().out)
    assert main(base + b + ["--steps", "4"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert cont["steps"] == whole["steps"] == 4 and cont["dev"] == whole["dev"]
    wa = torch.load(Path(cont["out"]) / "weights.pt", weights_only=True)
    wb = torch.load(Path(whole["out"]) / "weights.pt", weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [p["step"] for p in cont["curve"]] == [2, 4]
    other = base + a + ["--steps", "4", "--corpus-seed", "1"]  # same folder, other data
    assert main(other) == 1
    assert "holds a run on other data; --restart" in capsys.readouterr().err
    assert main(other + ["--restart"]) == 0
    assert [p["step"] for p in json.loads(capsys.readouterr().out)["curve"]] == [4]


def test_a_rung_continues_the_previous_one(tiny_features):
    from hwnas.asr.train import rung_runner

    tr, dv = tiny_features
    tok = CharTokenizer.for_languages(["en"])
    arch = preset("conformer_xs").replace(n_filters=40, num_layers=1, d_model=96, heads=2)
    run = rung_runner(tr, dv, tok, batch_frames=3000, eval_every=1000, eval_utts=4)
    cer1, state = run(arch, 1.0, None)
    steps1 = state["step"]
    cer2, state2 = run(arch, 2.5, state)
    assert steps1 >= 1 and state2["step"] > steps1 and state2["cpu"] >= 2.5
    assert 0 <= cer1 and 0 <= cer2


def test_a_stopped_run_resumes_to_the_same_weights(tiny_features, tmp_path):
    """Stopped after 3 steps (snapshot on disk), resumed to 7: the same weights
    as 7 steps in one go -- across an epoch boundary, with SpecAugment."""
    from hwnas.asr.train import load_snapshot

    tr, dv = tiny_features
    tok = CharTokenizer.for_languages(["en"])
    arch = preset("conformer_xs").replace(n_filters=40, num_layers=1, d_model=96, heads=2)
    kw = {"eval_every": 2, "eval_utts": 4, "batch_frames": 3000}
    whole = train(arch, tr, dv, tok, TrainConfig(steps=7, **kw))
    snap = tmp_path / "checkpoint.pt"
    first = train(arch, tr, dv, tok, TrainConfig(steps=3, snapshot=snap, snapshot_every_s=0,
                                                  **kw))
    assert first.steps == 3 and snap.is_file()
    assert len(first.state["batches"]) < 7  # the 7 steps span more than one epoch
    cfg = TrainConfig(steps=7, snapshot=snap, **kw)
    resumed = train(arch, tr, dv, tok, cfg,
                    resume=load_snapshot(snap, arch, cfg, tok.vocab_size))
    assert resumed.steps == 7 and resumed.dev == whole.dev
    for (n, p), (_, q) in zip(whole.model.state_dict().items(),
                              resumed.model.state_dict().items()):
        assert torch.equal(p, q), n
    assert [x["step"] for x in resumed.curve] == [2, 3, 4, 6, 7]
    assert load_snapshot(snap, arch, cfg, tok.vocab_size)["step"] == 7  # kept at the end
    with pytest.raises(ValueError, match="another architecture"):
        load_snapshot(snap, arch.replace(d_model=144), cfg, tok.vocab_size)
    assert resumed.to_dict()["device"] == "cpu" and resumed.to_dict()["clock"] == "cpu_seconds"
    on_gpu = torch.load(snap, weights_only=True)   # as a run on a GPU would have written it
    on_gpu["clock"] = "device_seconds"
    torch.save(on_gpu, tmp_path / "gpu.pt")
    with pytest.raises(ValueError, match="trained on an accelerator.*same kind of device"):
        load_snapshot(tmp_path / "gpu.pt", arch, cfg, tok.vocab_size)
    with pytest.raises(ValueError, match="trained on another kind of device"):
        train(arch, tr, dv, tok, cfg, resume={**load_snapshot(snap, arch, cfg, tok.vocab_size),
                                              "clock": "device_seconds"})

    def ctrl_c(step: int, _cpu: float) -> None:
        if step == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C saves where it stopped
        train(arch, tr, dv, tok, TrainConfig(steps=7, snapshot=snap, **kw), on_step=ctrl_c)
    assert load_snapshot(snap, arch, cfg, tok.vocab_size)["step"] == 2
    snap.write_bytes(b"torn")
    with pytest.raises(ValueError, match="unreadable training snapshot"):
        load_snapshot(snap, arch, cfg, tok.vocab_size)


@pytest.mark.parametrize("decoder", ["rnnt", "las", "transformer"])
def test_beam_search_of_width_one_is_greedy(decoder):
    from hwnas.asr.decode import (
        attention_beam,
        attention_greedy,
        rnnt_beam,
        rnnt_greedy,
    )
    from hwnas.asr.models.model import build

    torch.manual_seed(3)
    arch = preset("conformer_xs").replace(num_layers=1, decoder=decoder, decoder_layers=1,
                                          decoder_dim=128, vocab_size=12)
    model = build(arch).eval()
    enc, el = model.encode(torch.randn(2, 120, arch.n_filters), torch.tensor([120, 80]))
    for b in range(2):
        e, n = enc[b: b + 1], int(el[b])
        if decoder == "rnnt":
            g = rnnt_greedy(model, e, torch.tensor([n]), max_symbols=1)[0]
            assert rnnt_beam(model, e, n, beam=1) == g
            wide = rnnt_beam(model, e, n, beam=4)
        else:
            g = attention_greedy(model, e, torch.tensor([n]), max_len=30)[0]
            assert attention_beam(model, e, n, beam=1, max_len=30) == g
            wide = attention_beam(model, e, n, beam=4, max_len=30)
        assert all(0 < k < 12 for k in wide)


def test_batched_rnnt_greedy_equals_one_utterance_at_a_time():
    """The frame-synchronous batch decoder follows each utterance's own rule:
    an untrained transducer (which emits often, up to the per-frame cap)
    decodes the same in a padded batch as alone."""
    from hwnas.asr.decode import rnnt_greedy
    from hwnas.asr.models.model import build

    torch.manual_seed(5)
    arch = preset("conformer_xs").replace(num_layers=1, decoder="rnnt", decoder_layers=2,
                                          decoder_dim=128, vocab_size=12)
    model = build(arch).eval()
    lens = torch.tensor([160, 120, 64, 90])
    with torch.no_grad():
        enc, el = model.encode(torch.randn(4, 160, arch.n_filters), lens)
        together = rnnt_greedy(model, enc, el)
        alone = [rnnt_greedy(model, enc[b: b + 1, : int(el[b])], el[b: b + 1])[0]
                 for b in range(4)]
    assert together == alone
    assert sum(map(len, together)) > 20   # the cap is reached somewhere, not all blank


@pytest.mark.parametrize("decoder", ["ctc", "rnnt"])
def test_dev_loss_is_the_mean_of_each_utterances_loss(decoder):
    """Batched and padded, the dev loss is the mean of every utterance's own
    loss, taken without dropout."""
    from hwnas.asr.models.model import build
    from hwnas.asr.train import dev_loss

    from .helpers import synthetic_splits

    splits_of, tok = synthetic_splits(utts=6)
    arch = preset("conformer_xs").replace(num_layers=1, vocab_size=tok.vocab_size)
    if decoder == "rnnt":
        arch = arch.replace(decoder="rnnt", decoder_layers=1, decoder_dim=128)
    dev = splits_of(arch.frontend, arch.n_filters).dev
    norm = dev.stats()
    torch.manual_seed(0)
    model = build(arch)
    together = dev_loss(model, arch, dev, tok, norm)
    alone = [dev_loss(model, arch, dev, tok, norm, np.array([i])) for i in range(6)]
    assert together == pytest.approx(np.mean(alone), rel=1e-4)
    assert model.training is False and math.isfinite(together) and together > 0


# --- corrupted state of a training run and of the feature cache: nothing trained
# or computed is deleted; each case continues, recomputes, or stops with one line
@pytest.fixture(scope="module")
def trained_workspace(tmp_path_factory):
    """A workspace holding a 2-step run of conformer_xs on a tiny corpus."""
    from cli.main import main

    ws = tmp_path_factory.mktemp("trained")
    mp = pytest.MonkeyPatch()
    mp.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    assert main(["train", "--preset", "conformer_xs", "--size", "tiny", "--json", "--steps", "2",
                 "--workspace", str(ws)]) == 0
    mp.undo()
    return ws


def _one(folder: Path, pattern: str) -> Path:
    return sorted(folder.glob(pattern))[0]


def _run(ws: Path) -> Path:
    return _one(ws / "runs" / "train", "*-s0")


def _cut(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 2)])


def _foreign_npz(p: Path) -> None:
    with open(p, "wb") as f:
        np.savez(f, other=np.arange(3))


RUN_CORRUPTIONS = {  # name -> (corrupt(ws), what `hwnas train` then does: 0 or the error)
    "snapshot truncated": (lambda ws: _cut(_run(ws) / "checkpoint.pt"),
                           "unreadable training snapshot"),
    "snapshot garbage": (lambda ws: garbage(_run(ws) / "checkpoint.pt"),
                         "unreadable training snapshot"),
    "snapshot empty": (lambda ws: (_run(ws) / "checkpoint.pt").write_bytes(b""),
                       "unreadable training snapshot"),
    "snapshot of the wrong type": (lambda ws: torch.save([1, 2], _run(ws) / "checkpoint.pt"),
                                   "another architecture"),
    "snapshot missing its optimiser": (lambda ws: torch.save(
        {k: v for k, v in torch.load(_run(ws) / "checkpoint.pt", weights_only=True).items()
         if k != "opt"}, _run(ws) / "checkpoint.pt"), "incomplete training snapshot"),
    "data stamp garbage": (lambda ws: garbage(_run(ws) / "checkpoint.json"),
                           "missing or unreadable"),
    "data stamp missing": (lambda ws: (_run(ws) / "checkpoint.json").unlink(),
                           "missing or unreadable"),
    "data stamp of the wrong type": (lambda ws: (_run(ws) / "checkpoint.json").write_text("[]"),
                                     "holds a run on other data"),
    "snapshot missing, weights kept": (lambda ws: (_run(ws) / "checkpoint.pt").unlink(), 0),
    "result garbage": (lambda ws: garbage(_run(ws) / "result.json"), 0),
    "extra unknown files in the run": (lambda ws: (_run(ws) / "notes.txt").write_text("x"), 0),
    "feature index garbage": (lambda ws: garbage(_one(ws / "cache" / "features", "*.npz")), 0),
    "feature index truncated": (lambda ws: _cut(_one(ws / "cache" / "features", "*.npz")), 0),
    "feature index of something else": (
        lambda ws: _foreign_npz(_one(ws / "cache" / "features", "*.npz")), 0),
    "feature frames truncated": (lambda ws: _cut(_one(ws / "cache" / "features", "*.f16")), 0),
    "feature frames empty": (
        lambda ws: _one(ws / "cache" / "features", "*.f16").write_bytes(b""), 0),
    "extra unknown files in the cache": (
        lambda ws: (ws / "cache" / "features" / "mine.npz").write_bytes(b"x"), 0),
}
# what a run that continues is meant to write over
REWRITTEN = {"checkpoint.pt", "weights.pt", "result.json", "arch.json", "tokenizer.json",
             "feature_norm.npz", "checkpoint.json"}


@pytest.mark.parametrize("case", sorted(RUN_CORRUPTIONS))
def test_corrupted_training_state_loses_nothing(trained_workspace, tmp_path, monkeypatch,
                                                capsys, case):
    import shutil


    # in place (feature cache keys hold the audio's absolute paths), restored after
    ws = trained_workspace
    shutil.copytree(ws, tmp_path / "pristine")
    try:
        _corrupted_training_state(ws, case, capsys, monkeypatch)
    finally:
        shutil.rmtree(ws)
        shutil.copytree(tmp_path / "pristine", ws)


def _corrupted_training_state(ws, case, capsys, monkeypatch):
    from cli.main import main

    monkeypatch.setitem(corpus.SIZES, "tiny", (12, 4, 4))
    corrupt, expect = RUN_CORRUPTIONS[case]
    corrupt(ws)
    before = stored(ws)
    argv = ["train", "--preset", "conformer_xs", "--size", "tiny", "--json", "--steps", "3",
            "--workspace", str(ws)]
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if expect != 0:   # one line naming the problem and the way on; nothing touched
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("hwnas: error:"), err
        assert expect in lines[0] and "--restart" in lines[0], lines[0]
        assert stored(ws) == before
        assert main(argv + ["--restart"]) == 0   # starts over, the old run set aside
        assert "is kept in" in capsys.readouterr().err
        assert not lost(before, stored(ws))
        return
    assert code == 0, err
    rewritten = {k for k in before if k.startswith("runs/train/") and k.split("/")[-1]
                 in REWRITTEN}
    assert not lost(before, stored(ws), rewritten)
    if case.startswith("feature"):
        assert "hwnas: note: feature cache" in err and "set aside" in err, err
        assert list((ws / "cache" / "features" / "set-aside").iterdir())
    if case == "snapshot missing, weights kept":   # a fresh start keeps the trained weights
        assert "is kept in" in err
        kept = _one(_run(ws) / "set-aside", "*")
        assert (kept / "weights.pt").read_bytes() == before[
            (_run(ws) / "weights.pt").relative_to(ws).as_posix()]


def test_a_floor_of_updates_stretches_a_cpu_time_budget_up_to_its_ceiling():
    """The rung rule: the budget's seconds, then on to the floor of updates,
    never past the ceiling (a clock of 1/8 s per update)."""
    from hwnas.nn.fit import run_budget
    from hwnas.training.halving import floor_options

    def steps_taken(**budget: float) -> int:
        st = {"step": 0}
        run_budget(TrainConfig(**budget), lambda: st["step"] / 8, st, lambda: None,
                   lambda _s: None, None)
        return st["step"]

    assert steps_taken(cpu_seconds=1.0) == 8
    assert steps_taken(cpu_seconds=1.0, min_steps=5, max_cpu_seconds=2.0) == 8
    assert steps_taken(cpu_seconds=1.0, min_steps=12, max_cpu_seconds=2.0) == 12
    assert steps_taken(cpu_seconds=1.0, **floor_options(1.0, 40)) == 16   # stretched 2x at most
    assert floor_options(1.0, 0) == {}
    with pytest.raises(ValueError, match="CPU-time budget only"):
        TrainConfig(steps=10, min_steps=20)
    with pytest.raises(ValueError, match="below the CPU-time budget"):
        TrainConfig(cpu_seconds=10, max_cpu_seconds=5)


def test_sigterm_saves_the_snapshot_as_ctrl_c_does(tiny_features, tmp_path, monkeypatch,
                                                   capsys):
    """A scheduler's SIGTERM during `hwnas train`: the run's snapshot is saved
    where it stopped, and the command ends with 143 and one line."""
    import os
    import signal

    import cli.train
    from cli.main import main
    from hwnas.asr.train import load_snapshot

    tr, dv = tiny_features
    tok = CharTokenizer.for_languages(["en"])
    arch = preset("conformer_xs").replace(n_filters=40, num_layers=1, d_model=96, heads=2)
    snap = tmp_path / "checkpoint.pt"
    cfg = TrainConfig(steps=7, snapshot=snap, eval_every=2, eval_utts=4, batch_frames=3000)

    def term(step: int, _cpu: float) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    def fake_train(args):   # stands in for the command's work, under main's handlers
        train(arch, tr, dv, tok, cfg, on_step=term)
        return 0

    monkeypatch.setattr(cli.train, "cmd_train", fake_train)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["train", "--preset", "conformer_xs", "--steps", "7"]) == 143
    assert "terminated (SIGTERM)" in capsys.readouterr().err
    assert load_snapshot(snap, arch, cfg, tok.vocab_size)["step"] == 2
    assert signal.getsignal(signal.SIGTERM) is before   # the handler is put back


@pytest.mark.parametrize("decoder", ["ctc", "rnnt"])
def test_bf16_autocast_trains_with_fp32_losses_and_says_so(decoder):
    """--precision bf16: the forward under CPU autocast, the losses (CTC, RNN-T)
    in fp32 on fp32 outputs; the result records the precision. A precision
    the trainer does not know is refused."""
    import torch

    from hwnas.asr.train import TrainConfig, train
    from hwnas.nn.fit import as_fp32, forward_precision

    from .helpers import small, synthetic_splits

    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, fp16"):
        TrainConfig(steps=1, precision="fp8")
    with forward_precision("bf16"):
        y = torch.nn.Linear(4, 4)(torch.ones(2, 4))
    assert y.dtype == torch.bfloat16 and as_fp32({"y": y})["y"].dtype == torch.float32
    splits_of, tok = synthetic_splits(utts=6)
    arch = small("conformer", decoder, "mhsa", "logmel", num_layers=1)
    sp = splits_of(arch.frontend, arch.n_filters)
    res = train(arch, sp.train, sp.dev, tok, TrainConfig(steps=2, precision="bf16",
                                                         eval_every=10**9, eval_utts=2))
    assert res.steps == 2 and res.precision == "bf16" and res.to_dict()["precision"] == "bf16"
    assert all(np.isfinite(p["loss"]) for p in res.curve)
    assert all(p.dtype == torch.float32 for p in res.model.parameters())   # weights stay fp32


# --- the training device ------------------------------------------------------------
def test_the_training_device_is_chosen_and_refused_in_one_line(monkeypatch):
    """auto is the CPU where no CUDA device is visible; $HWNAS_TRAIN_DEVICE sets the
    default; a CUDA device that is not there, or a name that is no device, is one
    line; auto precision is fp32 on a CPU, where fp16 is refused."""
    from hwnas.nn.fit import TRAIN_DEVICE_ENV, device_record, resolve_precision, train_device

    monkeypatch.delenv(TRAIN_DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert train_device() == train_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match=rf"training device {name}: no CUDA device here"):
            train_device(name)
    with pytest.raises(ValueError, match="give auto, cpu, cuda or cuda:N"):
        train_device("gpu0")
    monkeypatch.setenv(TRAIN_DEVICE_ENV, "cuda")
    with pytest.raises(ValueError, match="no CUDA device here"):
        train_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert train_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"2 CUDA device\(s\) visible"):
        train_device("cuda:2")
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ValueError, match="fp16 training needs a CUDA device"):
        resolve_precision("fp16", cpu)
    rec = device_record(cpu)
    assert rec["device"] == "cpu" and rec["clock"] == "cpu_seconds" and rec["device_name"]


def test_a_budget_in_device_seconds_stops_at_the_budget_evaluations_not_charged(monkeypatch):
    """On an accelerator the budget counts wall time read after the device
    finished its work (synchronised each reading), less evaluations. Checked
    with steps that take wall time but no CPU time (as a GPU's kernels do,
    seen from the host): a CPU-seconds clock would hardly move."""
    import time
    from types import SimpleNamespace

    from hwnas.nn.fit import Clock, run_budget

    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    gpu = torch.device("cuda", 0)
    clock = Clock(device=gpu)
    st = {"step": 0}
    cfg = SimpleNamespace(steps=None, cpu_seconds=0.3, snapshot_every_s=float("inf"))

    charged = []

    def after(step: int) -> None:
        charged.append(clock())
        with clock.uncharged():   # a dev evaluation: 0.1 s, not charged
            time.sleep(0.1)

    t0 = time.perf_counter()
    run_budget(cfg, clock, st, lambda: time.sleep(0.05), after, None)
    wall = time.perf_counter() - t0
    assert charged[-2] < 0.3 <= charged[-1]   # stops at the first step past the budget
    assert st["step"] == len(charged) >= 3
    assert wall - clock() >= 0.1 * st["step"] - 0.01   # the evaluations were not charged
    assert synced and all(d == gpu for d in synced)
    resumed = Clock(clock(), gpu)   # continued from a snapshot's spent seconds
    assert abs(resumed() - clock()) < 0.02


def test_gpu_use_samples_the_cards_utilisation_and_skips_failed_readings(tmp_path,
                                                                          monkeypatch):
    """nn.gpu_use: utilisation sampled on a thread while a run trains (a
    failed reading is skipped, not made up); nvidia-smi answers for the card
    by UUID where torch has no NVML binding; a CPU run records nothing."""
    import time

    from hwnas.nn.gpu_use import GpuUse, Sampler, utilisation_reader
    from hwnas.tasks.units import gpu_fields

    readings = iter([10.0, RuntimeError("NVML busy"), 30.0])

    def read() -> float:
        r = next(readings, 20.0)
        if isinstance(r, Exception):
            raise r
        return r

    s = Sampler(read, every_s=0.01).start()
    deadline = time.monotonic() + 20.0   # a loaded host may run the thread late
    while len(s.samples) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    s.stop()
    assert s.samples[:3] == [10.0, 30.0, 20.0] and set(s.samples[2:]) == {20.0}
    assert s.summary() == {"gpu_util_mean_pct": round(sum(s.samples) / len(s.samples), 1),
                           "gpu_util_samples": len(s.samples)}
    assert Sampler(read).summary() == {}    # never started: no figure, not 0 %
    with GpuUse(torch.device("cpu")) as use:
        pass
    assert use.sampler is None and use.record() == {}
    # what a trial's rung record keeps of it
    assert gpu_fields({"device": "cuda:0", "gpu_memory_peak_mb": 812.4, "gpu_util_mean_pct": 61.5,
                       "gpu_util_samples": 40}) == {"gpu_mb": 812.4, "gpu_util_pct": 61.5}
    assert gpu_fields({"device": "cuda:0", "gpu_memory_peak_mb": 812.4}) == {"gpu_mb": 812.4}
    assert gpu_fields({"device": "cpu"}) == {}

    # nvidia-smi's own output for --format=csv,noheader,nounits, asked by UUID
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\necho 37\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")

    def no_nvml(device=None):
        raise ModuleNotFoundError("pynvml does not seem to be installed")

    class Props:
        uuid = "6a1b2c3d-0000-1111-2222-333344445555"

    monkeypatch.setattr(torch.cuda, "utilization", no_nvml)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: Props())
    read = utilisation_reader(torch.device("cuda", 0))
    assert read is not None and read() == 37.0
    assert (tmp_path / "args").read_text().split() == [
        "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i",
        "GPU-6a1b2c3d-0000-1111-2222-333344445555"]
    smi.write_text("#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n")
    assert utilisation_reader(torch.device("cuda", 0)) is None


def test_a_trial_on_a_gpu_asks_ray_for_its_share_of_one():
    """--gpus-per-trial: the search's rung of training asks for num_gpus only
    where it trains on a GPU, and no more than its share."""
    from hwnas import tasks

    class Data:
        description = {"kind": "builtin"}

    def unit(options):
        return tasks.get("asr").rung_unit(Data(), {}, workspace=".", budget=10.0,
                                          unit="cpu_seconds", seed=0, run_dir="r", resume=False,
                                          extra={}, options=options)

    assert unit({"device": "cpu", "precision": "fp32", "gpus": 1.0}).needs() == {"num_cpus": 1}
    half = unit({"device": "cuda:0", "precision": "bf16", "gpus": 0.5})
    assert half.needs() == {"num_cpus": 1, "num_gpus": 0.5}
    assert half.train_options["device"] == "cuda:0" and "gpus" not in half.train_options

    class Sentences:   # a TTS search's data
        lang, size, asr_run = "en", "tiny", None

    tts = tasks.get("tts").rung_unit(Sentences(), {}, workspace=".", budget=10.0,
                                     unit="cpu_seconds", seed=0, run_dir="r", resume=False,
                                     extra={}, options={"device": "cuda", "precision": "auto",
                                                        "gpus": 0.25, "min_steps": 3})
    assert tts.needs() == {"num_cpus": 1, "num_gpus": 0.25}
    assert tts.train_options == {"device": "cuda", "precision": "auto"}

    from hwnas.asr.supernet.screen import SupernetScreen

    class Cand:
        class arch:
            encoder, frontend, n_filters = "conformer", "logmel", 80
            to_dict = staticmethod(dict)

    screen = SupernetScreen({"conformer": "sn"}, None, {}, ".", options={
        "device": "cuda:1", "precision": "bf16", "gpus": 0.5})
    score = screen._unit(Cand(), 20.0)
    assert score.needs() == {"num_cpus": 1, "num_gpus": 0.5}
    assert score.train_options == {"device": "cuda:1", "precision": "bf16"}


def test_a_ray_cluster_s_gpus_are_not_looked_for_on_the_driver(monkeypatch):
    """--train-device cuda with --executor ray names the cluster's GPU hosts
    (`hwnas lab join --num-gpus N`): the driver need not have one, and the
    precision resolves where the trial runs. Elsewhere the device is checked
    here, and the process executor starts a worker per GPU."""
    from hwnas.lab import BenchNode
    from hwnas.nn.fit import trial_device

    assert trial_device("cuda", "auto", "ray") == ("cuda", "auto", ())
    assert trial_device("cuda:1", "bf16", "ray") == ("cuda", "bf16", ())
    with pytest.raises(ValueError, match="precision must be one of"):
        trial_device("cuda", "fp8", "ray")
    with pytest.raises(ValueError, match="no CUDA device here"):
        trial_device("cuda", "auto", "process")
    assert trial_device(None, "auto", "ray") == ("cpu", "fp32", ())   # auto: this host's
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert trial_device("cuda", "auto", "process") == ("cuda:0", "bf16", (0, 1))
    assert trial_device("cuda:1", "fp32", "process") == ("cuda:0", "fp32", (1,))
    assert trial_device("cuda:1", "fp32", "local") == ("cuda:1", "fp32", ())

    gpu_host = BenchNode("10.0.0.1:6379", Path("."), num_cpus=8, num_gpus=4)
    cmd = gpu_host.command({"lab-host:g": 1.0})
    assert "--num-gpus=4" in cmd and "--num-cpus=8" in cmd
    assert "--num-gpus=0" in BenchNode("10.0.0.1:6379", Path(".")).command({})


ENCODERS = ("conformer", "transformer", "lstm", "blstm", "cnn_lstm", "contextnet")


@pytest.mark.parametrize("encoder, decoder, attention, frontend, subsampling, streaming", [
    *[(e, d, "mhsa", "logmel", "conv2d4", e != "blstm")
      for e in ENCODERS for d in ("ctc", "rnnt", "las", "transformer")],
    *[("conformer", "ctc", a, "logmel", "conv2d4", s)
      for a in ("relpos", "local", "linear") for s in (False, True)],
    *[("contextnet", "ctc", None, f, sub, False)
      for f, sub in (("mfcc", "conv2d6"), ("learnable", "conv2d8"), ("logmel", "stack4"))],
])
def test_a_training_step_and_decoding_make_no_tensor_off_the_models_device(
        encoder, decoder, attention, frontend, subsampling, streaming):
    """What makes training run on a GPU, checked without one: under
    ``torch.device("meta")`` every tensor made without naming its device is a
    meta tensor, and any arithmetic between it and the model's (CPU) tensors
    fails. So a forward, the loss, the backward pass and greedy and beam decoding
    of every family run here exactly when they make nothing off the model's
    device (before the fix, 148 of 184 combinations failed)."""
    from hwnas.asr.models.model import build
    from hwnas.asr.train import _beam_one, batch_loss

    from .helpers import small

    arch = small(encoder, decoder, attention, frontend, streaming=streaming,
                 subsampling=subsampling)
    model = build(arch)
    B, T = 2, 96
    x, xl = torch.randn(B, T, model.input_dim), torch.tensor([96, 70])
    y, yl = torch.randint(1, arch.vocab_size, (B, 6)), torch.tensor([6, 4])
    with torch.device("meta"):
        batch_loss(model, arch, (x, xl, y, yl)).backward()
        model.eval()
        with torch.no_grad():
            enc, el = model.encode(x, xl)
            _beam_one(model, arch, enc[:1], int(el[0]), beam=2)
            if decoder == "rnnt":
                from hwnas.asr.decode import rnnt_greedy

                rnnt_greedy(model, enc, el)


def test_the_gpu_check_runs_every_part_on_a_cpu(tmp_path, capsys, monkeypatch):
    """bench/gpu_check.py, prepared for a GPU machine, run on this CPU in its
    smallest form (--dry-run): the pack it reads, the shipped adapter contract
    against the CUDA adapter (which says why it cannot measure here), two
    architectures timed, training in both places its figures come from, and
    the supernet's rank fidelity."""
    from bench import gpu_check

    from .helpers import synthetic_splits

    splits_of, tok = synthetic_splits(utts=8)
    sp = splits_of("logmel", 80)
    gpu_check.write_pack(tmp_path / "pack", sp.train, sp.dev, tok)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["run", "--pack", str(tmp_path / "pack")]) == 2
    assert "no CUDA device here" in capsys.readouterr().err
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["run", "--pack", str(tmp_path / "pack"), "--dry-run",
                           "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert [c["exit"] for c in got["contract"]] == [0, 0]
    assert all("skipped" in c["summary"] for c in got["contract"])
    assert len(got["profile"]) == 2 and all("p50_ms" in r["torch"] for r in got["profile"])
    runs = got["training"]
    assert [r["steps"] for r in runs] == [2, 4, 2, 4]
    assert all(r["dev_cer_at_2"] is not None and r["steps_per_s"] > 0 for r in runs)
    sn = got["supernet"]
    assert sn["supernet"]["steps"] == 2 and sn["supernet"]["device"] == "cpu"
    assert len(sn["archs"]) == 3 and set(sn["kendall_tau"]) == {"inherited", "finetuned",
                                                                  "control"}
    assert all(0 <= r[k] <= 1.5 for r in sn["archs"] for k in ("standalone", "inherited",
                                                                "finetuned", "control"))
