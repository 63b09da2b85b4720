"""Inference backends (TensorRT engine builder and runtime, ...); heavy imports stay lazy.

Registry: one name per backend, each a runner class in its own module (imported on first use, so
a torch-only install never imports onnxruntime or TensorRT)::

    from h4w_core.backends import make_runner
    runner = make_runner("onnxruntime", "snapshot_6.pth.tar", device="cpu", precision="fp32")
    estimator = WholeBodyEstimator(checkpoint, smplx_dir, device="cpu", network=runner)

=================  =======================================================================
``torch``          eager PyTorch (CPU fp32; CUDA fp32 / fp16 / bf16 autocast, optional CUDA graphs)
``torch_compiled`` torch.jit.trace + freeze + optimize_for_inference (oneDNN / cuDNN fusion)
``onnxruntime``    ONNX Runtime: CPU EP; CUDA or TensorRT EP when installed (device 'cuda')
``tensorrt``       TensorRT engine from the exported ONNX, via the engine cache (CUDA only)
``emulated``       no network: recorded outputs after a fixed sleep, for measuring the node's own
                   costs (delay: ``$H4W_EMULATED_NETWORK_MS``; outputs do not depend on the image)
=================  =======================================================================

The runner protocol and the errors live in :mod:`h4w_core.backends.base`; docs/BACKENDS.md has
the tolerances and timings.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Tuple

from h4w_core.backends.base import (
    PRECISIONS,
    BackendError,
    BackendUnavailableError,
    InputValidationError,
    PrecisionError,
    UnknownBackendError,
)

# name -> (module, class): resolved lazily by runner_class()
_REGISTRY: Dict[str, Tuple[str, str]] = {
    "torch": ("h4w_core.backends.torch_runner", "TorchRunner"),
    "torch_compiled": ("h4w_core.backends.torch_runner", "CompiledTorchRunner"),
    "onnxruntime": ("h4w_core.backends.ort_runner", "OnnxRuntimeRunner"),
    "tensorrt": ("h4w_core.backends.trt_runner", "TensorRTNetworkRunner"),
    "emulated": ("h4w_core.backends.emulated", "EmulatedRunner"),
}
BACKENDS: Tuple[str, ...] = tuple(_REGISTRY)


def runner_class(name: str) -> type:
    """The runner class registered as `name` (its module is imported now)."""
    try:
        module, cls = _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownBackendError(
            f"unknown inference backend {name!r}; supported: {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), cls)


def make_runner(name: str, checkpoint: Any, device: str = "cpu", precision: str = "fp32", **options: Any):
    """Build the runner `name` for `checkpoint` (a release .pth.tar; the ONNX-based backends also
    take an exported .onnx) on `device` at `precision`. Backend-specific `options` are listed in
    each runner's docstring; an unknown option is a TypeError from that runner."""
    return runner_class(name)(checkpoint, device=device, precision=precision, **options)


__all__ = [
    "BACKENDS", "PRECISIONS", "BackendError", "BackendUnavailableError", "InputValidationError", "PrecisionError",
    "UnknownBackendError", "make_runner", "runner_class",
]
