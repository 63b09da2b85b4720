"""h4w-export: the Hand4Whole network to ONNX (crop in; SMPL-X parameters, boxes, joints out).

Prints the ONNX path on stdout and a summary on stderr. The SMPL-X mesh is not in the graph
(licence and design reasons: h4w_core/backends/export.py, docs/BACKENDS.md); --smplx-dir only adds a vertex
check to the verification. Exit codes: 0 ok, 2 bad arguments or missing file, 3 onnx (or torch)
not installed, 4 export or onnx.checker failure, 5 an op TensorRT cannot parse, 6 verification
error above --tolerance.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

from h4w_core.cli.common import fail, setup_logging
from h4w_core.model.constants import SMPLX_PARAM_FIELDS

PROG = "h4w-export"
EXIT_OK, EXIT_USAGE, EXIT_MISSING_DEP, EXIT_EXPORT, EXIT_UNSUPPORTED_OP, EXIT_VERIFY = 0, 2, 3, 4, 5, 6


def build_parser() -> argparse.ArgumentParser:
    from h4w_core.backends.export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET

    p = argparse.ArgumentParser(
        prog=PROG,
        description="Export the Hand4Whole network (checkpoint weights) to ONNX with a dynamic "
        "person-batch axis, checked with onnx.checker and against TensorRT's op list.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="release snapshot_6.pth.tar (default: $H4W_CHECKPOINT, else the stand-in)")
    p.add_argument("--smplx-dir", type=Path, default=None,
                   help="folder with SMPLX_NEUTRAL.npz: also verify vertices (the mesh is not exported)")
    p.add_argument("--output", "-o", type=Path, default=Path("h4w.onnx"), help="ONNX file to write")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (17: parses on TensorRT 8.5+ / JetPack 5)")
    p.add_argument("--max-batch", type=int, default=8,
                   help="largest person batch intended (metadata hint for h4w-build-engine; the axis stays dynamic)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs torch check (batch 1 and 2)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="fail (exit 6) if a pose/cam/betas/expression output differs from torch by more")
    p.add_argument("--no-tensorrt-rewrites", action="store_true",
                   help="keep IsInf nodes (TensorRT < 8.6 cannot parse them) and skip the op check")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _fail(code: int, message: object) -> int:
    return fail(PROG, code, message)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        from h4w_core.backends.export import (
            ExportError,
            ExportSettingsError,
            MissingDependencyError,
            UnsupportedOpError,
            export_onnx,
        )
    except ImportError as exc:  # torch missing
        return _fail(EXIT_MISSING_DEP, exc)
    from h4w_core.model.checkpoint import CheckpointError

    checkpoint = args.checkpoint or (Path(os.environ["H4W_CHECKPOINT"]) if os.environ.get("H4W_CHECKPOINT") else None)
    smplx_dir = args.smplx_dir
    try:
        if checkpoint is None:
            if smplx_dir is not None:
                return _fail(EXIT_USAGE, "--checkpoint is required with --smplx-dir (no mixing with stand-ins)")
            from h4w_core.model.assets import ensure_standin_assets

            print(f"{PROG}: note: no --checkpoint: exporting the STAND-IN (random-weight) network",
                  file=sys.stderr)
            checkpoint = ensure_standin_assets().checkpoint
        elif smplx_dir is not None:
            from h4w_core.model.body_model import find_smplx_file

            find_smplx_file(smplx_dir)
    except FileNotFoundError as exc:
        return _fail(EXIT_USAGE, exc)
    except ImportError as exc:  # stand-in generator not available
        return _fail(EXIT_MISSING_DEP, f"cannot make the stand-in checkpoint ({exc}); pass --checkpoint")
    verbose = args.verbose
    progress = (lambda msg: print(f"{PROG}: {msg}", file=sys.stderr)) if verbose else None
    batches = sorted({1, min(2, max(args.max_batch, 1))})
    try:
        result = export_onnx(
            checkpoint, args.output, opset=args.opset, max_batch=args.max_batch, verify=not args.no_verify,
            verify_batches=batches, smplx_dir=smplx_dir, tensorrt_rewrites=not args.no_tensorrt_rewrites,
            progress=progress,
        )
    except ExportSettingsError as exc:
        return _fail(EXIT_USAGE, exc)
    except (FileNotFoundError, CheckpointError) as exc:
        return _fail(EXIT_USAGE, exc)
    except MissingDependencyError as exc:
        return _fail(EXIT_MISSING_DEP, exc)
    except UnsupportedOpError as exc:
        return _fail(EXIT_UNSUPPORTED_OP, exc)
    except ExportError as exc:
        return _fail(EXIT_EXPORT, exc)
    print(result.path)
    ops = ", ".join(f"{k} {v}" for k, v in result.op_counts.items())
    print(f"{PROG}: {result.size_bytes / 2**20:.1f} MiB, opset {result.opset}, {sum(result.op_counts.values())} "
          f"nodes in {result.seconds:.1f} s; IsInf rewritten: {result.rewritten_nodes}; ops: {ops}", file=sys.stderr)
    if result.verification:
        worst = ", ".join(f"{k} {v:.2g}" for k, v in result.verification.items())
        print(f"{PROG}: max |onnxruntime - torch| at batch {batches}: {worst}", file=sys.stderr)
        checked = SMPLX_PARAM_FIELDS + ("cam_trans",)
        over = {k: v for k, v in result.verification.items() if k in checked and v > args.tolerance}
        if over:
            return _fail(EXIT_VERIFY, f"outputs differ from torch by more than {args.tolerance}: {over}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
