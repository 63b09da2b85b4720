"""python -m h4w_core.tools.gpu_check OUTDIR [--dry-run]: GPU readiness of the torch backends in one run.

Run through ``bash scripts/gpu_check.sh OUTDIR [--dry-run] [--wheels DIR]`` (docs/BACKENDS.md, "GPU
check"). Made for a machine with a CUDA build of torch and no TensorRT; needs nothing from the
network. Parts, in order, each with a time budget (a configuration whose estimated cost does not
fit in what is left of its part is recorded as skipped, with the reason):

1. parity: CUDA fp32 / fp16 / bf16, each plain (``torch``), with CUDA graphs (``torch`` option
   ``cuda_graphs``) and with torch.compile (``torch_compiled`` mode ``inductor``), against CPU fp32
   eager, end to end (``WholeBodyEstimator.predict``) on the parity fixture's image and box: the
   largest absolute difference over the pose parameters (rad) and over the mesh vertices (m; in
   the crop's virtual camera and placed in the real camera), against the accuracy bounds 0.005 rad
   and 5 mm (required at fp32; reported for fp16 / bf16). A precision a backend refuses
   (``torch_compiled`` is fp32 only) is recorded as ``refused`` with the backend's message.
2. latency: ``h4w_core.cli.bench.run_bench`` (h4w-bench) per configuration at batch 1, 4, 16:
   p50 / p90 ms end to end, persons/s, first call, speedup against eager CUDA fp32.
3. node: ``python -m h4w_ros.bench --mode node`` on the real CUDA network (skipped without rclpy
   or when that bench has no ``--mode node``).

Writes OUTDIR/gpu_check.json (everything, rewritten after every configuration) and
OUTDIR/summary.txt. A hard time limit (--time-limit-s) ends the run with what it has; the
configuration then running is recorded as interrupted, the ones not started as skipped.
--dry-run runs the same code paths reduced, for CI on a CPU-only machine: CPU fp32 only, batch 1,
one repeat, the node benchmark skipped. Exit code 0 whenever it ran (failed parity is data), 1 on
a crash, 2 on bad arguments or missing inputs, each with one line on stderr.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

PROG = "gpu_check"
SCHEMA = 1
REPO = Path(__file__).resolve().parents[2]
POSE_BOUND_RAD = 5e-3
VERTEX_BOUND_M = 5e-3
PRECISIONS = ("fp32", "fp16", "bf16")
# (variant, spec template): plain eager, eager with CUDA graphs, torch.compile (inductor)
VARIANTS = (("plain", "torch:{p}"), ("cuda_graphs", "torch:{p}:cuda_graphs"), ("inductor", "torch_compiled:{p}:mode=inductor"))
BATCHES = (1, 4, 16)
BUDGETS_S = {"parity": 150.0, "latency": 170.0, "node": 100.0}
TIME_LIMIT_S = 460.0  # the whole tool; the script's own start-up comes on top (8 minutes in all)
INDUCTOR_GUESS_S = 90.0  # compile time assumed before one is measured (torch.compile, one batch shape)
NODE_PERSONS = (1, 4)
NODE_RATE_HZ = 30.0
NODE_SECONDS = 10.0
NODE_MIN_S = 60.0
LATENCY_MIN_S = 30.0  # parity leaves at least this much for the latency part
WRITE_RESERVE_S = 10.0
VERTEX_KEYS = ("mesh_cam", "vertices")
OTHER_KEYS = ("cam_trans", "betas", "expression", "lhand_bbox", "rhand_bbox", "face_bbox")  # boxes in image px


class Abort(RuntimeError):
    """Missing inputs or bad arguments (exit 2)."""


# ------------------------------------------------------------------------------------ report
class Report:
    """The JSON document, rewritten (atomically) with the summary after every change."""

    def __init__(self, outdir: Path, data: Dict[str, Any]):
        self.outdir = outdir
        self.data = data
        self.lock = threading.RLock()
        self.t0 = time.monotonic()
        self.current: Optional[Dict[str, Any]] = None  # the record being measured
        self.child: Optional[subprocess.Popen] = None  # the node benchmark, while it runs

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def log(self, msg: str) -> None:
        print(f"[{PROG} +{self.elapsed():6.1f}s] {msg}", file=sys.stderr, flush=True)

    def write(self) -> None:
        with self.lock:
            self.data["total_s"] = round(self.elapsed(), 1)
            text = json.dumps(self.data, indent=2, default=str) + "\n"
            summary = format_summary(self.data)
            for name, content in (("gpu_check.json", text), ("summary.txt", summary)):
                tmp = self.outdir / f".{name}.tmp"
                tmp.write_text(content)
                tmp.replace(self.outdir / name)

    def begin(self, part: str, rec: Dict[str, Any], need: float, left: float, budget_s: float) -> bool:
        """Start measuring ``rec`` of ``part`` when its estimated ``need`` fits the ``left`` seconds,
        else record it as skipped (with the numbers) and say False."""
        if need > left:
            rec.update(status="skipped", reason=f"time budget: needs ~{need:.0f} s, {max(left, 0):.0f} s left of {part}'s {budget_s:.0f} s")
            self.log(f"{part}: {rec['config']}: {rec['reason']}")
            self.write()
            return False
        with self.lock:
            rec["status"] = "running"
            self.current = rec
        return True

    def abort_on_time_limit(self) -> None:
        """Watchdog: record the state at the hard limit, write, exit 0 (what ran is data)."""
        got = self.lock.acquire(timeout=5.0)
        try:
            limit = self.data["time_limit_s"]
            self.data["aborted"] = f"hard time limit of {limit:g} s reached; the results up to then are kept"
            if self.current is not None and self.current.get("status") == "running":
                self.current.update(status="interrupted", reason=f"still running at the hard time limit ({limit:g} s)")
            for part in ("parity", "latency"):
                for rec in self.data[part]["configs"]:
                    if rec["status"] == "pending":
                        rec.update(status="skipped", reason="time budget: the hard time limit came first")
            if self.data["node"].get("status") in ("pending", "running"):
                self.data["node"].update(status="skipped" if self.data["node"]["status"] == "pending" else "interrupted",
                                         reason="the hard time limit came first")
            if self.child is not None and self.child.poll() is None:
                os.killpg(self.child.pid, signal.SIGTERM)  # the node benchmark's own session (it stops its children)
            self.write()
        finally:
            self.log(f"hard time limit reached: wrote {self.outdir / 'gpu_check.json'} and summary.txt")
            if got:
                self.lock.release()
            os._exit(0)


def _fmt(value: Any, spec: str = ".2g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value == 0:
        return "0"
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def _state(rec: Dict[str, Any]) -> str:
    return rec["status"] if rec["status"] in ("ok", "pending", "running") else f"{rec['status']}: {rec.get('reason', '')}"


def format_table(header: List[str], rows: List[List[str]]) -> str:
    """Columns with a rule under the header; numbers right-aligned, the first and last (names, status) left."""
    table = [header] + rows
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    last = len(header) - 1

    def line(row: List[str]) -> str:
        return "  ".join(c.ljust(widths[i]) if i in (0, last) else c.rjust(widths[i]) for i, c in enumerate(row)).rstrip()

    head = line(header)
    return "\n".join([head, "-" * len(head)] + [line(r) for r in rows])


def format_summary(data: Dict[str, Any]) -> str:
    env = data.get("environment", {})
    lines = [f"h4w GPU check ({'DRY RUN, ' if data.get('dry_run') else ''}{data.get('started', '')})",
             f"device: {env.get('gpu_name') or 'no CUDA GPU'}; torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, "
             f"cuDNN {env.get('cudnn')}); TF32: cuDNN {env.get('cudnn_allow_tf32')} (conv fp32_precision "
             f"{env.get('cudnn_conv_fp32_precision')}), matmul {env.get('matmul_allow_tf32')}",
             f"assets: {data.get('assets', {}).get('kind', '?')}; total {data.get('total_s', 0):.0f} s"
             + (f"; ABORTED: {data['aborted']}" if data.get("aborted") else ""), ""]
    parity = data["parity"]
    rows = []
    for r in parity["configs"]:
        verdict = r.get("verdict") or "-"
        if r["status"] == "ok" and r.get("bound") == "informational":
            verdict += " (info)"
        rows.append([r["config"], _fmt(r.get("pose_err_rad")), _fmt(r.get("vertex_err_m")), verdict,
                     _fmt(r.get("first_call_ms"), ".0f"), _state(r)])
    lines.append(f"1. parity vs CPU fp32 eager (parity crop; bounds {POSE_BOUND_RAD:g} rad, {VERTEX_BOUND_M * 1000:g} mm; "
                 f"required at fp32) [{parity.get('seconds', 0):.0f} s of {parity.get('budget_s', 0):.0f}]")
    lines.append(format_table(["config", "pose rad", "vert m", "bounds", "first ms", "status"], rows))
    floor = parity.get("cpu_fp32_noise_floor") or {}
    if floor:
        lines.append(f"(CPU fp32 vs itself, contiguous instead of channels-last crop: poses {_fmt(floor.get('pose_err_rad'))} rad, "
                     f"vertices {_fmt(floor.get('vertex_err_m'))} m)")
    lines.append("")
    latency = data["latency"]
    rows = []
    for c in latency["configs"]:
        if c["status"] != "ok":
            rows.append([c["config"], "-", "-", "-", "-", "-", "-", _state(c)])
        for r in c.get("records", []):
            rows.append([c["config"], str(r["batch"]), f"{r['p50_ms']:.1f}", f"{r['p90_ms']:.1f}", f"{r['persons_per_s']:.1f}",
                         f"{r['speedup_vs_eager']:.2f}x", f"{r['first_call_ms']:.0f}", "ok"])
    lines.append(f"2. latency, end to end per frame (h4w-bench run_bench; {latency.get('repeats')} repeats; speedup vs eager fp32 "
                 f"on the same device) [{latency.get('seconds', 0):.0f} s of {latency.get('budget_s', 0):.0f}]")
    lines.append(format_table(["config", "batch", "p50 ms", "p90 ms", "persons/s", "speedup", "first ms", "status"], rows))
    lines.append("")
    node = data["node"]
    lines.append(f"3. node benchmark: {_state(node)} [{node.get('seconds', 0):.0f} s of {node.get('budget_s', 0):.0f}]")
    for r in node.get("records", []) or []:
        diag = r.get("diagnostics") or {}
        lines.append(f"   persons {r.get('persons')}: output {_fmt(r.get('output_hz'), '.1f')} Hz, latency p50 "
                     f"{_fmt(r.get('latency_ms_p50'), '.1f')} ms, p95 {_fmt(r.get('latency_ms_p95'), '.1f')} ms, node processing "
                     f"{_fmt(diag.get('processing_ms_mean'), '.1f')} ms, {_fmt(diag.get('frames_processed'), 'd')} of "
                     f"{_fmt(diag.get('frames_received'), 'd')} frames processed")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- environment
def environment() -> Dict[str, Any]:
    import torch

    env: Dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "torch_cuda": torch.version.cuda, "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(), "gpu_name": None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TF32 flags are deprecated in favour of fp32_precision
        env["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        env["cudnn_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        env["matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        env["float32_matmul_precision"] = torch.get_float32_matmul_precision()
        # torch >= 2.9: "tf32" means CUDA fp32 convolutions / matmuls run in TF32 (what CUDA fp32 parity then measures)
        env["cudnn_conv_fp32_precision"] = getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None)
        env["matmul_fp32_precision"] = getattr(torch.backends.cuda.matmul, "fp32_precision", None)
    if env["cuda_available"]:
        props = torch.cuda.get_device_properties(0)
        env.update(gpu_name=props.name, gpu_count=torch.cuda.device_count(), gpu_capability=f"{props.major}.{props.minor}",
                   gpu_memory_gib=round(props.total_memory / 2**30, 1))
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            env["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
        except (OSError, subprocess.SubprocessError):
            env["driver"] = None
    for module in ("smplx", "tensorrt", "onnxruntime"):
        try:
            mod = __import__(module)
            env[f"{module}_version"] = getattr(mod, "__version__", "installed")
        except Exception:  # any import failure means "not usable here"
            env[f"{module}_version"] = None
    from h4w_core.backends.export import h4w_version

    env["h4w"] = h4w_version()
    return env


def parity_assets(shared: Path, cache: Path, report: Report) -> Dict[str, Any]:
    """The parity fixture's stand-in checkpoint and SMPL-X (generated once, as test/conftest.py does)."""
    parity = shared / "parity"
    if not (parity / "reference_astronaut.npz").is_file():
        raise Abort(f"parity fixture not found at {parity} (set H4W_SHARED or --shared to the shared folder)")
    folder = cache / "parity"
    ckpt = folder / "parity_snapshot.pth.tar"
    smplx_file = folder / "smplx" / "SMPLX_NEUTRAL.npz"
    folder.mkdir(parents=True, exist_ok=True)
    if not smplx_file.is_file():
        report.log(f"generating the stand-in SMPL-X into {smplx_file}")
        subprocess.run([sys.executable, str(parity / "make_stand_in_smplx.py"), str(smplx_file)], check=True)
    if not ckpt.is_file():
        report.log(f"generating the stand-in checkpoint into {ckpt}")
        tmp = folder / "parity_snapshot.tmp"
        subprocess.run([sys.executable, str(parity / "make_stand_in_checkpoint.py"), str(tmp)], check=True)
        tmp.replace(ckpt)
    return {"kind": "parity fixture stand-ins", "checkpoint": str(ckpt), "smplx_dir": str(smplx_file.parent),
            "image": str(parity / "astronaut.png"), "bbox_xywh": [20.0, 10.0, 360.0, 502.0]}


