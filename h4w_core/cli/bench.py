"""h4w-bench: end-to-end latency of each inference backend, side by side in one run.

End to end means uint8 BGR image + person boxes -> crops -> network (the backend) -> SMPL-X ->
placement -> numpy results, i.e. ``WholeBodyEstimator.predict`` with the backend's runner plugged
in (one estimator, one BodyModel, the network swapped). The eager fp32 baseline
(``backend: torch, precision: fp32``) is always measured in the same run, and each backend's
results are compared with it on the same input (``parity_max_abs_err``: the largest absolute
difference over mesh vertices in metres, both in the crop's virtual camera and placed in the real
camera, and over every pose parameter in radians).

``fp32_noise_floor`` (same for every record of a batch) is what eager fp32 disagrees with itself by
on the same crops when they are laid out contiguously instead of channels-last in memory (oneDNN
picks other kernels): parity errors of that size are fp32 rounding amplified by the model, not a
backend defect. On the stand-in (random-weight) models it reaches millimetres for some crops.

Timed calls are interleaved (round r runs every backend once) so that load from other processes
hits all backends alike. ``peak_mem_mb`` is approximate: what the runner added to the process
(RSS on CPU, device memory on CUDA) when it was created, plus the highest extra memory seen while
its calls ran. Per-stage timings of the eager pipeline are ``python -m h4w_core.tools.stage_bench``.

Backend specs: ``name[:precision[:option,option=value]]``, e.g. ``torch``, ``torch:fp16:cuda_graphs``,
``onnxruntime``, ``tensorrt:fp16``, ``torch_compiled:fp32:mode=inductor``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from tqdm import tqdm

from h4w_core.cli.common import setup_logging
from h4w_core.model.constants import POSE_FIELDS

PROG = "h4w-bench"
LOG = logging.getLogger(PROG)
DEFAULT_BACKENDS = {
    "cpu": ["torch", "torch_compiled", "onnxruntime"],
    "cuda": ["torch", "torch:fp16", "torch:fp16:cuda_graphs", "torch_compiled", "onnxruntime",
             "onnxruntime:fp16:provider=tensorrt", "tensorrt", "tensorrt:fp16"],
}
VERTEX_KEYS = ("mesh_cam", "vertices")
RECORD_KEYS = ("backend", "precision", "device", "batch", "p50_ms", "p90_ms", "persons_per_s",
               "first_call_ms", "peak_mem_mb", "parity_max_abs_err")


class SpecError(ValueError):
    """A malformed --backends entry."""


@dataclass
class BackendSpec:
    name: str
    precision: str = "fp32"
    options: Dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        opts = ",".join(k if v is True else f"{k}={v}" for k, v in self.options.items())
        return f"{self.name}:{self.precision}" + (f":{opts}" if opts else "")

    @property
    def is_baseline(self) -> bool:
        return self.name == "torch" and self.precision == "fp32" and not self.options


def _option_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_spec(text: str) -> BackendSpec:
    parts = text.split(":")
    if not parts[0] or len(parts) > 3:
        raise SpecError(f"backend spec must be name[:precision[:options]], got {text!r}")
    options: Dict[str, Any] = {}
    if len(parts) == 3 and parts[2]:
        for item in parts[2].split(","):
            key, sep, value = item.partition("=")
            if not key:
                raise SpecError(f"empty option in {text!r}")
            options[key] = _option_value(value) if sep else True
    return BackendSpec(parts[0], parts[1] if len(parts) > 1 and parts[1] else "fp32", options)


# ------------------------------------------------------------------------------------- memory
class MemoryProbe:
    """Process RSS (CPU) or used device memory (CUDA), with a sampling thread for peaks."""

    def __init__(self, device: Any, interval_s: float = 0.002):
        self.device = device
        self.interval_s = interval_s
        self._peak = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def now(self) -> int:
        if self.device.type == "cuda":
            import torch

            free, total = torch.cuda.mem_get_info(self.device)
            return total - free
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self.now())
            time.sleep(self.interval_s)

    def __enter__(self) -> MemoryProbe:
        self._peak = self.now()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._peak = max(self._peak, self.now())

    @property
    def peak(self) -> int:
        return self._peak


# -------------------------------------------------------------------------------------- bench
def person_boxes(batch: int, seed: int = 0) -> List[List[float]]:
    """Jittered boxes around the sample photo's person (as h4w_core.tools.stage_bench) so crops differ."""
    import numpy as np

    rng = np.random.default_rng(seed + batch)
    return [[20 + rng.uniform(-10, 10), 10 + rng.uniform(-5, 5), 360 + rng.uniform(-20, 0), 490] for _ in range(batch)]


