"""Parsers of device tool output, on captured text."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwnas.adapters.parsers import (
    ParseError,
    parse_benchmark_model,
    parse_freqs,
    parse_getprop,
    parse_thermal,
    split_status,
)

FIX = Path(__file__).parent / "fixtures" / "benchmark_model"


def load(name: str) -> dict:
    return parse_benchmark_model((FIX / name).read_text())


def test_tf24_android_peak_memory_line():
    r = load("tf2.4_android_yolov5s.txt")
    assert r["format"] == "2.3-2.4"
    assert r["inference_avg_us"] == 249684 and r["init_us"] == 16242
    assert r["first_us"] == 360262 and r["warmup_avg_us"] == 304586
    assert r["runs"] == {"count": 50, "first": 249042, "curr": 250889, "min": 247067,
                         "max": 254474, "avg": 249684, "std": 1442}
    assert "warmup" not in r
    assert r["memory"] == {"init_mb": 4.92969, "overall_mb": 138.809}


def test_scientific_notation_and_op_profiling_tables():
    r = load("tf2.x_riscv_mobilenet_opprofiling.txt")
    assert r["format"] == "2.5-2.12"
    assert r["inference_avg_us"] == pytest.approx(2.95034e6)
    assert r["runs"]["count"] == 50 and r["runs"]["avg"] == pytest.approx(2.95034e6)
    assert r["warmup"] == {"count": 1, "curr": 3512391}
    assert r["memory"] == {"init_mb": 4.21094, "overall_mb": 46.0859}
    assert r["model_mb"] == pytest.approx(16.9008)


def test_info_prefix_with_percentiles():
    r = load("tf2.1x_info_percentiles_am62x.txt")
    assert r["format"] == "2.13+"
    runs = r["runs"]
    assert runs["count"] == 50 and runs["median"] == 1239807 and runs["p95"] == 1247415
    assert runs["p5"] == 1238753 and runs["std"] == 2565
    assert r["warmup"]["count"] == 1
    assert r["memory"]["overall_mb"] == pytest.approx(109.832)


def test_xnnpack_delegation_and_periodic_peak_memory():
    r = load("tf2.1x_info_xnnpack_peak.txt")
    assert r["delegate"] == {"nodes": 58, "total": 58, "name": "TfLiteXNNPackDelegate"}
    assert r["runs"]["count"] == 1061 and r["warmup"]["count"] == 9
    assert r["memory"] == {"peak_mb": pytest.approx(93.2383)}
    g = load("tf2.1x_gpu_delegate.txt")
    assert g["delegate"]["name"] == "TfLiteGpuDelegateV2"
    assert g["init_us"] == 842225 and g["runs"]["avg"] == pytest.approx(35134.9)


def test_logcat_prefix():
    r = load("logcat_tflite.txt")
    assert r["inference_avg_us"] == 145528 and r["runs"]["median"] == 141253
    assert r["memory"]["overall_mb"] == pytest.approx(73.4102)


def test_failed_run_reports_the_tools_error():
    text = ("INFO: STARTING!\nINFO: Graph: [/data/local/tmp/x.tflite]\n"
            "ERROR: Can not open /data/local/tmp/x.tflite\n"
            "ERROR: Could not build model from the provided pointer.\n")
    with pytest.raises(ParseError, match="Could not build model"):
        parse_benchmark_model(text)
    with pytest.raises(ParseError, match="inaccessible or not found"):
        parse_benchmark_model("/system/bin/sh: /data/local/tmp/bm: inaccessible or not found\n")
    with pytest.raises(ParseError, match="no output"):
        parse_benchmark_model("")


def test_thermal_freqs_props_status():
    t = parse_thermal("BIG\nMID\nLITTLE\nbattery\n", "61000\n35000\nerr\n31\n")
    assert t == {"BIG": 61.0, "MID": 35.0, "battery": 31.0}
    assert parse_freqs("1803000\n2802000\n") == [1803000, 2802000]
    assert parse_getprop("[ro.product.model]: [Pixel 6]\n[x]: []\n") == {
        "ro.product.model": "Pixel 6", "x": ""}
    assert split_status("hello\nhwnas-exit:0\n", "hwnas-exit:") == ("hello\n", 0)
    assert split_status("oops\nhwnas-exit:127", "hwnas-exit:") == ("oops\n", 127)
    assert split_status("cut off", "hwnas-exit:") == ("cut off", None)


@pytest.mark.parametrize("paste", [
    lambda ln: "    " + ln,                                   # indented in an issue
    lambda ln: "> " + ln,                                     # quoted
    lambda ln: "2024-05-01T10:00:00.1234567Z " + ln,          # a CI runner's log
    lambda ln: "\t> " + ln,
])
@pytest.mark.parametrize("name", ["tf2.1x_info_percentiles_am62x.txt", "tf2.4_android_yolov5s.txt",
                                  "tf2.1x_info_xnnpack_peak.txt"])
def test_pasted_logs_give_the_same_numbers(name, paste):
    text = (FIX / name).read_text()
    pasted = "\n".join(paste(ln) for ln in text.splitlines())
    assert parse_benchmark_model(pasted) == parse_benchmark_model(text)


# benchmark_model --enable_op_profiling=true: the regular runs' "Run Order" table in
# its two layouts (tab-separated with [start] up to 2.12; space-aligned, INFO:, 2.13+)
OPS_TABS = (
    "Operator-wise Profiling Info for Regular Benchmark Runs:\n"
    "============================== Run Order ==============================\n"
    "\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]"
    "\t  [mem KB]\t[times called]\t[Name]\n"
    "\t                 CONV_2D\t            0.000\t    0.410\t    0.400\t 40.000%\t 40.000%"
    "\t     0.000\t        1\t[enc/sub/conv1]:0\n"
    "\t         FULLY_CONNECTED\t            0.400\t    0.120\t    0.100\t 60.000%\t100.000%"
    "\t     0.000\t        6\t[enc/layers.0/ff1/dense, enc/layers.0/ff1/bias]:1\n"
    "\n"
    "============================== Top by Computation Time ==============================\n"
    "\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]"
    "\t  [mem KB]\t[times called]\t[Name]\n"
    "\t         FULLY_CONNECTED\t            0.400\t    0.120\t    0.100\t 60.000%\t 60.000%"
    "\t     0.000\t        6\t[enc/layers.0/ff1/dense]:1\n")
OPS_SPACES = (
    "INFO: Operator-wise Profiling Info for Regular Benchmark Runs:\n"
    "============================== Run Order ==============================\n"
    "                                     [node type]          [first]        [avg ms]"
    "            [%]          [cdf%]          [mem KB]        [times called]  [Name]\n"
    "                                        QUANTIZE            0.050           0.050"
    "         5.000%          5.000%             0.000                1       [tfl.quantize]:0\n"
    "                   Convolution (NHWC, QC8) GEMM            0.100           0.095"
    "        95.000%        100.000%             0.000               10       "
    "Delegate/Convolution (NHWC, QC8) GEMM:2\n"
    "\n"
    "============================== Top by Computation Time ==============================\n")


def test_benchmark_models_operator_table_in_both_layouts():
    from hwnas.adapters.parsers import parse_op_profile

    old = parse_op_profile(OPS_TABS)
    assert [r["op_type"] for r in old] == ["CONV_2D", "FULLY_CONNECTED"]
    assert old[1]["node"] == "enc/layers.0/ff1/dense, enc/layers.0/ff1/bias"
    assert old[1]["calls"] == 6 and old[1]["ms_per_run"] == pytest.approx(0.6)
    assert old[0]["share"] == pytest.approx(0.4)
    new = parse_op_profile(OPS_SPACES)
    assert [r["op_type"] for r in new] == ["QUANTIZE", "Convolution (NHWC, QC8) GEMM"]
    assert new[1]["node"] == "Delegate/Convolution (NHWC, QC8) GEMM"
    assert new[1]["ms_per_call"] == pytest.approx(0.095) and new[1]["calls"] == 10
    assert parse_op_profile("INFO: count=50 first=1 curr=1 min=1 max=2 avg=1.2 std=0") == []
