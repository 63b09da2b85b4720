"""How far CPU bf16 moves the outputs, region by region, on one crop.

    python -m h4w_core.tools.precision_probe [--checkpoint C --smplx-dir D --crop-npz reference.npz]

Why it exists: the CPU backends refuse bf16 (``PrecisionError``) because it breaks the
accuracy bounds (5 mm on vertices, 0.005 rad on pose parameters, against eager fp32). This probe
is the evidence, and the way to re-check it on other weights (the released checkpoint, say): it
runs one part of the network at a time under ``torch.autocast('cpu', bfloat16)`` and prints the
largest pose and vertex differences from fp32 on the same crop.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from h4w_core.inference.estimator import WholeBodyEstimator
from h4w_core.model.constants import POSE_FIELDS

POSE_BOUND_RAD = 0.005
VERTEX_BOUND_M = 0.005

#: region name -> submodule of Hand4WholeNet ("" is the whole network)
REGIONS = {
    "whole network": "",
    "body backbone": "backbone",
    "hand crops + backbone": "hand_roi_net",
    "face crop + backbone": "face_roi_net",
}


@dataclass(frozen=True)
class ProbeResult:
    region: str
    pose_err_rad: float
    vertex_err_m: float

    @property
    def within_bounds(self) -> bool:
        return self.pose_err_rad <= POSE_BOUND_RAD and self.vertex_err_m <= VERTEX_BOUND_M


@contextlib.contextmanager
def bf16_in(module: nn.Module) -> Iterator[None]:
    """Run `module`'s forward under CPU bf16 autocast, returning fp32 tensors to its caller."""
    forward = module.forward

    def wrapped(*args, **kwargs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = forward(*args, **kwargs)
        if torch.is_tensor(out):
            return out.float()
        floats = [t.float() for t in out]
        return out._make(floats) if hasattr(out, "_make") else type(out)(floats)  # NamedTuple or tuple

    module.forward = wrapped
    try:
        yield
    finally:
        del module.forward  # back to the class's forward


def probe(estimator: WholeBodyEstimator, crop: torch.Tensor, regions: Sequence[str] = tuple(REGIONS)) -> list[ProbeResult]:
    """Max |bf16 - fp32| over pose parameters (rad) and crop-camera vertices (m), per region."""
    network = estimator.network
    if not isinstance(network, nn.Module):
        raise TypeError("the probe needs the estimator's own torch network (no runner)")
    modules = dict(network.named_modules())
    ref_out, ref_body = estimator.forward(crop)
    results = []
    for region in regions:
        with bf16_in(modules[REGIONS[region]]):
            out, body = estimator.forward(crop)
        pose_err = max((getattr(out, f).float() - getattr(ref_out, f)).abs().max().item() for f in POSE_FIELDS)
        vertex_err = (body.vertices - ref_body.vertices).abs().max().item()
        results.append(ProbeResult(region, pose_err, vertex_err))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    from h4w_core.model.assets import resolve_assets

    parser = argparse.ArgumentParser(prog="python -m h4w_core.tools.precision_probe", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="release checkpoint (or H4W_CHECKPOINT)")
    parser.add_argument("--smplx-dir", help="folder with SMPLX_NEUTRAL.npz (or H4W_SMPLX_DIR)")
    parser.add_argument("--crop-npz", help="an npz with 'input_patch' (3, 512, 384), e.g. the parity reference; "
                        "default: a crop of the stand-in sequence's first frame")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:  # the stand-in's heads are nearly constant, so it would say nothing: real weights only
        assets = resolve_assets(args.checkpoint, args.smplx_dir, allow_standin=False)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    estimator = WholeBodyEstimator(assets.checkpoint, assets.smplx_dir)
    if args.crop_npz:
        crop = torch.from_numpy(np.load(args.crop_npz)["input_patch"][None].astype(np.float32))
    else:
        from h4w_core.testing.sequence import make_crowd_sequence

        sequence = make_crowd_sequence(num_frames=2)
        crops, _ = estimator.crops(sequence.frames[0], sequence.gt_boxes[0][:1])
        crop = torch.from_numpy(crops[0].patch[None])
    print(f"bounds: poses {POSE_BOUND_RAD} rad, vertices {VERTEX_BOUND_M * 1000:.0f} mm (against eager fp32)")
    print(f"{'bf16 in':24s} {'poses (rad)':>12s} {'vertices (mm)':>14s}  within")
    for r in probe(estimator, crop):
        print(f"{r.region:24s} {r.pose_err_rad:12.4f} {r.vertex_err_m * 1000:14.2f}  {'yes' if r.within_bounds else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