# ------------------------------------------------------------------------------------ parity
def result_errors(got: List[Any], ref: List[Any]) -> Dict[str, Any]:
    """Largest |got - ref| per field, pose (rad) and vertex (m) maxima, h4w-bench's combined number."""
    import numpy as np

    from h4w_core.cli.bench import parity_error, result_arrays
    from h4w_core.model.constants import POSE_FIELDS

    fields = {}
    finite = True
    for key in POSE_FIELDS + VERTEX_KEYS + OTHER_KEYS:
        a = np.stack([getattr(r, key) for r in got]).astype(np.float64)
        b = np.stack([getattr(r, key) for r in ref]).astype(np.float64)
        finite &= bool(np.isfinite(a).all())
        diff = float(np.abs(a - b).max())
        fields[key] = float(f"{diff:.3g}") if math.isfinite(diff) else None
    if not finite:
        return {"finite": False, "pose_err_rad": None, "vertex_err_m": None, "parity_max_abs_err": None, "field_errors": fields}
    return {
        "finite": True,
        "pose_err_rad": max(fields[k] for k in POSE_FIELDS),
        "vertex_err_m": max(fields[k] for k in VERTEX_KEYS),
        "parity_max_abs_err": float(f"{parity_error(result_arrays(got), result_arrays(ref)):.3g}"),
        "field_errors": fields,
    }


