"""python -m h4w_core.tools.cpu_runtimes: how close fp32 CPU runtimes get to this CPU's peak.

The network alone at batch 1 (the exported ONNX), calls interleaved, under ONNX Runtime (the
`onnxruntime` backend) and, when the ``openvino`` package is importable, OpenVINO's CPU plugin
(f32 inference precision: it would pick bf16 on CPUs that have it). For each: p50 ms, GFLOP/s
from the graph's own multiply-add count, the fraction of the fp32 FMA peak, and the largest
output difference from ONNX Runtime (parity). The peak is measured by a small FMA loop built
with the system C compiler (AVX2 and, where the CPU has it, AVX-512), or given as --peak-gflops.

Why: a new runtime (OpenVINO) is only worth a dependency when it beats ONNX Runtime clearly
(15 % or more) at equal parity; this prints the evidence. It asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from h4w_core.tools.report import emit, format_table

# An FMA loop of 12 independent accumulators per thread (enough to hide FMA latency), one thread per core.
_PEAK_SOURCE = r"""
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(WIDE)
typedef __m512 vec;
#define FMA _mm512_fmadd_ps
#define SET1 _mm512_set1_ps
#define LANES 16
#else
typedef __m256 vec;
#define FMA _mm256_fmadd_ps
#define SET1 _mm256_set1_ps
#define LANES 8
#endif
static volatile float sink;
static void *work(void *arg) {
  long n = *(long *)arg;
  vec a = SET1(1.0000001f), b = SET1(0.9999999f);
  /* distinct starting values: twelve identical chains would be merged into one by the compiler */
  vec c0 = SET1(0.0f), c1 = SET1(1.0f), c2 = SET1(2.0f), c3 = SET1(3.0f), c4 = SET1(4.0f), c5 = SET1(5.0f);
  vec c6 = SET1(6.0f), c7 = SET1(7.0f), c8 = SET1(8.0f), c9 = SET1(9.0f), c10 = SET1(10.0f), c11 = SET1(11.0f);
  for (long i = 0; i < n; i++) {
    c0 = FMA(a, b, c0); c1 = FMA(a, b, c1); c2 = FMA(a, b, c2); c3 = FMA(a, b, c3);
    c4 = FMA(a, b, c4); c5 = FMA(a, b, c5); c6 = FMA(a, b, c6); c7 = FMA(a, b, c7);
    c8 = FMA(a, b, c8); c9 = FMA(a, b, c9); c10 = FMA(a, b, c10); c11 = FMA(a, b, c11);
  }
  float out[LANES];
  vec s = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
  memcpy(out, &s, sizeof out);
  sink = out[0];
  return 0;
}
int main(int argc, char **argv) {
  int threads = atoi(argv[1]);
  long n = atol(argv[2]);
  pthread_t th[256];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < threads; i++) pthread_create(&th[i], 0, work, &n);
  for (int i = 0; i < threads; i++) pthread_join(th[i], 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  printf("%f\n", (double)threads * n * 12 * LANES * 2 / s / 1e9);
  return 0;
}
"""


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def measure_fma_peak(threads: int, wide: bool, iterations: int = 40_000_000) -> float | None:
    """fp32 GFLOP/s of the FMA loop on ``threads`` threads (AVX-512 when ``wide``, else AVX2);
    None without a C compiler or when it does not build."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory(prefix="h4w_peak_") as tmp:
        source, binary = Path(tmp) / "peak.c", Path(tmp) / "peak"
        source.write_text(_PEAK_SOURCE)
        flags = ["-mavx512f", "-DWIDE"] if wide else ["-mavx2", "-mfma"]
        built = subprocess.run([compiler, "-O2", *flags, "-o", str(binary), str(source), "-lpthread"], capture_output=True)
        if built.returncode != 0:
            return None
        runs = [float(subprocess.run([str(binary), str(threads), str(iterations // (2 if wide else 1))],
                                     capture_output=True, text=True, check=True).stdout) for _ in range(3)]
    return max(runs)


def network_gflop(onnx_path: Path) -> float:
    """Multiply-adds x 2 of Conv, ConvTranspose, MatMul and Gemm at batch 1 (onnx shape inference)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(onnx_path))
    for value in model.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.ClearField("dim_param")
                dim.dim_value = 1
    model = shape_inference.infer_shapes(model, data_prop=True)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    shapes.update({t.name: list(numpy_helper.to_array(t).shape) for t in model.graph.initializer})
    flops = 0.0
    for node in model.graph.node:
        if node.op_type == "Conv":  # out elements x (in channels per group x kernel)
            weight = shapes[node.input[1]]
            flops += 2.0 * np.prod(shapes[node.output[0]]) * np.prod(weight[1:])
        elif node.op_type == "ConvTranspose":  # in elements x (out channels per group x kernel)
            weight = shapes[node.input[1]]
            flops += 2.0 * np.prod(shapes[node.input[0]]) * np.prod(weight[1:])
        elif node.op_type == "MatMul":
            flops += 2.0 * np.prod(shapes[node.output[0]]) * shapes[node.input[0]][-1]
        elif node.op_type == "Gemm":  # A is (M, K), or (K, M) with transA
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            flops += 2.0 * np.prod(shapes[node.output[0]]) * shapes[node.input[0]][0 if trans_a else -1]
    return flops / 1e9


def make_runtimes(onnx_path: Path, threads: int) -> dict:
    """name -> (callable image -> list of outputs in ONNX output order)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    runtimes = {"onnxruntime": lambda x: session.run(None, {session.get_inputs()[0].name: x})}
    try:
        import openvino as ov
    except ImportError:
        print("openvino is not installed (pip install openvino): ONNX Runtime only", file=sys.stderr)
        return runtimes
    compiled = ov.Core().compile_model(str(onnx_path), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    outputs = [compiled.output(n) for n in names]

    def openvino_run(x):
        result = request.infer({0: x})
        return [result[o] for o in outputs]

    runtimes["openvino"] = openvino_run
    return runtimes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m h4w_core.tools.cpu_runtimes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="Hand4Whole checkpoint (stand-in when omitted: same layers and FLOPs)")
    parser.add_argument("--onnx", help="an exported network instead of exporting the checkpoint")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--peak-gflops", type=float, help="the CPU's fp32 peak, instead of measuring it")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from h4w_core.backends.ort_runner import resolve_onnx
    from h4w_core.model.assets import resolve_assets

    onnx_path = Path(args.onnx) if args.onnx else resolve_onnx(resolve_assets(args.checkpoint, None).checkpoint)
    gflop = network_gflop(onnx_path)
    flags = cpu_flags()
    peaks = {"avx2": args.peak_gflops} if args.peak_gflops else {
        "avx2": measure_fma_peak(args.threads, wide=False) if "avx2" in flags else None,
        "avx512": measure_fma_peak(args.threads, wide=True) if "avx512f" in flags else None}
    runtimes = make_runtimes(onnx_path, args.threads)
    image = np.random.default_rng(0).random((1, 3, 512, 384), dtype=np.float32)
    for run in runtimes.values():
        for _ in range(3):
            run(image)  # first-call allocations and kernel selection
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    for _ in range(args.repeats):
        for name, run in runtimes.items():  # interleaved: a busy moment hits both
            start = time.perf_counter()
            run(image)
            times[name].append((time.perf_counter() - start) * 1000.0)
    reference = [np.asarray(o, np.float64) for o in runtimes["onnxruntime"](image)]
    records = []
    for name, run in runtimes.items():
        p50 = statistics.median(times[name])
        error = max(float(np.max(np.abs(np.asarray(o, np.float64) - r))) for o, r in zip(run(image), reference))
        record = {"runtime": name, "threads": args.threads, "p50_ms": round(p50, 1), "gflop": round(gflop, 2),
                  "gflops": round(gflop / p50 * 1000.0, 1), "max_abs_diff_vs_onnxruntime": error,
                  "vs_onnxruntime": round(statistics.median(times["onnxruntime"]) / p50, 3)}
        for isa, peak in peaks.items():
            if peak:
                record[f"peak_{isa}_gflops"] = round(peak, 1)
                record[f"fraction_of_{isa}_peak"] = round(gflop / p50 * 1000.0 / peak, 3)
        records.append(record)
    columns = ["runtime", "p50_ms", "gflops", "vs_onnxruntime", "max_abs_diff_vs_onnxruntime",
               *[k for k in records[0] if k.startswith("fraction_of")]]
    rows = [[f"{r[c]:.3g}" if isinstance(r[c], float) else str(r[c]) for c in columns] for r in records]
    emit(format_table(columns, rows, note=f"network batch 1, {args.threads} threads, {gflop:.1f} GFLOP per call"), records, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
