from __future__ import annotations

import os
from pathlib import Path

import pytest

from hwnas.asr import ArchConfig, preset
from hwnas.export import ExportError, export
from hwnas.export.edgetpu import compile_edgetpu, parse_compiler_log
from hwnas.export.tflite import CACHE_ENV, ConversionCache
from tests.helpers import EDGETPU_FIXTURES as FIXTURES
from tests.helpers import fake_compiler, small

ONNX_CASES = [
    small("conformer", "ctc", "relpos", "logmel", streaming=True),
    small("conformer", "rnnt", "local", "mfcc"),
    small("transformer", "transformer", "linear", "learnable", streaming=True),
    small("transformer", "las", "mhsa", "logmel"),
    small("lstm", "rnnt", None, "logmel", streaming=True),
    small("blstm", "las", None, "mfcc"),
    small("cnn_lstm", "ctc", None, "logmel", streaming=True, lookahead=1),
    small("contextnet", "transformer", None, "learnable", streaming=True),
]


@pytest.mark.parametrize("arch", ONNX_CASES, ids=[f"{a.encoder}-{a.decoder}-{a.streaming}"
                                                  for a in ONNX_CASES])
def test_onnx_matches_pytorch(arch, tmp_path):
    art = export(arch, "onnx", tmp_path)
    assert Path(art.path).is_file() and art.size_bytes > 0
    assert art.parity["max_abs_diff"] <= 1e-4
    assert art.parity["token_agreement"] == 1.0
    assert (tmp_path / arch.id / "arch.json").is_file()


def test_unwritable_output_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write"):
        export(preset("conformer_xs"), "onnx", blocker / "sub")


def test_parse_fully_mapped_log():
    rep = parse_compiler_log((FIXTURES / "all_mapped.log").read_text())
    assert rep.compiled and rep.version == "16.0.384591198"
    assert rep.total_ops == 246 and rep.tpu_ops == 246 and rep.cpu_ops == 0
    assert rep.subgraphs == 1
    assert rep.on_chip_bytes == round(5.90 * 1024 ** 2)
    assert rep.off_chip_bytes == round(41.75 * 1024)
    assert {r.op for r in rep.operators} >= {"CONV_2D", "LOGISTIC"}


def test_parse_partially_mapped_log():
    rep = parse_compiler_log((FIXTURES / "partial.log").read_text())
    assert rep.compiled and rep.total_ops == 267
    assert (rep.tpu_ops, rep.cpu_ops) == (261, 6)
    cpu_rows = [r for r in rep.operators if not r.on_tpu]
    assert {r.op for r in cpu_rows} == {"DEQUANTIZE", "LOGISTIC", "CONCATENATION",
                                        "FULLY_CONNECTED"}
    assert sum(r.count for r in cpu_rows) == 6
    assert rep.off_chip_bytes == 0


def test_parse_failed_log():
    rep = parse_compiler_log((FIXTURES / "not_quantized.log").read_text())
    assert not rep.compiled
    assert "failed" in rep.error.lower()


def test_missing_compiler_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    with pytest.raises(ExportError, match="edgetpu_compiler not found on PATH") as e:
        compile_edgetpu(model, tmp_path / "out")
    assert "\n" not in str(e.value)


def test_compile_with_compiler_on_path(tmp_path, monkeypatch):
    fake_compiler(tmp_path, FIXTURES / "partial.log")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    model = tmp_path / "model_int8.tflite"
    model.write_bytes(b"tflite")
    out, rep = compile_edgetpu(model, tmp_path / "out")
    assert out.name == "model_int8_edgetpu.tflite" and out.is_file()
    assert (rep.tpu_ops, rep.cpu_ops) == (261, 6)


def test_compiler_failure_reports_its_reason(tmp_path, monkeypatch):
    fake_compiler(tmp_path, FIXTURES / "not_quantized.log", rc=1)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    model = tmp_path / "model_int8.tflite"
    model.write_bytes(b"tflite")
    with pytest.raises(ExportError, match="Compilation failed"):
        compile_edgetpu(model, tmp_path / "out")


# --- TFLite (slow: each conversion runs onnx2tf and the TF converter) -------------
STREAM_CONFORMER = ArchConfig(
    frontend="logmel", n_filters=80, subsampling="conv2d4", encoder="conformer",
    streaming=True, num_layers=2, d_model=144, attention="mhsa", heads=4, ffn_ratio=4,
    conv_kernel=15, decoder="ctc", chunk_ms=320, left_chunks=2, lookahead=0, vocab_size=32)


def train_briefly(arch: ArchConfig, path: Path, steps: int = 150) -> Path:
    """Teach a model a frame-labelling task (which group of filterbank
    channels is loudest) so its logits make real decisions; a random
    network's near-tied logits make token agreement meaningless."""
    import torch

    from hwnas.asr.models import build
    from hwnas.nn.audio import synthetic_audio
    from hwnas.nn.frontend import FeatureExtractor

    torch.manual_seed(0)
    model = build(arch)
    fx = FeatureExtractor(arch.frontend, arch.n_filters)
    feats = torch.cat([fx(synthetic_audio(4.0, 100 + s)) for s in range(8)])
    f = arch.subsampling_factor
    T = feats.shape[1] // f * f
    feats = feats[:, :T]
    frames = feats.reshape(8, T // f, f, -1).mean(dim=2)
    groups = torch.nn.functional.adaptive_avg_pool1d(frames, arch.vocab_size)
    labels = groups.argmax(-1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(steps):
        logits = model(feats)["ctc_logits"]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, arch.vocab_size),
                                                 labels.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), path)
    return path


