"""python -m h4w_core.bench: per-stage milliseconds of the eager pipeline (CPU fp32 by default).

Stages: crop (preprocessing), body backbone, boxes, hands, face, body rotation (pose heads),
SMPL-X, post-processing (placement and conversion), and the total per frame. It prints numbers;
nothing here asserts a time.

The network stages are timed from outside ``Hand4WholeNet.forward``, which carries no timing code:
forward pre-hooks on the submodule that opens each stage (:data:`NETWORK_STAGES`) mark the stage
boundaries, and a forward hook on the network closes the last one. The hooks exist only while a
frame is timed.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from h4w_core.data import SAMPLE_PHOTO
from h4w_core.inference.camera import Intrinsics
from h4w_core.inference.estimator import WholeBodyEstimator
from h4w_core.inference.results import TrackInfo
from h4w_core.model.assets import resolve_assets
from h4w_core.model.network import Hand4WholeNet
from h4w_core.tools.report import emit, format_table

SAMPLE_IMAGE = SAMPLE_PHOTO
STAGES = ("crop", "body_backbone", "boxes", "hands", "face", "body_rotation", "smplx", "postprocess", "total")
# Network stages in forward's order, each with the Hand4WholeNet submodule whose call opens it (None:
# forward's start). A stage runs until the next one opens, or until forward returns for the last, so
# the glue code between modules (box decoding, un-mirroring the left hand, output assembly) counts
# with the stage before it.
NETWORK_STAGES: tuple[tuple[str, str | None], ...] = (
    ("body_backbone", None),
    ("boxes", "box_net"),
    ("hands", "hand_roi_net"),
    ("face", "face_roi_net"),
    ("body_rotation", "body_rotation_net"),
)


class StageTimer:
    """Wall-clock per named stage, synchronising CUDA so GPU work is counted where it runs.

    Stages are timed either as ``with timer(name):`` blocks or, where only the boundaries are
    visible (module hooks), as laps: :meth:`begin` closes the open lap and opens the next.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.times: dict[str, float] = defaultdict(float)
        self._lap: tuple[str, float] | None = None

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = self._now()
        yield
        self.times[name] += (self._now() - start) * 1000.0

    def begin(self, name: str) -> None:
        """Close the open lap (if any) and start stage ``name`` at the same instant."""
        now = self._now()
        self._close(now)
        self._lap = (name, now)

    def end(self) -> None:
        """Close the open lap (if any)."""
        self._close(self._now())

    def _close(self, now: float) -> None:
        if self._lap is not None:
            name, start = self._lap
            self.times[name] += (now - start) * 1000.0
            self._lap = None


def eager_network(network: object) -> Hand4WholeNet:
    """The Hand4WholeNet behind ``network``: the module itself or an eager runner's ``.network``
    (h4w_core.backends.TorchRunner); traced, compiled or exported networks have no stages to hook."""
    if isinstance(network, Hand4WholeNet):
        return network
    inner = getattr(network, "network", None)
    if isinstance(inner, Hand4WholeNet):
        return inner
    raise TypeError(f"per-stage timing needs an eager Hand4WholeNet, got {type(network).__name__}")


@contextlib.contextmanager
def network_stage_hooks(network: nn.Module, timer: StageTimer) -> Iterator[None]:
    """Time ``network``'s stages into ``timer`` while the block runs, through module hooks.

    Raises RuntimeError after a forward whose stages did not open in :data:`NETWORK_STAGES` order,
    one each (forward was reordered), rather than report times under the wrong names.
    """
    expected = [stage for stage, _ in NETWORK_STAGES]
    seen: list[str] = []

    def open_stage(stage: str):
        def hook(module: nn.Module, args: tuple) -> None:
            if stage == expected[0]:
                seen.clear()
            seen.append(stage)
            timer.begin(stage)

        return hook

    def close_last(module: nn.Module, args: tuple, output: object) -> None:
        timer.end()
        if seen != expected:
            raise RuntimeError(f"Hand4WholeNet.forward opened its stages as {seen}, expected {expected}; update NETWORK_STAGES")

    handles = [
        (network if attr is None else getattr(network, attr)).register_forward_pre_hook(open_stage(stage))
        for stage, attr in NETWORK_STAGES
    ]
    handles.append(network.register_forward_hook(close_last))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def time_frame(estimator: WholeBodyEstimator, image: np.ndarray, boxes: list, intrinsics: Intrinsics) -> dict[str, float]:
    """Milliseconds per stage for one frame (``STAGES``)."""
    timer = StageTimer(estimator.device)
    with network_stage_hooks(eager_network(estimator.network), timer), timer("total"):
        with timer("crop"):
            crops, kept = estimator.crops(image, boxes, "bgr")
            patches = torch.from_numpy(np.stack([c.patch for c in crops])).to(estimator.device)
        with torch.no_grad():
            out = estimator.network(patches)
            with timer("postprocess"):
                people = estimator.split(out, crops, [TrackInfo(input_box=boxes[i]) for i in kept])
            with timer("smplx"):  # posing and placement: one traced call
                estimator.pose(people, intrinsics)
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
