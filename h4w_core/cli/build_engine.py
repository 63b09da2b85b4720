"""h4w-build-engine: build (or fetch from the cache) a TensorRT engine for an ONNX file.

Prints the engine path on stdout. Exit codes: 0 ok (built or cache hit), 2 bad arguments or missing
file, 3 TensorRT not installed (or older than 8.5), 4 no GPU, 5 ONNX parse failure (unsupported op),
6 build failure (including a precision this flavour/model cannot honour).
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from h4w_core.cli.common import fail, setup_logging

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_TENSORRT = 3
EXIT_NO_GPU = 4
EXIT_PARSE = 5
EXIT_BUILD = 6

PROG = "h4w-build-engine"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Build a TensorRT engine from an ONNX file, cached by model hash, TensorRT "
        "version, GPU, precision, batch profile and workspace.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--onnx", required=True, metavar="PATH", help="ONNX model (from h4w-export)")
    p.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                   help="engine precision; int8 needs Q/DQ nodes in the ONNX")
    p.add_argument("--max-batch", type=int, default=8, help="largest person batch in the profile")
    p.add_argument("--opt-batch", type=int, default=1, help="batch size the profile is tuned for")
    p.add_argument("--workspace-mib", type=int, default=1024, help="builder workspace limit, MiB")
    p.add_argument("--cache-dir", default="~/.cache/h4w/engines", help="engine cache directory")
    p.add_argument("--timing-cache", default=None, metavar="FILE",
                   help="TensorRT timing cache file, loaded and updated (ignored by TensorRT-RTX)")
    p.add_argument("--force", action="store_true", help="rebuild even on a cache hit")
    p.add_argument("-v", "--verbose", action="store_true", help="log cache decisions and TensorRT warnings")
    return p


def _fail(code: int, message: object) -> int:
    return fail(PROG, code, message)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)

    # Lazy: importing the CLI module never imports TensorRT.
    from h4w_core.backends.trt_build import BuildSettings, BuildSettingsError, EngineCache
    from h4w_core.backends.trt_compat import NoGpuError, OnnxParseError, TensorRTError, load_api

    try:
        settings = BuildSettings(
            precision=args.precision,
            max_batch=args.max_batch,
            opt_batch=args.opt_batch,
            min_batch=1,
            workspace_mib=args.workspace_mib,
            timing_cache=args.timing_cache,
        )
    except BuildSettingsError as exc:
        return _fail(EXIT_USAGE, exc)
    try:
        api = load_api()
    except TensorRTError as exc:  # not installed, or older than TensorRT 8.5: no usable TensorRT
        return _fail(EXIT_NO_TENSORRT, exc)
    try:
        cache = EngineCache(args.cache_dir, api)
        path, hit = cache.get_or_build(args.onnx, settings, force=args.force)
    except FileNotFoundError as exc:
        return _fail(EXIT_USAGE, exc)
    except NoGpuError as exc:
        return _fail(EXIT_NO_GPU, exc)
    except OnnxParseError as exc:
        return _fail(EXIT_PARSE, exc)
    except TensorRTError as exc:  # EngineBuildError included
        return _fail(EXIT_BUILD, exc)
    print(path)
    print(f"{'cache hit' if hit else 'built'}: {api.label}, {args.precision}, "
          f"batch 1/{args.opt_batch}/{args.max_batch}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
