"""TensorRT runner (``tensorrt``): the runner protocol around trt_runtime.TensorRTRunner.

    runner = TensorRTNetworkRunner("snapshot_6.pth.tar", device="cuda", precision="fp16", max_batch=8)

``checkpoint``: a release checkpoint (exported to ONNX once, cached like the onnxruntime
backend), an ``.onnx`` file from ``h4w-export``, or a serialised ``.engine`` (used as is; it must
have been built for this TensorRT and GPU). ONNX files go through
:class:`~h4w_core.backends.trt_build.EngineCache`, keyed by ONNX hash, TensorRT version, GPU,
precision and batch profile, so an engine is built once per machine.

Options: ``max_batch`` (8), ``opt_batch`` (1), ``workspace_mib`` (1024), ``engine_cache_dir``
(``<cache>/engines``), ``cache_dir`` (ONNX cache), ``opset``, ``timing_cache``. Precisions follow
the builder: fp32 (TF32 off), fp16; int8 needs calibration or Q/DQ (not offered here). CUDA only.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from h4w_core.backends.base import BackendError, BackendUnavailableError, BaseRunner, as_network_output

LOG = logging.getLogger(__name__)


class TensorRTNetworkRunner(BaseRunner):
    name = "tensorrt"
    supported = {"cuda": ("fp32", "fp16")}

    def __init__(self, checkpoint: Any, device: str = "cuda", precision: str = "fp32", *,
                 max_batch: Optional[int] = 8, opt_batch: int = 1, workspace_mib: int = 1024,
                 engine_cache_dir: Any = None, cache_dir: Any = None, opset: Optional[int] = None,
                 timing_cache: Optional[str] = None):
        super().__init__(device, precision, max_batch)
        from h4w_core.backends.trt_compat import TensorRTError, load_api

        try:
            api = load_api()
        except TensorRTError as exc:  # not installed, or older than TensorRT 8.5
            raise BackendUnavailableError(str(exc)) from exc
        path = Path(checkpoint).expanduser()
        try:
            if path.suffix == ".engine":
                if not path.is_file():
                    raise FileNotFoundError(f"engine not found: {path}")
                engine_path = path
            else:
                engine_path = self._engine_for(api, path, cache_dir, opset, engine_cache_dir, opt_batch,
                                               workspace_mib, timing_cache)
            from h4w_core.backends.trt_runtime import TensorRTRunner

            self.runtime = TensorRTRunner(str(engine_path), device=str(self.device), api=api)
            self.runtime.activate()
        except TensorRTError as exc:
            raise BackendError(f"TensorRT backend: {exc}") from exc
        self.engine_path = engine_path
        names = list(self.runtime.get_input_metadata())
        if len(names) != 1:
            raise BackendError(f"engine {engine_path} has inputs {names}; expected one crop input")
        self.input_name = names[0]
        profile = self.runtime.batch_range()
        if profile is not None and (self.max_batch is None or self.max_batch > profile[1]):
            self.max_batch = profile[1]

    def _engine_for(self, api, path, cache_dir, opset, engine_cache_dir, opt_batch, workspace_mib, timing_cache):
        from h4w_core.backends.ort_runner import resolve_onnx
        from h4w_core.backends.trt_build import BuildSettings, EngineCache

        max_batch = self.max_batch or 8
        onnx_path = resolve_onnx(path, cache_dir, opset, max_batch)
        if engine_cache_dir is None:
            from h4w_core.model.assets import default_cache_dir

            engine_cache_dir = default_cache_dir() / "engines"
        settings = BuildSettings(precision=self.precision, max_batch=max_batch, opt_batch=min(opt_batch, max_batch),
                                 workspace_mib=workspace_mib, timing_cache=timing_cache)
        engine_path, hit = EngineCache(engine_cache_dir, api).get_or_build(onnx_path, settings)
        LOG.info("TensorRT engine %s (%s)", engine_path, "cache hit" if hit else "built")
        return Path(engine_path)

    def _infer(self, crops):
        return as_network_output(self.runtime.infer({self.input_name: crops}))

    def close(self) -> None:
        runtime = getattr(self, "runtime", None)
        if runtime is not None:
            runtime.deactivate()
        super().close()
