"""ONNX Runtime runner (``onnxruntime``): the exported network on the CPU, CUDA or TensorRT EP.

    runner = OnnxRuntimeRunner("snapshot_6.pth.tar", device="cpu")        # exports once, cached
    runner = OnnxRuntimeRunner("h4w.onnx", device="cuda", provider="tensorrt", precision="fp16")

``checkpoint`` is a release checkpoint (exported to ONNX on first use into
``<cache_dir>/onnx/``, keyed by the checkpoint's SHA-256, opset and h4w version, so it is
exported once per machine) or an ``.onnx`` file from ``h4w-export``.

Options: ``provider`` ('cpu' for device cpu; 'cuda' (default) or 'tensorrt' for device cuda),
``threads`` (intra-op threads, default: torch's thread count), ``spinning`` (idle intra-op
threads busy-wait for the next task: faster alone, slower beside other busy threads), ``cache_dir``, ``opset``,
``max_batch``, ``trt_cache_dir`` (TensorRT EP engine cache). Precisions: fp32 on the CPU and
CUDA EPs; fp32 / fp16 on the TensorRT EP (``trt_fp16_enable``). A requested EP that is not
installed or fails to load is an error, never a silent CPU fallback.

Tensors stay torch tensors: inputs and outputs are bound with IOBinding to torch memory on
``device`` (no numpy round trip; zero-copy on CUDA).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from h4w_core.backends.base import (
    BackendError,
    BackendUnavailableError,
    BaseRunner,
    PrecisionError,
)

LOG = logging.getLogger(__name__)

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}


def _import_ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend 'onnxruntime' needs the onnxruntime package (pip install onnxruntime, or "
            f"onnxruntime-gpu for CUDA/TensorRT): {exc}") from exc
    return onnxruntime


def resolve_onnx(checkpoint: Any, cache_dir: Any = None, opset: Optional[int] = None, max_batch: int = 8) -> Path:
    """An .onnx path as is; a checkpoint -> its cached export (exported now if missing)."""
    from h4w_core.backends.export import DEFAULT_OPSET, cached_export

    path = Path(checkpoint).expanduser()
    if path.suffix == ".onnx":
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {path}")
        return path
    return cached_export(path, cache_dir=cache_dir, opset=opset or DEFAULT_OPSET, max_batch=max_batch)


class OnnxRuntimeRunner(BaseRunner):
    name = "onnxruntime"
    supported = {"cpu": ("fp32",), "cuda": ("fp32", "fp16")}

    def __init__(self, checkpoint: Any, device: str = "cpu", precision: str = "fp32", *,
                 provider: Optional[str] = None, threads: Optional[int] = None, spinning: bool = True,
                 cache_dir: Any = None,
                 opset: Optional[int] = None, max_batch: Optional[int] = None,
                 trt_cache_dir: Any = None):
        super().__init__(device, precision, max_batch)
        import torch

        ort = _import_ort()
        provider = provider or ("cpu" if self.device.type == "cpu" else "cuda")
        if provider not in PROVIDERS:
            raise BackendError(f"provider must be one of {sorted(PROVIDERS)}, got {provider!r}")
        if (provider == "cpu") != (self.device.type == "cpu"):
            raise BackendError(f"provider {provider!r} does not execute on device {self.device}")
        if precision == "fp16" and provider != "tensorrt":
            raise PrecisionError(
                "onnxruntime fp16 needs provider='tensorrt' (trt_fp16_enable); the CPU and CUDA EPs "
                "run the fp32 export as is")
        ep = PROVIDERS[provider]
        available = ort.get_available_providers()
        if ep not in available:
            raise BackendUnavailableError(
                f"ONNX Runtime {ort.__version__} here has no {ep} (available: {available}); "
                "install onnxruntime-gpu for CUDA/TensorRT")
        self.provider = provider
        self.onnx_path = resolve_onnx(checkpoint, cache_dir, opset, max_batch or 8)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        providers: List[Any] = [ep]
        if provider == "tensorrt":
            trt_options: Dict[str, Any] = {"device_id": self.device.index, "trt_fp16_enable": precision == "fp16",
                                           "trt_engine_cache_enable": True,
                                           "trt_engine_cache_path": str(trt_cache_dir or self.onnx_path.parent / "ort-trt")}
            providers = [(ep, trt_options), ("CUDAExecutionProvider", {"device_id": self.device.index})]
        elif provider == "cuda":
            providers = [(ep, {"device_id": self.device.index})]
        try:
            self.session = ort.InferenceSession(str(self.onnx_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendError(f"ONNX Runtime could not load {self.onnx_path}: {exc}") from exc
        active = self.session.get_providers()
        if ep not in active:
            raise BackendUnavailableError(
                f"ONNX Runtime did not activate {ep} (active: {active}); check the CUDA/cuDNN/TensorRT "
                "libraries it needs. Not falling back to the CPU silently.")
        self.input_name = self.session.get_inputs()[0].name
        self.outputs = [(o.name, tuple(o.shape)) for o in self.session.get_outputs()]
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        LOG.info("%s: %s on %s (%s)", self.describe(), self.onnx_path.name, active[0], ort.__version__)

    def _infer(self, crops):
        import numpy as np
        import torch

        from h4w_core.backends.base import as_network_output

        n = crops.shape[0]
        dev_type = "cuda" if self.device.type == "cuda" else "cpu"
        dev_id = self.device.index or 0
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()  # ORT reads on its own stream
        binding = self.session.io_binding()
        binding.bind_input(self.input_name, dev_type, dev_id, np.float32, tuple(crops.shape), crops.data_ptr())
        outputs = {}
        for name, shape in self.outputs:
            dims = tuple(n if not isinstance(d, int) else d for d in shape)
            y = torch.empty(dims, dtype=torch.float32, device=self.device)
            binding.bind_output(name, dev_type, dev_id, np.float32, dims, y.data_ptr())
            outputs[name] = y
        self.session.run_with_iobinding(binding)
        return as_network_output(outputs)

    def describe(self) -> str:
        return f"{self.name} runner ({self.device}, {self.precision}, {PROVIDERS[getattr(self, 'provider', 'cpu')]})"

    def close(self) -> None:
        self.session = None
        super().close()

