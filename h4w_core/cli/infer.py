"""h4w-infer: whole-body SMPL-X meshes for the people in one image."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from h4w_core.cli.common import fail, setup_logging
from h4w_core.inference.camera import Intrinsics
from h4w_core.inference.estimator import WholeBodyEstimator, results_to_arrays
from h4w_core.inference.preprocess import InvalidBoxError
from h4w_core.io.meshio import write_obj
from h4w_core.io.render import render_overlay
from h4w_core.model.assets import resolve_assets
from h4w_core.model.body_model import AssetNotFoundError
from h4w_core.model.checkpoint import CheckpointError

LOG = logging.getLogger("h4w-infer")


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x, y, w, h = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bbox must be x,y,w,h (four numbers), got {text!r}") from None
    if not (w > 0 and h > 0):
        raise argparse.ArgumentTypeError(f"--bbox width and height must be positive, got {text!r}")
    return x, y, w, h


def parse_intrinsics(text: str) -> Intrinsics:
    try:
        return Intrinsics.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="h4w-infer",
        description="Hand4Whole whole-body SMPL-X estimation for the people (boxes) in one image.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--image", required=True, type=Path, help="input image (any format OpenCV reads)")
    p.add_argument("--bbox", action="append", type=parse_bbox, required=True, help="person box x,y,w,h in pixels; repeat per person")
    p.add_argument("--checkpoint", type=Path, default=None, help="released snapshot_6.pth.tar (stand-in when omitted together with --smplx-dir)")
    p.add_argument("--smplx-dir", type=Path, default=None, help="folder with SMPLX_NEUTRAL.npz")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--intrinsics", type=parse_intrinsics, default=None, help="real camera fx,fy,cx,cy in pixels (default: focal max(W,H), centred)")
    p.add_argument("--output", required=True, type=Path, help="output .npz")
    p.add_argument("--obj", type=Path, default=None, help="folder for one OBJ mesh per person (real-camera frame)")
    p.add_argument("--overlay", type=Path, default=None, help="PNG with the projected meshes drawn over the image")
    p.add_argument("--no-standin", action="store_true", help="fail instead of using stand-in assets")
    return p


def run(args: argparse.Namespace) -> int:
    image = cv2.imread(str(args.image), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {args.image} (missing, unreadable or not an image)")
    assets = resolve_assets(args.checkpoint, args.smplx_dir, allow_standin=not args.no_standin)
    estimator = WholeBodyEstimator(assets.checkpoint, assets.smplx_dir, device=args.device)
    height, width = image.shape[:2]
    intrinsics = args.intrinsics or Intrinsics.default_for(width, height)
    if args.intrinsics is None:
        LOG.warning("no --intrinsics given: assuming fx=fy=%.0f, cx=%.1f, cy=%.1f", intrinsics.fx, intrinsics.cx, intrinsics.cy)
    results = estimator.predict(image, args.bbox, channel_order="bgr", intrinsics=intrinsics)
    arrays = results_to_arrays(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.output, **arrays, faces=estimator.faces.astype(np.int32), standin=np.array(assets.standin),
        intrinsics=np.array([intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy], np.float32),
    )
    print(f"wrote {args.output} ({len(results)} person(s))")
    if args.obj is not None:
        for i, r in enumerate(results):
            print(f"wrote {write_obj(args.obj / f'person_{i}.obj', r.vertices, estimator.faces)}")
    if args.overlay is not None:
        args.overlay.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(args.overlay), render_overlay(image, results, estimator.faces, intrinsics, assets.standin)):
            raise OSError(f"cannot write overlay {args.overlay}")
        print(f"wrote {args.overlay}")
    if assets.standin:
        print("NOTE: these outputs come from STAND-IN assets (see the warning above).", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    setup_logging(default=logging.INFO)
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (FileNotFoundError, AssetNotFoundError, CheckpointError, InvalidBoxError, ValueError, OSError, RuntimeError) as exc:
        return fail("h4w-infer", 1, exc)


if __name__ == "__main__":
    sys.exit(main())