def result_arrays(results: Sequence[Any]) -> Dict[str, Any]:
    import numpy as np

    return {k: np.stack([getattr(r, k) for r in results]).astype(np.float64) for k in POSE_FIELDS + VERTEX_KEYS}


def parity_error(got: Dict[str, Any], ref: Dict[str, Any]) -> float:
    import numpy as np

    return float(max(np.abs(got[k] - ref[k]).max() for k in POSE_FIELDS + VERTEX_KEYS))


class _OtherLayout:
    """The baseline runner fed the same crops in the other memory layout (noise-floor probe)."""

    def __init__(self, runner: Any):
        self.runner = runner

    def __call__(self, crops: Any) -> Any:
        import torch

        if crops.is_contiguous():
            return self.runner(crops.contiguous(memory_format=torch.channels_last))
        return self.runner(crops.contiguous())


def _sync(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def run_bench(
    checkpoint: Any,
    smplx_dir: Any,
    image: Any,
    specs: Sequence[BackendSpec],
    batches: Sequence[int] = (1, 2, 4, 8),
    device: str = "cpu",
    repeats: int = 5,
    warmup: int = 2,
    cache_dir: Any = None,
    progress: Any = None,
) -> List[Dict[str, Any]]:
    """One record per (backend spec, batch); the baseline torch:fp32 is added first if absent."""
    import numpy as np
    import torch

    from h4w_core.backends import BackendError, make_runner
    from h4w_core.inference.camera import Intrinsics
    from h4w_core.inference.estimator import WholeBodyEstimator

    say = progress or (lambda msg: None)
    specs = list(specs)
    if not any(s.is_baseline for s in specs):
        specs.insert(0, BackendSpec("torch"))
    specs.sort(key=lambda s: not s.is_baseline)  # baseline first
    dev = torch.device(device)
    probe = MemoryProbe(dev)
    max_batch = max(batches)

    runners, setup = [], {}
    estimator = None
    for spec in specs:
        options = dict(spec.options)
        if spec.name in ("onnxruntime", "tensorrt"):
            options.setdefault("cache_dir", cache_dir)
        if spec.name == "tensorrt":
            options.setdefault("max_batch", max_batch)
        say(f"setting up {spec.label}")
        before = probe.now()
        start = time.perf_counter()
        try:
            runner = make_runner(spec.name, checkpoint, device=device, precision=spec.precision, **options)
        except (BackendError, ImportError, TypeError, ValueError) as exc:
            if spec.is_baseline:
                raise
            print(f"{PROG}: skipping {spec.label}: {exc}", file=sys.stderr)
            continue
        setup[spec.label] = (time.perf_counter() - start, max(0, probe.now() - before))
        runners.append((spec, runner))
        if estimator is None:
            estimator = WholeBodyEstimator(checkpoint, smplx_dir, device=device, network=runner)

    h, w = image.shape[:2]
    intrinsics = Intrinsics.default_for(w, h)
    records = []
    for batch in batches:
        boxes = person_boxes(batch)

        def frame(runner, boxes=boxes):
            estimator.network = runner
            out = estimator.predict(image, boxes, channel_order="bgr", intrinsics=intrinsics)
            _sync(dev)
            return out

        first, ref, err, peak, times = {}, None, {}, {}, {}
        noise = None
        for spec, runner in runners:
            say(f"batch {batch}: first call of {spec.label}")
            before = probe.now()
            with probe:
                start = time.perf_counter()
                results = frame(runner)
                first[spec.label] = (time.perf_counter() - start) * 1000
                for _ in range(warmup):
                    frame(runner)
            peak[spec.label] = max(0, probe.peak - before)
            arrays = result_arrays(results)
            if ref is None:  # baseline runs first
                ref = arrays
                noise = parity_error(result_arrays(frame(_OtherLayout(runner))), ref)
            err[spec.label] = parity_error(arrays, ref)
            times[spec.label] = []
        for _ in tqdm(range(repeats), desc=f"batch {batch}", unit="round", leave=False, file=sys.stderr):  # interleaved rounds
            for spec, runner in runners:
                before = probe.now()
                with probe:
                    start = time.perf_counter()
                    frame(runner)
                    times[spec.label].append((time.perf_counter() - start) * 1000)
                peak[spec.label] = max(peak[spec.label], probe.peak - before)
        base_p50 = None
        for spec, runner in runners:
            t = np.asarray(times[spec.label])
            p50 = float(np.percentile(t, 50))
            base_p50 = base_p50 or p50
            setup_s, setup_mem = setup[spec.label]
            records.append({
                "backend": spec.name, "precision": spec.precision, "device": str(runner.device), "batch": batch,
                "p50_ms": round(p50, 2), "p90_ms": round(float(np.percentile(t, 90)), 2),
                "persons_per_s": round(1000.0 * batch / p50, 2), "first_call_ms": round(first[spec.label], 2),
                "peak_mem_mb": round((setup_mem + peak[spec.label]) / 2**20, 1),
                "parity_max_abs_err": float(f"{err[spec.label]:.3g}"),
                "options": spec.label.split(":", 2)[2] if spec.label.count(":") == 2 else "",
                "speedup_vs_eager": round(base_p50 / p50, 3), "setup_s": round(setup_s, 2),
                "fp32_noise_floor": float(f"{noise:.3g}"),
                "repeats": len(t), "threads": torch.get_num_threads(),
            })
    for _, runner in runners:
        runner.close()
    return records


def format_table(records: List[Dict[str, Any]]) -> str:
    header = ["backend", "prec", "opts", "device", "batch", "p50 ms", "p90 ms", "persons/s", "first ms",
              "peak MB", "max err", "noise", "speedup"]
    rows = [header]
    for r in records:
        rows.append([r["backend"], r["precision"], r.get("options", ""), r["device"], str(r["batch"]),
                     f"{r['p50_ms']:.1f}", f"{r['p90_ms']:.1f}", f"{r['persons_per_s']:.2f}",
                     f"{r['first_call_ms']:.0f}", f"{r['peak_mem_mb']:.0f}", f"{r['parity_max_abs_err']:.2g}",
                     f"{r['fp32_noise_floor']:.2g}", f"{r['speedup_vs_eager']:.2f}x"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(widths[i]) for i, c in enumerate(row)) for row in rows]
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:]) + (
        "\n(end to end per frame, uint8 image -> vertices; max err: metres / radians vs eager fp32;"
        "\n noise: eager fp32 vs itself on the same crops in the other memory layout)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None, help="snapshot_6.pth.tar (stand-in when omitted with --smplx-dir)")
    p.add_argument("--smplx-dir", type=Path, default=None)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--backends", nargs="+", default=None, metavar="SPEC",
                   help="name[:precision[:options]]; default per device: " +
                   "; ".join(f"{d}: {' '.join(b)}" for d, b in DEFAULT_BACKENDS.items()))
    p.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--repeats", type=int, default=5, help="timed calls per backend and batch")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls after the first call")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (torch and ONNX Runtime)")
    p.add_argument("--image", type=Path, default=None, help="default: the repository's sample photo")
    p.add_argument("--cache-dir", type=Path, default=None, help="ONNX / engine cache (default $H4W_CACHE)")
    p.add_argument("--json", type=Path, default=None, help="write the records as a JSON list here")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        specs = [parse_spec(s) for s in (args.backends or DEFAULT_BACKENDS[args.device])]
    except SpecError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if any(b < 1 for b in args.batches) or args.repeats < 1 or args.warmup < 0:
        print(f"{PROG}: error: batches and repeats must be >= 1, warmup >= 0", file=sys.stderr)
        return 2
    from h4w_core.backends import BACKENDS

    unknown = sorted({s.name for s in specs} - set(BACKENDS))
    if unknown:
        print(f"{PROG}: error: unknown backend(s) {unknown}; supported: {', '.join(BACKENDS)}", file=sys.stderr)
        return 2
    import cv2
    import torch

    from h4w_core.model.assets import resolve_assets
    from h4w_core.tools.stage_bench import SAMPLE_IMAGE

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"{PROG}: error: --device cuda but torch sees no CUDA GPU", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    image_path = args.image or SAMPLE_IMAGE
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        print(f"{PROG}: error: cannot read image {image_path}", file=sys.stderr)
        return 2
    try:
        assets = resolve_assets(args.checkpoint, args.smplx_dir)
    except FileNotFoundError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if assets.standin:
        print(f"{PROG}: note: stand-in assets (timings are representative: same network and mesh sizes)",
              file=sys.stderr)
    progress = (lambda msg: print(f"{PROG}: {msg}", file=sys.stderr)) if args.verbose else None
    records = run_bench(assets.checkpoint, assets.smplx_dir, image, specs, args.batches, args.device,
                        args.repeats, args.warmup, args.cache_dir, progress)
    print(format_table(records))
    print(f"({torch.get_num_threads()} CPU threads; {args.repeats} interleaved timed calls per row)")
    if args.json:
        args.json.write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
