"""h4w-infer: whole-body SMPL-X meshes for the people in one image.

Failures are one line on stderr and a non-zero exit: argparse's usage error (exit 2) for bad
arguments (boxes, intrinsics, output names), 'h4w-infer: error: ...' (exit 1) for everything else
(image, assets, estimation, writing). Outputs are all or nothing: each file is written to a
temporary sibling and moved into place only once every output is ready, and a failure removes
whatever the run wrote. An exception of a type no step is expected to raise (a bug) is still
reported in one line, naming its type; set H4W_DEBUG=1 to get its traceback instead.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from h4w_core.cli.common import MAX_IMAGE_PIXELS, StagedOutputs, fail, read_image, setup_logging
from h4w_core.inference.camera import Intrinsics
from h4w_core.inference.estimator import WholeBodyEstimator, results_to_arrays
from h4w_core.io.meshio import write_obj
from h4w_core.io.render import render_overlay  # h4w_ros.node imports it from here too
from h4w_core.model.assets import resolve_assets

PROG = "h4w-infer"
LOG = logging.getLogger(PROG)

NEGATIVE_VALUE_OPTIONS = ("--bbox", "--intrinsics")  # values may start with '-': -50,10,200,300
NEGATIVE_NUMBER = re.compile(r"-\.?\d")
PRINCIPAL_POINT_RANGE = 10.0  # |cx| <= 10 W and |cy| <= 10 H: beyond that it is a broken camera, not a crop


class EstimationError(RuntimeError):
    """The network or the body model failed on valid inputs (a malformed model file, memory)."""


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        x, y, w, h = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bbox must be x,y,w,h (four numbers), got {text!r}") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise argparse.ArgumentTypeError(f"--bbox values must be finite numbers, got {text!r}")
    if not (w > 0 and h > 0):
        raise argparse.ArgumentTypeError(f"--bbox width and height must be positive, got {text!r}")
    return x, y, w, h


def parse_intrinsics(text: str) -> Intrinsics:
    try:
        return Intrinsics.parse(text)  # InvalidIntrinsicsError: not finite, focal <= 0 or > 1e6 px
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Hand4Whole whole-body SMPL-X estimation for the people (boxes) in one image.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--image", required=True, type=Path, help=f"input image (any format OpenCV reads, at most {MAX_IMAGE_PIXELS / 1e6:g} megapixels)")
    p.add_argument("--bbox", action="append", type=parse_bbox, required=True, help="person box x,y,w,h in pixels; repeat per person")
    p.add_argument("--checkpoint", type=Path, default=None, help="released snapshot_6.pth.tar (stand-in when omitted together with --smplx-dir)")
    p.add_argument("--smplx-dir", type=Path, default=None, help="folder with SMPLX_NEUTRAL.npz")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--intrinsics", type=parse_intrinsics, default=None, help="real camera fx,fy,cx,cy in pixels (default: focal max(W,H), centred)")
    p.add_argument("--output", required=True, type=Path, help="output .npz ('.npz' is appended when missing)")
    p.add_argument("--obj", type=Path, default=None, help="folder for one OBJ mesh per person (real-camera frame)")
    p.add_argument("--overlay", type=Path, default=None, help="picture (.png, .jpg, ...) with the projected meshes drawn over the image")
    p.add_argument("--no-standin", action="store_true", help="fail instead of using stand-in assets")
    return p


def join_negative_values(argv: list[str]) -> list[str]:
    """'--bbox -50,10,200,300' -> '--bbox=-50,10,200,300' (argparse takes '-50,...' for an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in NEGATIVE_VALUE_OPTIONS and i + 1 < len(argv) and NEGATIVE_NUMBER.match(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def check_output_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse output names that could only fail after writing (usage errors, before any work)."""
    if args.output.is_dir():
        parser.error(f"argument --output: {args.output} is a folder; give a file name such as {args.output / 'result.npz'}")
    if args.output.suffix != ".npz":  # numpy appends .npz anyway: name the file it really writes
        args.output = args.output.with_name(args.output.name + ".npz")
    if args.obj is not None and args.obj.exists() and not args.obj.is_dir():
        parser.error(f"argument --obj: {args.obj} exists and is not a folder")
    if args.overlay is not None and not cv2.haveImageWriter(str(args.overlay)):
        parser.error(f"argument --overlay: OpenCV cannot write {args.overlay.suffix or 'extension-less'!r} pictures "
                     f"({args.overlay}); use .png or .jpg")


def principal_point_problem(intrinsics: Intrinsics, width: int, height: int) -> str | None:
    limit = PRINCIPAL_POINT_RANGE
    if abs(intrinsics.cx) > limit * width or abs(intrinsics.cy) > limit * height:
        return (f"argument --intrinsics: principal point cx={intrinsics.cx:g}, cy={intrinsics.cy:g} lies far outside the "
                f"{width}x{height} image (|cx| must be <= {limit:g}*width, |cy| <= {limit:g}*height)")
    return None


def run(args: argparse.Namespace, image: np.ndarray, intrinsics: Intrinsics) -> int:
    assets = resolve_assets(args.checkpoint, args.smplx_dir, allow_standin=not args.no_standin)
    estimator = WholeBodyEstimator(assets.checkpoint, assets.smplx_dir, device=args.device)
    if args.intrinsics is None:
        LOG.warning("no --intrinsics given: assuming fx=fy=%.0f, cx=%.1f, cy=%.1f", intrinsics.fx, intrinsics.cx, intrinsics.cy)
    try:
        results = estimator.predict(image, args.bbox, channel_order="bgr", intrinsics=intrinsics)
    except (RuntimeError, IndexError) as exc:  # tensor shape/index errors: what a malformed model file gives
        raise EstimationError(f"estimation failed ({type(exc).__name__}: {exc}); check the SMPL-X model file "
                              f"{estimator.body_model.model_path} and the checkpoint {assets.checkpoint}") from exc
    arrays = results_to_arrays(results)
    overlay = None
    if args.overlay is not None:  # encoded before anything is written
        ok, overlay = cv2.imencode(args.overlay.suffix, render_overlay(image, results, estimator.faces, intrinsics, assets.standin))
        if not ok:
            raise OSError(f"cannot encode the overlay as {args.overlay.suffix} ({args.overlay})")
    outputs = StagedOutputs()
    try:
        with open(outputs.stage(args.output), "wb") as f:  # a file object: numpy adds no suffix
            np.savez(
                f, **arrays, faces=estimator.faces.astype(np.int32), standin=np.array(assets.standin),
                intrinsics=np.array([intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy], np.float32),
            )
        objs = []
        if args.obj is not None:
            for i, r in enumerate(results):
                objs.append(args.obj / f"person_{i}.obj")
                write_obj(outputs.stage(objs[-1]), r.vertices, estimator.faces)
        if overlay is not None:
            outputs.stage(args.overlay).write_bytes(overlay.tobytes())
        outputs.commit()
    except BaseException:
        outputs.discard()
        raise
    print(f"wrote {args.output} ({len(results)} person(s))")
    for path in objs:
        print(f"wrote {path}")
    if overlay is not None:
        print(f"wrote {args.overlay}")
    if assets.standin:
        print("NOTE: these outputs come from STAND-IN assets (see the warning above).", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    setup_logging(default=logging.INFO)
    parser = build_parser()
    args = parser.parse_args(join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    check_output_paths(parser, args)
    try:
        image = read_image(args.image)
        height, width = image.shape[:2]
        intrinsics = args.intrinsics or Intrinsics.default_for(width, height)
        problem = principal_point_problem(intrinsics, width, height)
        if problem:
            parser.error(problem)
        return run(args, image, intrinsics)
    # every failure the steps report: missing files and assets (FileNotFoundError, AssetNotFoundError),
    # write errors (OSError); bad images, boxes, checkpoints and SMPL-X files (ImageReadError,
    # InvalidBoxError, CheckpointError, UnsafeModelFileError: ValueError); no CUDA, EstimationError (RuntimeError)
    except (OSError, ValueError, RuntimeError) as exc:
        return fail(PROG, 1, exc)
    except KeyboardInterrupt:
        return fail(PROG, 130, "interrupted")
    except Exception as exc:  # safety net, by design: a bug still ends in one line naming its type
        if os.environ.get("H4W_DEBUG"):
            raise
        return fail(PROG, 1, f"unexpected {type(exc).__name__}: {exc} (a bug; set H4W_DEBUG=1 for the traceback)")


if __name__ == "__main__":
    sys.exit(main())
