"""`hwnas bench` on models hwnas's exporter did not write: graphs built here
with onnx.helper, third-party models shipped in the onnx wheel, TorchScript
and torch.export archives, the shipped TFLite reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

from cli.main import main
from hwnas.adapters.devicefile import load_device
from hwnas.bench.inputs import resolve
from hwnas.bench.model import ModelError, read_model
from hwnas.bench.run import BenchRequest, bench, prepare_model, save
from hwnas.bench.state import candidates, find_pairs
from hwnas.testing.onnx_models import accumulator, gru_model, lstm_model, matmuls

QUICK = ["--warmup-runs", "2", "--min-runs", "20", "--min-seconds", "0.2"]
ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"


def quick_plan():
    spec = load_device("cpu")
    return spec, spec.plan.replace(warmup_runs=2, min_runs=20, min_seconds=0.2)


# -- reading and inputs ---------------------------------------------------------------------
def test_the_name_rule_pairs_what_other_toolkits_write():
    assert "stateN" in candidates("state") and "hn" in candidates("h0")
    assert "state_out" in candidates("state_in") and "out_cache" in candidates("in_cache")
    assert "new_cache" in candidates("cache") and "x" not in candidates("x")


def test_states_are_paired_by_name_and_shape_and_refused_when_shapes_differ(tmp_path):
    gru = read_model(gru_model(tmp_path / "gru.onnx"))
    assert find_pairs(gru) == {"state": "stateN"}
    assert find_pairs(gru, auto=False) == {}
    lstm = read_model(lstm_model(tmp_path / "lstm.onnx"))
    assert find_pairs(lstm) == {"h0": "hn", "c0": "cn"}
    with pytest.raises(ModelError, match=r"state pair h0=y: shapes differ \(1xbatchx8 in, "
                                         r"timex1xbatchx8 out\)"):
        find_pairs(lstm, {"h0": "y"})
    with pytest.raises(ModelError, match="has no output 'nope'"):
        find_pairs(gru, {"state": "nope"})


def test_open_dimensions_and_integer_inputs_are_named_with_their_flag(tmp_path):
    gru = read_model(gru_model(tmp_path / "gru.onnx"))
    pairs = find_pairs(gru)
    with pytest.raises(ModelError, match=r"input 'input' dimension 0 \('time'\) has no value: "
                                         r"give --shape input=Nx1x16 or --shape time=N"):
        resolve(gru, states=pairs)
    with pytest.raises(ModelError, match=r"input 'sr' \(int64, scalar\) has no value: give "
                                         r"--value sr=N"):
        resolve(gru, shapes=["time=10"], states=pairs)
    feeds = resolve(gru, shapes=["time=10"], values=["sr=16000"], states=pairs)
    assert feeds.values["input"].shape == (10, 1, 16)
    assert feeds.values["sr"].dtype == np.int64 and int(feeds.values["sr"]) == 16000
    assert not feeds.values["state"].any() and "fed back from stateN" in feeds.sources["state"]
    with pytest.raises(ModelError, match=r"--shape input=10x1x8 contradicts the model: "
                                         r"dimension 2 is 16"):
        resolve(gru, shapes=["input=10x1x8"], values=["sr=1"], states=pairs)
    with pytest.raises(ModelError, match="no input or open dimension named 'speed'"):
        resolve(gru, shapes=["speed=3"], states=pairs)


def test_inputs_from_an_npz_file_are_checked_against_the_model(tmp_path):
    acc = read_model(accumulator(tmp_path / "acc.onnx"))
    np.savez(tmp_path / "ok.npz", x=np.ones((1, 4), np.float32))
    np.savez(tmp_path / "bad.npz", x=np.ones((1, 5), np.float32))
    assert resolve(acc, npz=tmp_path / "ok.npz").sources["x"] == "--inputs ok.npz"
    with pytest.raises(ModelError, match="input 'x' has shape 1x5, but dimension 1 is 4"):
        resolve(acc, npz=tmp_path / "bad.npz")


@pytest.mark.parametrize("content,match", [
    (b"", "is empty"),
    (b"hello, I am a text file\n" * 20, "not a model file"),
    (b"PK\x03\x04 broken", "damaged zip archive"),
])
def test_a_file_that_is_not_a_model_gets_one_line(tmp_path, content, match):
    p = tmp_path / "model.onnx"
    p.write_bytes(content)
    with pytest.raises(ModelError, match=match):
        read_model(p)


def test_a_truncated_model_is_refused(tmp_path):
    good = gru_model(tmp_path / "gru.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError, match="not a model file|holds no ONNX graph"):
        read_model(tmp_path / "cut.onnx")
    (tmp_path / "cut.tflite").write_bytes(
        (Path(__file__).parents[1] / "hwnas/adapters/reference/conformer_xs_chunk.tflite"
         ).read_bytes()[:5000])
    with pytest.raises(ModelError, match="not a readable TFLite model"):
        read_model(tmp_path / "cut.tflite")


# -- running --------------------------------------------------------------------------------
def test_the_state_really_is_fed_back(tmp_path):
    """Called as a stream, the accumulator counts: 1, 2, 3 -- the sequence a real
    stream gives, which needs every output fed into the next call."""
    spec, _ = quick_plan()
    np.savez(tmp_path / "ones.npz", x=np.ones((1, 4), np.float32))
    req = BenchRequest([str(accumulator(tmp_path / "acc.onnx"))], inputs=str(tmp_path / "ones.npz"))
    model, run, _ = prepare_model(req.models[0], req, ("onnx",), "cpu")
    assert run.pairs == {"acc_out": "acc"}
    adapter = spec.make()
    call = adapter.caller(adapter.prepare(run))
    assert [float(call()[0][0, 0]) for _ in range(3)] == [1.0, 2.0, 3.0]


def test_a_streaming_gru_is_benched_with_cold_start_rtf_and_a_saved_result(tmp_path):
    spec, plan = quick_plan()
    req = BenchRequest([str(gru_model(tmp_path / "gru.onnx"))], shapes=["time=10"],
                       values=["sr=16000"], audio_ms=100, lookahead_ms=20, ops=True)
    result = bench(spec, req, plan)
    m = result["models"][0]
    assert m["state_pairs"] == [{"input": "state", "output": "stateN"}]
    assert m["cold"]["load_ms"] > 0 and m["cold"]["first_ms"] > 0
    s = m["steady"]
    assert s["p50_ci_lo"] <= s["p50_ms"] <= s["p50_ci_hi"] and s["n"] >= 20
    st = m["streaming"]
    assert st["algorithmic_delay_ms"] == 120
    assert st["emission_delay_ms"] == pytest.approx(120 + s["p50_ms"])
    assert st["rtf"] == pytest.approx(s["p50_ms"] / 100)
    ops = m["ops"]
    assert {r["op_type"] for r in ops["rows"]} == {"GRU", "Squeeze"}
    assert sum(r["share"] for r in ops["rows"]) == pytest.approx(1.0)
    assert ops["blocks"] is None          # not one of hwnas's own graphs
    assert result["device_state"]["before"] is not None and result["runtime"]
    folder = save(result, tmp_path)
    assert folder.parent.name == "benches" and folder.name.endswith("-gru")
    saved = json.loads((folder / "result.json").read_text())
    assert saved["models"][0]["steady"]["p50_ms"] == s["p50_ms"]
    assert (folder / "ops-gru.csv").read_text().startswith("op_type,node,calls,share")


@pytest.mark.parametrize("model", ["light/light_squeezenet.onnx",
                                   "pytorch-converted/test_Conv1d/model.onnx"])
def test_third_party_models_from_the_onnx_wheel(tmp_path, model, capsys):
    code = main(["bench", str(ONNX_DATA / model), "--json", "--workspace", str(tmp_path),
                 *QUICK])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    m = out["models"][0]
    assert m["steady"]["p50_ms"] > 0 and m["state_pairs"] == []
    assert Path(out["folder"], "result.json").is_file()


def test_the_shipped_tflite_reference_runs_on_litert_and_not_on_onnxruntime(tmp_path, capsys):
    ref = Path(__file__).parents[1] / "hwnas/adapters/reference/conformer_xs_chunk.tflite"
    assert main(["bench", str(ref), "--workspace", str(tmp_path)]) == 1
    assert "is tflite; device cpu runs onnx" in capsys.readouterr().err
    assert main(["bench", str(ref), "--device", "cpu-litert", "--json", "--audio-ms", "160",
                 "--workspace", str(tmp_path), *QUICK]) == 0
    m = json.loads(capsys.readouterr().out)["models"][0]
    assert m["format"] == "tflite" and m["streaming"]["rtf"] > 0


def test_torchscript_and_torch_export_archives(tmp_path, capsys):
    import torch

    class Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 8, batch_first=True)

        def forward(self, x, h0, c0):
            y, (hn, cn) = self.lstm(x, (h0, c0))
            return y, hn, cn

    m = Step().eval()
    ex = (torch.randn(1, 5, 4), torch.zeros(1, 1, 8), torch.zeros(1, 1, 8))
    torch.jit.trace(m, ex).save(str(tmp_path / "step.pt"))
    torch.export.save(torch.export.export(m, ex), str(tmp_path / "step.pt2"))
    ts = read_model(tmp_path / "step.pt")
    assert ts.format == "torchscript" and [t.name for t in ts.inputs] == ["x", "h0", "c0"]
    ex_model = read_model(tmp_path / "step.pt2")
    assert ex_model.format == "torch-export" and ex_model.inputs[0].shape == [1, 5, 4]
    args = ["--device", "cpu-torch", "--json", "--workspace", str(tmp_path), *QUICK]
    assert main(["bench", str(tmp_path / "step.pt"), *args]) == 1
    assert "input 'x' has no declared shape: give --shape x=" in capsys.readouterr().err
    shapes = ["--shape", "x=1x5x4", "--shape", "h0=1x1x8", "--shape", "c0=1x1x8",
              "--state", "h0=output_1", "--state", "c0=output_2"]
    assert main(["bench", str(tmp_path / "step.pt"), *shapes, *args]) == 0
    got = json.loads(capsys.readouterr().out)["models"][0]
    assert [p["input"] for p in got["state_pairs"]] == ["h0", "c0"]
    assert main(["bench", str(tmp_path / "step.pt2"), *args]) == 0


def test_bad_input_gets_one_line_and_writes_nothing(tmp_path, capsys):
    gru = gru_model(tmp_path / "gru.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    cases = [([str(junk)], "not a model file"),
             ([str(tmp_path / "missing.onnx")], "no such file"),
             ([str(gru), "--shape", "time=10"], "input 'sr'"),
             ([str(gru), "--value", "sr=1"], "dimension 0 ('time') has no value"),
             ([str(gru), "--shape", "time=10", "--value", "sr=1", "--state", "state=output"],
              "shapes differ"),
             ([str(gru), "--shape", "input=3x1x16x1", "--value", "sr=1"], "contradicts"),
             ([str(gru), "--device", "nope"], "no device 'nope'"),
             ([str(gru), "--seconds", "inf"], "--seconds must be from 0 to 3600"),
             ([str(gru), "--audio-ms", "nan"], "--audio-ms must be a number > 0"),
             ([str(gru), "--lookahead-ms", "20"], "--lookahead-ms needs --audio-ms")]
    for argv, match in cases:
        assert main(["bench", *argv, "--workspace", str(tmp_path)]) == 1, argv
        err = capsys.readouterr().err
        errors = [ln for ln in err.splitlines() if ln.startswith("hwnas: error:")]
        assert len(errors) == 1 and match in errors[0] and "Traceback" not in err, err
    assert not (tmp_path / "benches").exists()


def test_an_op_the_runtime_cannot_run_is_named(tmp_path, capsys):
    node = h.make_node("FancyUnknownOp", ["x"], ["y"], domain="com.example")
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", T.FLOAT, [1, 4])],
                         [h.make_tensor_value_info("y", T.FLOAT, [1, 4])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17),
                                               h.make_opsetid("com.example", 1)])
    onnx.save(model, tmp_path / "odd.onnx")
    assert main(["bench", str(tmp_path / "odd.onnx"), "--workspace", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "does not load on cpu" in err and "FancyUnknownOp" in err
    assert not (tmp_path / "benches").exists()


# -- A vs B -------------------------------------------------------------------------------
def test_a_model_against_itself_and_against_twice_the_work(tmp_path):
    spec, plan = quick_plan()
    one, two = matmuls(tmp_path / "one.onnx", 1), matmuls(tmp_path / "two.onnx", 2)
    result = bench(spec, BenchRequest([str(one), str(one), str(two)], compare_seconds=3), plan)
    c = result["comparison"]
    assert c["rounds"] >= 10 and "interleaved" in c["method"]
    same, double = c["models"][1], c["models"][2]
    # the same model: 1 inside its 95% interval (or the interval within 1% of 1)
    assert same["ratio_ci_lo"] <= 1 <= same["ratio_ci_hi"] or \
        max(abs(same["ratio_ci_lo"] - 1), abs(same["ratio_ci_hi"] - 1)) < 0.01, c
    assert double["ratio_ci_lo"] < double["ratio"] < double["ratio_ci_hi"], c
    assert 1.6 < double["ratio"] < 2.4 and "slower" in double["verdict"], c


@pytest.mark.parametrize("streaming", [False, True])
def test_hwnas_own_export_has_its_time_attributed_to_blocks(tmp_path, streaming):
    """Both graphs name each node's layer in its scope: a chunk graph calls each
    part's forward_chunk through the module (nn.common.chunk_call)."""
    from hwnas.export import export
    from tests.helpers import small

    arch = small("conformer", "ctc", "mhsa", "logmel", streaming=streaming, num_layers=2)
    art = export(arch, "onnx", tmp_path, check=False)
    spec, plan = quick_plan()
    result = bench(spec, BenchRequest([art.path], ops=True), plan)
    ops = result["models"][0]["ops"]
    blocks = [b["block"] for b in ops["blocks"]]
    assert blocks[0] == "subsampling"
    for i in (0, 1):
        for part in ("attention", "convolution", "feed-forward"):
            assert f"encoder layer {i}: {part}" in blocks
    assert blocks.index("encoder layer 0: attention") < blocks.index("encoder layer 1: attention")
    assert sum(b["share"] for b in ops["blocks"]) == pytest.approx(1.0)
    # fused nodes join the block before them; a chunk graph's cache reshapes at the
    # graph's own level are all that runs unscoped
    other = sum(b["share"] for b in ops["blocks"] if b["block"] == "other")
    assert other < (0.05 if streaming else 1e-9)