@pytest.mark.slow
def test_streaming_conformer_tflite_formats(tmp_path):
    weights = train_briefly(STREAM_CONFORMER, tmp_path / "w.pt")
    fp32 = export(STREAM_CONFORMER, "tflite", tmp_path, weights=weights)
    assert fp32.parity["max_abs_diff"] <= 1e-4
    for fmt in ("tflite-dynamic", "tflite-int8"):
        art = export(STREAM_CONFORMER, fmt, tmp_path, weights=weights)  # gated at 95%
        assert art.parity["token_agreement"] >= 0.95, art.parity
        assert not [n for n in art.notes if "random weights" in n]
    from hwnas.export.tflite import TFLiteRunner

    runner = TFLiteRunner(Path(art.path), art.outputs)
    assert all(d["dtype"].__name__ == "int8" for d in runner.inputs.values())
    assert all(d["dtype"].__name__ == "int8" for d in runner.outputs.values())


@pytest.mark.slow
def test_random_weights_int8_is_reported_not_gated(tmp_path):
    arch = small("conformer", "ctc", "mhsa", "logmel", streaming=True)
    art = export(arch, "tflite-int8", tmp_path)
    assert 0.0 <= art.parity["token_agreement"] <= 1.0
    assert art.parity["logits_sqnr_db"] > 0
    assert any("random weights" in n for n in art.notes)


@pytest.mark.slow
def test_full_context_lstm_rnnt_tflite_fp32(tmp_path):
    arch = small("lstm", "rnnt", None, "mfcc")
    art = export(arch, "tflite", tmp_path)
    assert art.parity["max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_converter_crash_becomes_an_error(tmp_path, monkeypatch):
    # A converter that dies by a signal (the TF converter segfaults on some
    # graphs) must fail one export with the reason, not the caller. Here the
    # real worker is killed by a 1-second CPU limit set in the child only.
    import resource
    import subprocess

    real_run = subprocess.run

    def run_with_cpu_limit(*args, **kwargs):
        kwargs["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_CPU, (1, 1))
        return real_run(*args, **kwargs)

    arch = small("lstm", "ctc", None, "logmel", streaming=True)
    monkeypatch.delenv(CACHE_ENV)   # the converter itself must run
    monkeypatch.setattr("hwnas.export.tflite.subprocess.run", run_with_cpu_limit)
    with pytest.raises(ExportError, match=r"tflite: the TFLite converter crashed \(SIG"):
        export(arch, "tflite", tmp_path)
    monkeypatch.undo()
    assert export(arch, "onnx", tmp_path).parity["max_abs_diff"] <= 1e-4


@pytest.mark.slow
def test_lstm_full_integer_via_unrolled_rnn(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV)   # the converter itself must run
    arch = small("lstm", "rnnt", None, "logmel", streaming=True)
    art = export(arch, "tflite-int8", tmp_path)
    assert (tmp_path / arch.id / "saved_model_unrolled").is_dir()
    assert art.parity["logits_sqnr_db"] > 10


@pytest.mark.parametrize("name, want", [
    # (file, (compiled, version, total, tpu, cpu, subgraphs, on-chip, off-chip, rows))
    ("pasted_partial_no_header_line.log", (True, None, 84, 78, 6, 1, None, None, 5)),
    ("v2_available_wording.log",
     (True, "2.0.267685300", 64, 63, 1, 1, round(5.66 * 1024 ** 2), 0, 3)),
    ("zero_subgraphs_all_cpu.log", (True, "16.0.384591198", 157, 0, 157, 0, 0, 0, 2)),
    ("summary_only_see_log.log", (True, "15.0.340273435", 165, 117, 48, 1,
                                  round(3.21 * 1024 ** 2), 0, 0)),
    ("aligned_params_headerless.log", (True, "16.0.384591198", 96, 84, 12, 2,
                                       round(1.52 * 1024 ** 2), 512 * 1024, 4)),
])
def test_parse_compiler_variants_seen_in_the_wild(name, want):
    rep = parse_compiler_log((FIXTURES / name).read_text())
    got = (rep.compiled, rep.version, rep.total_ops, rep.tpu_ops, rep.cpu_ops, rep.subgraphs,
           rep.on_chip_bytes, rep.off_chip_bytes, len(rep.operators))
    assert got == want
    assert rep.error is None   # a partial mapping is compiled, never an "error"
    if name == "aligned_params_headerless.log":   # the others' tables are excerpts
        assert sum(r.count for r in rep.operators if not r.on_tpu) == rep.cpu_ops


def test_a_conversion_is_copied_from_the_cache_and_a_damaged_entry_is_set_aside(
        tflite_model, tmp_path):
    """The session's cache holds the shared fixture's conversion: the same graph
    exported again is copied (and still checked against PyTorch); an entry whose
    bytes no longer match its digest is renamed aside, not used and not deleted."""
    arch = small("conformer", "ctc", "mhsa", "logmel", streaming=True, num_layers=1)
    art = export(arch, "tflite", tmp_path / "again")
    [note] = [n for n in art.notes if n.startswith("converted earlier")]
    assert Path(art.path).read_bytes() == Path(tflite_model.path).read_bytes()
    assert art.parity["max_abs_diff"] <= 1e-4
    entry = Path(note.split("copied from ")[1])
    entry.write_bytes(b"not the model it was")
    cache = ConversionCache(entry.parent, entry.name.removesuffix(".tflite"))
    assert not cache.fetch(tmp_path / "out.tflite")
    assert not entry.exists() and len(list(entry.parent.glob(entry.name + ".bad-*"))) == 1
    assert not (tmp_path / "out.tflite").exists()
