"""python -m h4w_core.bench: per-stage milliseconds of the eager pipeline (CPU fp32 by default).

Stages: crop (preprocessing), body backbone, boxes, hands, face, body rotation (pose heads),
SMPL-X, post-processing (placement and conversion), and the total per frame. It prints numbers;
nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from h4w_core.assets import resolve_assets
from h4w_core.estimator import WholeBodyEstimator
from h4w_core.report import emit, format_table
from h4w_core.results import Intrinsics

SAMPLE_IMAGE = Path(__file__).resolve().parents[1] / "data" / "astronaut.jpg"
STAGES = ("crop", "body_backbone", "boxes", "hands", "face", "body_rotation", "smplx", "postprocess", "total")


class StageTimer:
    """Wall-clock per named stage, synchronising CUDA so GPU work is counted where it runs."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: dict[str, float] = defaultdict(float)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self, name: str):
        self._sync()
        start = time.perf_counter()
        yield
        self._sync()
        self.times[name] += (time.perf_counter() - start) * 1000.0


def time_frame(estimator: WholeBodyEstimator, image: np.ndarray, boxes: list, intrinsics: Intrinsics) -> dict[str, float]:
    timer = StageTimer(estimator.device)
    estimator.network.stage_timer = timer
    try:
        with timer("total"):
            with timer("crop"):
                crops, kept = estimator.crops(image, boxes, "bgr")
                patches = torch.from_numpy(np.stack([c.patch for c in crops])).to(estimator.device)
            with torch.no_grad():
                out = estimator.network(patches)
                with timer("smplx"):
                    body = estimator.body_model(
                        out.global_orient, out.body_pose, out.left_hand_pose, out.right_hand_pose,
                        out.jaw_pose, out.betas, out.expression,
                    )
                with timer("postprocess"):
                    estimator.assemble(out, body, crops, kept, intrinsics)
    finally:
        estimator.network.stage_timer = None
    return dict(timer.times)


def run_bench(estimator: WholeBodyEstimator, image: np.ndarray, batches: list[int], repeats: int, warmup: int) -> list[dict]:
    h, w = image.shape[:2]
    intrinsics = Intrinsics.default_for(w, h)
    rng = np.random.default_rng(0)
    records = []
    for batch in batches:
        # jittered boxes around the person so crops differ
        boxes = [[20 + rng.uniform(-10, 10), 10 + rng.uniform(-5, 5), 360, 490] for _ in range(batch)]
        for _ in range(warmup):
            time_frame(estimator, image, boxes, intrinsics)
        samples = defaultdict(list)
        for _ in range(repeats):
            for stage, ms in time_frame(estimator, image, boxes, intrinsics).items():
                samples[stage].append(ms)
        record = {"batch": batch, "device": str(estimator.device), "precision": "fp32", "threads": torch.get_num_threads()}
        record.update({f"{s}_ms": round(statistics.median(samples[s]), 2) for s in STAGES})
        record["persons_per_s"] = round(1000.0 * batch / record["total_ms"], 2)
        records.append(record)
    return records


def stage_table(records: list[dict]) -> str:
    rows = [[str(r["batch"])] + [f"{r[s + '_ms']:.1f}" for s in STAGES] + [f"{r['persons_per_s']:.2f}"] for r in records]
    return format_table(["batch", *STAGES, "persons/s"], rows, "(median milliseconds per frame)")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m h4w_core.bench", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--smplx-dir", type=Path, default=None)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--image", type=Path, default=SAMPLE_IMAGE)
    p.add_argument("--json", type=Path, default=None, help="also write the records as JSON here")
    args = p.parse_args(argv)
    image = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if image is None:
        print(f"error: cannot read image {args.image}", file=sys.stderr)
        return 1
    assets = resolve_assets(args.checkpoint, args.smplx_dir)
    if assets.standin:
        print("note: stand-in assets (timings are representative: same network and mesh sizes)", file=sys.stderr)
    estimator = WholeBodyEstimator(assets.checkpoint, assets.smplx_dir, device=args.device)
    records = run_bench(estimator, image, args.batches, args.repeats, args.warmup)
    emit(stage_table(records), records, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