@pytest.mark.slow
def test_a_converted_streaming_tflite_is_fed_its_caches(tflite_model, tmp_path, capsys):
    """A .tflite converted here: the converter names outputs output_K, and the
    export's record beside it says which cache each one is."""
    model = read_model(tflite_model.path)
    assert model.format == "tflite" and model.outputs[0].name == "output_0"
    assert main(["bench", tflite_model.path, "--device", "cpu-litert", "--json",
                 "--workspace", str(tmp_path), *QUICK]) == 0
    m = json.loads(capsys.readouterr().out)["models"][0]
    caches = [i for i in tflite_model.inputs if i["name"].startswith("cache")]
    assert caches and {p["input"] for p in m["state_pairs"]} >= {c["name"] for c in caches}
    assert m["steady"]["p50_ms"] > 0


def test_block_names_of_the_recognisers_exports():
    from hwnas.asr.blocks import block_of

    assert block_of("/encoder/layers.3/att/MatMul") == "encoder layer 3: attention"
    assert block_of("/encoder/layers.3/ff2/net/net.1/MatMul") == "encoder layer 3: feed-forward"
    assert block_of("/subsampling/conv/Conv") == "subsampling"
    # a chunk graph: the exporter numbers a part's repeated scopes in call order
    assert block_of("/conv_12/Conv") == "encoder layer 12: convolution"
    assert block_of("/ff1/net/net.1_8/MatMul/MatMulAddFusion") == "encoder layer 8: feed-forward"
    assert block_of("/ff1/net/net.1/MatMul") == "encoder layer 0: feed-forward"
    # one multi-layer LSTM module: its layers are its LSTM ops
    assert block_of("/lstm/LSTM_3") == "encoder layer 3: recurrent"
    assert block_of("/encoder/lstm/LSTM") == "encoder layer 0: recurrent"
    assert block_of("/lstm/Slice_10/GatherSliceToSplitFusion") == "encoder: recurrent state"
    assert block_of("/ctc/MatMul") == "decoder" and block_of("Transpose_token_7") is None