def _close(runner: Any) -> None:
    import torch

    try:
        if runner is not None and hasattr(runner, "close"):
            runner.close()
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _spec_record(device: str, text: str, precision: str, variant: str) -> Dict[str, Any]:
    from h4w_core.cli.bench import parse_spec

    spec = parse_spec(text)
    return {"config": f"{device} {spec.label}", "device": device, "spec": spec.label, "backend": spec.name,
            "precision": precision, "variant": variant, "status": "pending"}


def plan(cuda: bool, dry_run: bool) -> List[Dict[str, Any]]:
    """Every configuration, display order: CPU fp32 eager, then CUDA by precision and variant."""
    records = [_spec_record("cpu", "torch:fp32", "fp32", "plain")]
    for p in PRECISIONS:
        for variant, template in VARIANTS:
            rec = _spec_record("cuda", template.format(p=p), p, variant)
            if dry_run or not cuda:
                rec.update(status="skipped", reason="no CUDA" if not cuda else "dry run")
            records.append(rec)
    return records


def run_order(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Cheap first: CPU, the eager and CUDA-graph variants, then torch.compile (minutes of compiling)."""
    rank = {"plain": 0, "cuda_graphs": 1, "inductor": 2}
    return sorted(records, key=lambda r: (r["device"] != "cpu", rank[r["variant"]], PRECISIONS.index(r["precision"])))


def parity_estimate(rec: Dict[str, Any]) -> float:
    return 8.0 + (INDUCTOR_GUESS_S if rec["variant"] == "inductor" else 0.0)


def run_parity(ctx: Dict[str, Any], report: Report, budget_s: float, deadline: float) -> float:
    """Returns the seconds of its budget it did not use."""
    import cv2
    import torch

    from h4w_core.backends import PrecisionError, make_runner, runner_class
    from h4w_core.cli.bench import _OtherLayout, parse_spec
    from h4w_core.inference.camera import Intrinsics
    from h4w_core.inference.estimator import WholeBodyEstimator

    part = report.data["parity"]
    start = time.monotonic()
    end = min(start + budget_s, deadline)
    assets = ctx["assets"]
    image = cv2.imread(assets["image"], cv2.IMREAD_COLOR)
    if image is None:
        raise Abort(f"cannot read the parity image {assets['image']}")
    h, w = image.shape[:2]
    intrinsics = Intrinsics.default_for(w, h)
    boxes = [assets["bbox_xywh"]]

    report.log("parity: CPU fp32 eager reference")
    ref_est = WholeBodyEstimator(assets["checkpoint"], assets["smplx_dir"], device="cpu")
    ref_net = ref_est.network
    t = time.perf_counter()
    ref = ref_est.predict(image, boxes, channel_order="bgr", intrinsics=intrinsics)
    part["reference"] = {"config": "cpu torch:fp32 (estimator's own eager network)", "call_ms": round((time.perf_counter() - t) * 1000, 1),
                         "threads": torch.get_num_threads()}
    ref_est.network = _OtherLayout(ref_net)
    floor = result_errors(ref_est.predict(image, boxes, channel_order="bgr", intrinsics=intrinsics), ref)
    ref_est.network = ref_net
    part["cpu_fp32_noise_floor"] = {k: floor[k] for k in ("pose_err_rad", "vertex_err_m", "parity_max_abs_err")}
    report.write()

    estimators = {"cpu": ref_est}
    for rec in run_order(part["configs"]):
        if rec["status"] != "pending":
            continue
        spec = parse_spec(rec["spec"])
        if spec.precision not in runner_class(spec.name).supported.get(rec["device"], ()):
            try:  # refused in the runner's constructor before anything is loaded: take its own message
                _close(make_runner(spec.name, assets["checkpoint"], device=rec["device"], precision=spec.precision, **spec.options))
            except PrecisionError as exc:
                rec.update(status="refused", reason=f"{type(exc).__name__}: {' '.join(str(exc).split())}")
                report.log(f"parity: {rec['config']}: {_state(rec)}")
                report.write()
                continue
        left = end - time.monotonic()
        if not report.begin("parity", rec, parity_estimate(rec), left, budget_s):
            continue
        runner = None
        report.log(f"parity: {rec['config']}")
        t0 = time.perf_counter()
        try:
            try:
                runner = make_runner(spec.name, assets["checkpoint"], device=rec["device"], precision=spec.precision, **spec.options)
            except PrecisionError as exc:
                rec.update(status="refused", reason=f"{type(exc).__name__}: {' '.join(str(exc).split())}")
                continue
            rec["setup_s"] = round(time.perf_counter() - t0, 2)
            est = estimators.get(rec["device"])
            if est is None:
                est = estimators[rec["device"]] = WholeBodyEstimator(assets["checkpoint"], assets["smplx_dir"],
                                                                     device=rec["device"], network=runner)
            est.network = runner
            calls = []
            for _ in range(2):  # first call (graph capture / compile), then a steady one
                t = time.perf_counter()
                calls.append(est.predict(image, boxes, channel_order="bgr", intrinsics=intrinsics))
                if rec["device"] == "cuda":
                    torch.cuda.synchronize()
                rec["first_call_ms" if len(calls) == 1 else "second_call_ms"] = round((time.perf_counter() - t) * 1000, 1)
            errs = result_errors(calls[0], ref)
            rec.update(errs)
            rec["repeat_err"] = result_errors(calls[1], calls[0])["parity_max_abs_err"]
            within = bool(errs["finite"] and errs["pose_err_rad"] <= POSE_BOUND_RAD and errs["vertex_err_m"] <= VERTEX_BOUND_M)
            rec.update(status="ok", within_bounds=within, verdict="pass" if within else "fail",
                       bound="required" if spec.precision == "fp32" else "informational")
        except Exception as exc:  # one configuration failing (compile error, OOM, ...) is data
            rec.update(status="error", reason=f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}")
        finally:
            rec["seconds"] = round(time.perf_counter() - t0, 2)
            if rec["device"] == "cpu":
                ref_est.network = ref_net
            elif rec["device"] in estimators:
                estimators[rec["device"]].network = None
            _close(runner)
            with report.lock:
                report.current = None
                report.write()
            report.log(f"parity: {rec['config']}: {_state(rec)}"
                       + (f" poses {rec['pose_err_rad']:.2g} rad, vertices {rec['vertex_err_m']:.2g} m -> {rec['verdict']}"
                          if rec["status"] == "ok" and rec.get("finite") else ""))
    estimators.clear()
    _close(None)
    part["seconds"] = round(time.monotonic() - start, 1)
    return max(0.0, budget_s - part["seconds"])


# ----------------------------------------------------------------------------------- latency
def latency_estimate(rec: Dict[str, Any], parity: Optional[Dict[str, Any]], batches, calls: int, baseline_s: float) -> float:
    """Seconds one run_bench call for this configuration may take (it re-measures eager as well)."""
    if not parity or parity.get("status") != "ok":
        first, steady, setup = (INDUCTOR_GUESS_S if rec["variant"] == "inductor" else 5.0), 0.2, 5.0
    else:
        first, steady, setup = parity["first_call_ms"] / 1000, parity["second_call_ms"] / 1000, parity["setup_s"]
    shapes = 2 if rec["variant"] == "inductor" else (len(batches) if rec["variant"] == "cuda_graphs" else 1)
    return baseline_s + setup + shapes * first + calls * steady * sum(batches)


def run_latency(ctx: Dict[str, Any], report: Report, budget_s: float, deadline: float) -> None:
    import cv2

    from h4w_core.cli.bench import parse_spec, run_bench
    from h4w_core.data import SAMPLE_PHOTO

    part = report.data["latency"]
    part["budget_s"] = round(budget_s, 1)  # its own plus what parity left unused
    start = time.monotonic()
    end = min(start + budget_s, deadline)
    assets = ctx["assets"]
    image = cv2.imread(str(SAMPLE_PHOTO), cv2.IMREAD_COLOR)
    if image is None:
        raise Abort(f"cannot read the sample photo {SAMPLE_PHOTO}")
    batches, repeats, warmup = part["batches"], part["repeats"], part["warmup"]
    calls = repeats + warmup + 2  # + first call + the baseline's noise-floor call
    parity = {r["config"]: r for r in report.data["parity"]["configs"]}
    baseline_s = 0.0
    for rec in run_order(part["configs"]):
        if rec["status"] != "pending":
            continue
        p = parity.get(rec["config"])
        if p and p["status"] in ("refused", "error"):
            rec.update(status="skipped" if p["status"] == "error" else "refused",
                       reason=p.get("reason", "") if p["status"] == "refused" else f"failed in parity: {p.get('reason', '')}")
            report.write()
            continue
        left = end - time.monotonic()
        if not report.begin("latency", rec, latency_estimate(rec, p, batches, calls, baseline_s), left, budget_s):
            continue
        spec = parse_spec(rec["spec"])
        report.log(f"latency: {rec['config']} at batch {', '.join(map(str, batches))}")
        t0 = time.perf_counter()
        try:
            records = run_bench(assets["checkpoint"], assets["smplx_dir"], image, [spec], batches, rec["device"], repeats, warmup,
                                ctx["cache_dir"], progress=lambda msg: report.log(f"latency:   {msg}"))
            mine = [r for r in records if (r["backend"], r["precision"], r.get("options", "")) ==
                    (spec.name, spec.precision, spec.label.split(":", 2)[2] if spec.label.count(":") == 2 else "")]
            if spec.is_baseline:
                baseline_s = time.perf_counter() - t0
            if mine:
                rec.update(status="ok", records=mine)
            else:
                rec.update(status="error", reason="run_bench could not make this backend (its message is in the log above)")
        except Exception as exc:  # one configuration failing is data, not a crash
            rec.update(status="error", reason=f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}")
        finally:
            rec["seconds"] = round(time.perf_counter() - t0, 2)
            _close(None)
            with report.lock:
                report.current = None
                report.write()
            report.log(f"latency: {rec['config']}: {_state(rec)} ({rec['seconds']:.1f} s)")
    part["seconds"] = round(time.monotonic() - start, 1)


# -------------------------------------------------------------------------------------- node
def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def node_probe(node: Dict[str, Any]) -> str:
    """Marks the node benchmark skipped when it cannot run here; returns its --help text."""
    probe = subprocess.run([sys.executable, "-c", "import rclpy"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["import failed"])[-1]
        node.update(status="skipped", reason=f"rclpy not importable ({last[:200]})")
        return ""
    help_out = subprocess.run([sys.executable, "-m", "h4w_ros.bench", "--help"], capture_output=True, text=True, timeout=60)
    if help_out.returncode != 0 or "--mode" not in help_out.stdout or "node" not in help_out.stdout:
        node.update(status="skipped", reason="h4w_ros.bench has no --mode node")
        return ""
    return help_out.stdout


def run_node(ctx: Dict[str, Any], report: Report, budget_s: float, deadline: float, help_text: str) -> None:
    node = report.data["node"]
    if node["status"] != "pending":
        return
    start = time.monotonic()
    outdir: Path = report.outdir
    try:
        left = min(budget_s, deadline - time.monotonic())
        if left < NODE_MIN_S:
            node.update(status="skipped", reason=f"time budget: needs at least {NODE_MIN_S:.0f} s, {max(left, 0):.0f} s left")
            return
        json_path, log_path = outdir / "node_bench.json", outdir / "node_bench.log"
        cmd = [sys.executable, "-m", "h4w_ros.bench", "--mode", "node", "--persons", *map(str, NODE_PERSONS),
               "--rate", f"{NODE_RATE_HZ:g}", "--seconds", f"{NODE_SECONDS:g}", "--backend", "torch", "--device", "cuda",
               "--precision", node["precision"], "--checkpoint", ctx["assets"]["checkpoint"], "--smplx-dir", ctx["assets"]["smplx_dir"],
               "--json", str(json_path), "--log-dir", str(outdir / "node_logs"), "--startup-timeout", f"{max(20, left - 25):.0f}"]
        profile = REPO / "config" / "fastdds_large_images.xml"
        if profile.is_file() and "--fastdds-profile" in help_text:
            cmd += ["--fastdds-profile", str(profile)]
        with report.lock:
            node.update(status="running", command=cmd)
            report.current = node
            report.write()
        report.log(f"node: {' '.join(cmd[1:8])} ... (at most {left:.0f} s; output in {log_path})")
        with open(log_path, "w") as log_file:
            proc = report.child = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                                   cwd=str(REPO) if REPO.is_dir() else None)
            try:
                rc = proc.wait(timeout=left)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the bench and the processes it started
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                rc = None
        node["rc"] = rc
        node["log_tail"] = _tail(log_path)
        if json_path.is_file():
            try:
                node["records"] = json.loads(json_path.read_text())
            except ValueError:
                node["records"] = None
        if rc == 0 and node.get("records"):
            node["status"] = "ok"
        elif rc is None:
            node.update(status="interrupted", reason=f"still running after its {left:.0f} s budget; stopped")
        else:
            lines = [ln for ln in node["log_tail"].splitlines() if ln.strip()]
            node.update(status="error", reason=f"exit code {rc}: {(lines or [''])[-1][:300]}")
    finally:
        node["seconds"] = round(time.monotonic() - start, 1)
        with report.lock:
            report.current = report.child = None
            report.write()
        report.log(f"node: {_state(node)}")


# -------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("outdir", type=Path, help="gpu_check.json and summary.txt go here (created)")
    p.add_argument("--dry-run", action="store_true", help="CPU fp32 only, batch 1, 1 repeat, no node benchmark (CI)")
    p.add_argument("--shared", type=Path, default=None, help="folder holding parity/ (default $H4W_SHARED, else ../shared)")
    p.add_argument("--cache-dir", type=Path, default=None, help="where the stand-ins are generated (default $H4W_CACHE)")
    p.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    p.add_argument("--repeats", type=int, default=20, help="timed calls per configuration and batch")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls after the first")
    p.add_argument("--node-precision", default="fp16", choices=PRECISIONS, help="the node benchmark's precision")
    for part, seconds in BUDGETS_S.items():
        p.add_argument(f"--{part}-s", type=float, default=seconds, help=f"time budget of the {part} part")
    p.add_argument("--time-limit-s", type=float, default=TIME_LIMIT_S, help="hard limit for the whole check")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if any(b < 1 for b in args.batches) or args.repeats < 1 or args.warmup < 0 or args.time_limit_s <= 0:
        print(f"{PROG}: error: batches and repeats must be >= 1, warmup >= 0, the time limit > 0", file=sys.stderr)
        return 2
    try:
        args.outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"{PROG}: error: cannot create {args.outdir}: {exc}", file=sys.stderr)
        return 2
    data: Dict[str, Any] = {
        "schema": SCHEMA, "tool": "h4w_core.tools.gpu_check", "argv": sys.argv[1:] if argv is None else list(argv),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dry_run": args.dry_run, "time_limit_s": args.time_limit_s, "aborted": None, "error": None,
        "bounds": {"pose_rad": POSE_BOUND_RAD, "vertex_m": VERTEX_BOUND_M, "required_for": "fp32"},
        "parity": {"budget_s": args.parity_s, "configs": []},
        "latency": {"budget_s": args.latency_s, "configs": []},
        "node": {"budget_s": args.node_s, "status": "pending", "precision": args.node_precision},
    }
    report = Report(args.outdir.resolve(), data)
    watchdog = threading.Timer(args.time_limit_s, report.abort_on_time_limit)
    watchdog.daemon = True
    watchdog.start()
    try:
        report.log("starting (imports torch)")
        import torch

        data["environment"] = environment()
        cuda = bool(data["environment"]["cuda_available"])
        report.log(f"torch {torch.__version__}, CUDA {'available: ' + data['environment']['gpu_name'] if cuda else 'not available'}"
                   f"{', dry run' if args.dry_run else ''}")
        data["parity"]["configs"] = plan(cuda, args.dry_run)
        data["latency"]["configs"] = [{k: r[k] for k in ("config", "device", "spec", "backend", "precision", "variant", "status")}
                                      | ({"reason": r["reason"]} if "reason" in r else {}) for r in data["parity"]["configs"]]
        if args.dry_run:
            data["latency"].update(batches=[1], repeats=1, warmup=0)
            data["node"].update(status="skipped", reason="dry run")
        else:
            data["latency"].update(batches=args.batches, repeats=args.repeats, warmup=args.warmup)
            if cuda:  # the GPU rows are what this measures; CPU latency is h4w-bench's business
                data["latency"]["configs"][0].update(status="skipped", reason="CPU latency not measured on a GPU machine (h4w-bench)")
            else:
                data["node"].update(status="skipped", reason="no CUDA")
        report.write()

        shared = args.shared or Path(os.environ.get("H4W_SHARED", REPO.parent / "shared"))
        cache = args.cache_dir or Path(os.environ.get("H4W_CACHE", Path.home() / ".cache" / "h4w"))
        t = time.monotonic()
        data["assets"] = parity_assets(shared, cache, report)
        data["assets"]["prepare_s"] = round(time.monotonic() - t, 1)
        ctx = {"assets": data["assets"], "cache_dir": cache}
        report.write()

        help_text = node_probe(data["node"]) if data["node"]["status"] == "pending" else ""
        node_reserve = args.node_s if data["node"]["status"] == "pending" else 0.0
        report.write()
        deadline = report.t0 + args.time_limit_s - WRITE_RESERVE_S
        unused = run_parity(ctx, report, args.parity_s, deadline - node_reserve - LATENCY_MIN_S)
        report.write()
        run_latency(ctx, report, args.latency_s + unused, deadline - node_reserve)
        report.write()
        run_node(ctx, report, args.node_s, deadline, help_text)
    except Abort as exc:
        watchdog.cancel()
        with report.lock:
            data["error"] = str(exc)
            report.write()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except BaseException as exc:  # one line on stderr, the traceback in the JSON
        watchdog.cancel()
        with report.lock:
            data["error"] = f"{type(exc).__name__}: {exc}"
            data["traceback"] = traceback.format_exc()
            try:
                report.write()
            except Exception:
                pass
        print(f"{PROG}: error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} (traceback in gpu_check.json)", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    watchdog.cancel()
    with report.lock:
        report.write()
    sys.stderr.write(format_summary(data))
    report.log(f"done: {report.outdir / 'gpu_check.json'}, {report.outdir / 'summary.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
