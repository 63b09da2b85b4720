"""python -m h4w_core.tools.cpu_runtimes: the FLOP count it divides by, the peak it measures, a run."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from h4w_core.tools import cpu_runtimes


def _tiny_network(path) -> float:
    """image (batch, 3, 512, 384) -> Conv 3->4 k3 pad1 -> ConvTranspose 4->2 k2 s2 -> MatMul by (768, 5);
    returns its multiply-adds x 2 at batch 1, counted by hand."""
    rng = np.random.default_rng(0)
    conv_w = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "conv_w")
    deconv_w = numpy_helper.from_array(rng.normal(size=(4, 2, 2, 2)).astype(np.float32), "deconv_w")
    mat = numpy_helper.from_array(rng.normal(size=(768, 5)).astype(np.float32), "mat")
    nodes = [
        helper.make_node("Conv", ["image", "conv_w"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["a", "deconv_w"], ["b"], strides=[2, 2]),
        helper.make_node("MatMul", ["b", "mat"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 512, 384])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], [conv_w, deconv_w, mat])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    conv = 2 * (4 * 512 * 384) * (3 * 9)  # out elements x in channels x kernel
    deconv = 2 * (4 * 512 * 384) * (2 * 4)  # in elements x out channels x kernel
    matmul = 2 * (2 * 1024 * 5) * 768  # out elements x inner size
    return (conv + deconv + matmul) / 1e9


def test_flops_are_counted_from_the_graph(tmp_path):
    path = tmp_path / "tiny.onnx"
    expected = _tiny_network(path)
    assert cpu_runtimes.network_gflop(path) == pytest.approx(expected, rel=1e-12)


def test_fma_peak_is_measured_where_a_compiler_is():
    peak = cpu_runtimes.measure_fma_peak(threads=1, wide=False, iterations=2_000_000)
    if peak is None:
        pytest.skip("no C compiler here")
    assert 1.0 < peak < 10_000.0  # GFLOP/s of one core: plausible, whatever the machine


def test_a_run_reports_onnxruntime_against_the_given_peak(tmp_path, capsys):
    path = tmp_path / "tiny.onnx"
    gflop = _tiny_network(path)
    out = tmp_path / "runtimes.json"
    assert cpu_runtimes.main(["--onnx", str(path), "--repeats", "2", "--threads", "1", "--peak-gflops", "100",
                              "--json", str(out)]) == 0
    records = {r["runtime"]: r for r in json.loads(out.read_text())}
    ort = records["onnxruntime"]
    assert ort["gflop"] == round(gflop, 2) and ort["max_abs_diff_vs_onnxruntime"] == 0.0
    assert ort["fraction_of_avx2_peak"] == pytest.approx(ort["gflops"] / 100.0, abs=2e-3)
    assert "p50_ms" in capsys.readouterr().out


@pytest.mark.parametrize("flags", [["-mavx2", "-mfma"], ["-mavx512f", "-DWIDE"]])
def test_the_peak_loop_keeps_twelve_independent_fma_chains(tmp_path, flags):
    """Twelve chains the compiler could merge into one would make the loop latency-bound and its
    count of 12 FMAs per pass a wrong peak: the assembly must hold 12 FMA instructions."""
    import shutil
    import subprocess

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler here")
    source = tmp_path / "peak.c"
    source.write_text(cpu_runtimes._PEAK_SOURCE)
    asm = subprocess.run([compiler, "-O2", *flags, "-S", "-o", "-", str(source)], capture_output=True, text=True, check=True).stdout
    assert asm.count("vfmadd") >= 12