def test_profile_ops_gives_each_new_architecture_its_blocks(tmp_path, capsys):
    args = ["profile", "--device", "cpu", "--n", "1", "--ops", "--min-seconds", "0.1",
            "--workspace", str(tmp_path)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (table,) = out["ops"]
    assert table["arch_id"] == out["rows"][0]["arch_id"]
    assert sum(b["share"] for b in table["blocks"]) == pytest.approx(1.0)
    assert any(b["block"].startswith("encoder") for b in table["blocks"])
    # a phone's per-block times are not ONNX Runtime's on this host: refused before any work
    assert main(["profile", "--device", "pixel6", "--n", "1", "--ops",
                 "--workspace", str(tmp_path / "p")]) == 1
    assert "not this host's CPU with ONNX Runtime" in capsys.readouterr().err
    assert not (tmp_path / "p" / "profiles").exists()


def edgetpu_stand_in(src: Path, out: Path) -> Path:
    """A model shaped as the Edge TPU compiler writes one, made without the
    compiler: the ops replaced by the one custom op it writes (the mapped ops
    run inside it), inputs, outputs and signature kept. LiteRT reads what it
    declares; only libedgetpu could run it. The flatbuffer schema is
    TensorFlow's generated module, loaded on its own (no TensorFlow import)."""
    import importlib.util

    import flatbuffers

    tf = Path(importlib.util.find_spec("tensorflow").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location(
        "tflite_schema", tf / "lite" / "python" / "schema_py_generated.py")
    s = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(s)
    m = s.ModelT.InitFromObj(s.Model.GetRootAsModel(src.read_bytes(), 0))
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.CUSTOM
    code.customCode = "edgetpu-custom-op"
    m.operatorCodes = [code]
    graph = m.subgraphs[0]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, list(graph.inputs), list(graph.outputs)
    graph.operators = [op]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    out.write_bytes(b.Output())
    return out


def test_an_edge_tpu_model_is_read_run_only_there_and_its_ops_are_the_compilers_mapping(
        tmp_path, capsys):
    """A compiled Edge TPU model is format edgetpu: refused on a CPU, a plain
    .tflite refused on the Edge TPU with the compile line, and on an Edge TPU
    device without libedgetpu one line naming the runtime (running a compiled
    model needs no compiler). Its --ops table is the compiler's mapping from
    the log beside it (a captured compiler log)."""
    from rich.console import Console

    from cli.bench import _print_ops
    from hwnas.bench.ops import edgetpu_mapping
    from hwnas.export.edgetpu import parse_compiler_log

    ref = Path(__file__).parents[1] / "hwnas/adapters/reference/conformer_xs_chunk.tflite"
    compiled = edgetpu_stand_in(ref, tmp_path / "model_int8_edgetpu.tflite")
    model = read_model(compiled)
    assert model.format == "edgetpu" and model.inputs[0].name == "features"
    assert read_model(ref).format == "tflite"
    assert main(["bench", str(compiled), "--device", "cpu-litert"]) == 1
    assert "is edgetpu; device cpu-litert runs tflite, tflite-dynamic, tflite-int8 (an Edge " \
           "TPU device runs it" in capsys.readouterr().err
    with pytest.raises(ModelError, match=r"runs edgetpu \(compile a full-integer .tflite for "
                                         r"it: edgetpu_compiler -s"):
        prepare_model(str(ref), BenchRequest([str(ref)]), ("edgetpu",), "edge-tpu")
    prepare_model(str(compiled), BenchRequest([str(compiled)]), ("edgetpu",), "edge-tpu")
    assert main(["bench", str(compiled), "--device", "edge-tpu", "--ops",
                 "--workspace", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert "libedgetpu.so.1 cannot be loaded" in err and "compiler" not in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "benches").exists()

    assert "no compiler log beside the model" in edgetpu_mapping(compiled)["note"]
    log = (Path(__file__).parent / "fixtures/edgetpu/partial.log").read_text()
    (tmp_path / "model_int8_edgetpu.log").write_text(log)
    table = edgetpu_mapping(compiled)
    report = parse_compiler_log(log)
    assert (table["tpu_ops"], table["cpu_ops"]) == (261, 6) == (report.tpu_ops, report.cpu_ops)
    assert [(r["op_type"], r["calls"], r["where"]) for r in table["rows"]][:3] == [
        ("DEQUANTIZE", 2, "cpu"), ("DEPTHWISE_CONV_2D", 80, "edgetpu"), ("LOGISTIC", 1, "cpu")]
    assert sum(r["calls"] for r in table["rows"] if r["where"] == "edgetpu") == 261
    con = Console(record=True, width=100)
    _print_ops(con, table)
    shown = con.export_text()
    assert "261 on the Edge TPU, 6 on the CPU" in shown and "FULLY_CONNECTED" in shown
