"""Execute a serialised TensorRT engine on torch CUDA tensors (no pycuda).

    with TensorRTRunner("model.engine") as runner:
        out = runner.infer({"image": x_cuda})      # dict[str, torch.Tensor] on the same device

Inputs are checked against the engine (names, dtypes, device, rank, static dims, batch within the
optimisation profile) and mismatches raise :class:`InputMismatchError`. Outputs are allocated as
torch tensors once input shapes are set, and the engine is enqueued on
``torch.cuda.current_stream()``, so results are ordered with the caller's torch work.

Execution uses the tensor-name API (``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``), which every supported TensorRT (>= 8.5) and TensorRT-RTX has.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, List, Optional, Tuple

from h4w_core.backends.trt_compat import (
    EngineLoadError,
    InputMismatchError,
    IOTensor,
    NoGpuError,
    TensorRTError,
    TrtApi,
    cuda_available,
    load_api,
)

LOG = logging.getLogger(__name__)


class RunnerStateError(TensorRTError):
    """infer() on a deactivated runner, or activate() twice."""


class TensorRTRunner:
    """Polygraphy-style runner: ``activate`` / ``infer`` / ``deactivate``, or use ``with``.

    ``infer`` activates on first use. ``runtime_cache`` (TensorRT-RTX only) is a file that keeps
    JIT-compiled kernels between runs; it is loaded on activate and written on deactivate.
    """

    def __init__(self, engine_path: str, device: str = "cuda", name: Optional[str] = None,
                 api: Optional[TrtApi] = None, runtime_cache: Optional[str] = None):
        self.engine_path = str(engine_path)
        self.name = name or f"trt-runner:{os.path.basename(self.engine_path)}"
        if not cuda_available():
            raise NoGpuError(
                "TensorRTRunner needs a CUDA GPU visible to torch (torch.cuda.is_available() is "
                "False); engines can be built without one, but not executed"
            )
        import torch

        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise NoGpuError(f"TensorRTRunner executes on CUDA devices only, got device={device!r}")
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self._api = api
        self.runtime_cache = runtime_cache
        self.is_active = False
        self.inference_time: Optional[float] = None
        self._engine = self._context = self._runtime = None
        self._runtime_config = self._runtime_cache_obj = None
        self._inputs: List[IOTensor] = []
        self._outputs: List[IOTensor] = []

    # ------------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> TensorRTRunner:
        self.activate()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.deactivate()

    def activate(self) -> None:
        if self.is_active:
            raise RunnerStateError(f"{self.name} is already active")
        import torch

        api = self._api or load_api()
        self._api = api
        try:
            with open(self.engine_path, "rb") as f:
                blob = f.read()
        except OSError as exc:
            raise EngineLoadError(f"cannot read engine {self.engine_path}: {exc}") from exc
        with torch.cuda.device(self.device):
            self._runtime = api.create_runtime()
            engine = self._runtime.deserialize_cuda_engine(blob)
            if engine is None:
                raise EngineLoadError(
                    f"{api.label} could not deserialize {self.engine_path}: it was built by another "
                    "TensorRT version/flavour or for another GPU, or is corrupt; rebuild it with "
                    "h4w-build-engine (the engine cache does this automatically)"
                )
            self._engine = engine
            self._context = self._create_context(api, engine)
        if self._context is None:
            raise EngineLoadError(f"could not create an execution context for {self.engine_path}")
        ios = api.io_tensors(engine)
        self._inputs = [t for t in ios if t.is_input]
        self._outputs = [t for t in ios if not t.is_input]
        self.is_active = True
        LOG.info("%s active on %s (%s): inputs %s, outputs %s", self.name, self.device, api.label,
                 [t.name for t in self._inputs], [t.name for t in self._outputs])

    def _create_context(self, api: TrtApi, engine: Any) -> Any:
        if self.runtime_cache and api.supports_runtime_cache:
            self._runtime_config = engine.create_runtime_config()
            cache = self._runtime_config.create_runtime_cache()
            if os.path.isfile(self.runtime_cache):
                with open(self.runtime_cache, "rb") as f:
                    if not cache.deserialize(f.read()):
                        LOG.warning("runtime cache %s does not fit this GPU/driver; starting empty",
                                    self.runtime_cache)
            self._runtime_config.set_runtime_cache(cache)
            self._runtime_cache_obj = cache
            return engine.create_execution_context(self._runtime_config)
        if self.runtime_cache:
            LOG.info("%s has no runtime cache; ignoring %s", api.label, self.runtime_cache)
        return engine.create_execution_context()

    def deactivate(self) -> None:
        if not self.is_active:
            return
        if self._runtime_cache_obj is not None and self.runtime_cache:
            from h4w_core.backends.trt_build import _atomic_write
            from h4w_core.backends.trt_compat import host_memory_bytes

            try:
                _atomic_write(self.runtime_cache, host_memory_bytes(self._runtime_cache_obj.serialize()))
            except Exception as exc:  # a cache is an optimisation: never fail shutdown on it
                LOG.warning("could not save runtime cache %s: %s", self.runtime_cache, exc)
        self._context = self._engine = self._runtime = None
        self._runtime_config = self._runtime_cache_obj = None
        self.is_active = False

    # -------------------------------------------------------------------------------- metadata
    def get_input_metadata(self) -> Dict[str, Tuple[Any, Tuple[int, ...]]]:
        """name -> (torch dtype, shape with -1 for the dynamic batch axis)."""
        self._ensure_active()
        return {t.name: (self._api.torch_dtype(t.trt_dtype), t.shape) for t in self._inputs}

    def get_output_metadata(self) -> Dict[str, Tuple[Any, Tuple[int, ...]]]:
        self._ensure_active()
        return {t.name: (self._api.torch_dtype(t.trt_dtype), t.shape) for t in self._outputs}

    def batch_range(self) -> Optional[Tuple[int, int]]:
        """(min, max) batch of the profile, or None for a static engine."""
        self._ensure_active()
        for t in self._inputs:
            if t.profile is not None:
                return t.profile[0][0], t.profile[2][0]
        return None

    def _ensure_active(self) -> None:
        if not self.is_active:
            self.activate()

    # ------------------------------------------------------------------------------- inference
    def infer(self, feed: Dict[str, Any]) -> Dict[str, Any]:
        """Run the engine; returns new output tensors (enqueued on the current torch stream)."""
        self._ensure_active()
        feed = self._validate(feed)
        start = time.perf_counter()
        outputs = self._infer_v3(feed)
        self.inference_time = time.perf_counter() - start
        return outputs

    def _validate(self, feed: Dict[str, Any]) -> Dict[str, Any]:
        import torch

        if not isinstance(feed, dict):
            raise InputMismatchError(f"feed must be a dict name -> torch.Tensor, got {type(feed).__name__}")
        expected = {t.name for t in self._inputs}
        missing = sorted(expected - set(feed))
        extra = sorted(set(feed) - expected)
        if missing or extra:
            raise InputMismatchError(
                f"feed names do not match the engine inputs {sorted(expected)}: "
                f"missing {missing}, unexpected {extra}"
            )
        out = {}
        batches = set()
        for t in self._inputs:
            x = feed[t.name]
            if not isinstance(x, torch.Tensor):
                raise InputMismatchError(f"input {t.name!r} must be a torch.Tensor, got {type(x).__name__}")
            want = self._api.torch_dtype(t.trt_dtype)
            if x.dtype != want:
                raise InputMismatchError(f"input {t.name!r} has dtype {x.dtype}, engine expects {want}")
            if x.device != self.device:
                raise InputMismatchError(
                    f"input {t.name!r} is on {x.device}, runner executes on {self.device} "
                    "(move it with .to(device); the runner does not copy silently)"
                )
            if x.dim() != len(t.shape):
                raise InputMismatchError(
                    f"input {t.name!r} has shape {tuple(x.shape)}, engine expects rank {len(t.shape)} {t.shape}"
                )
            for axis, (got, dim) in enumerate(zip(x.shape, t.shape)):
                if dim != -1 and got != dim:
                    raise InputMismatchError(
                        f"input {t.name!r} has shape {tuple(x.shape)}, engine expects {t.shape} (axis {axis})"
                    )
            if t.profile is not None:
                lo, hi = t.profile[0], t.profile[2]
                for axis, got in enumerate(x.shape):
                    if not lo[axis] <= got <= hi[axis]:
                        raise InputMismatchError(
                            f"input {t.name!r} has shape {tuple(x.shape)}: axis {axis} must be within "
                            f"the engine profile {lo[axis]}..{hi[axis]} (rebuild with a larger --max-batch)"
                        )
                batches.add(int(x.shape[0]))
            out[t.name] = x if x.is_contiguous() else x.contiguous()
        if len(batches) > 1:
            raise InputMismatchError(f"dynamic-batch inputs disagree on batch size: {sorted(batches)}")
        return out

    def _alloc_output(self, t: IOTensor, shape: Tuple[int, ...]) -> Any:
        import torch

        if any(d < 0 for d in shape):
            raise TensorRTError(
                f"output {t.name!r} has data-dependent shape {shape}; not supported by this runner"
            )
        return torch.empty(shape, dtype=self._api.torch_dtype(t.trt_dtype), device=self.device)

    def _infer_v3(self, feed: Dict[str, Any]) -> Dict[str, Any]:
        import torch

        ctx = self._context
        with torch.cuda.device(self.device):
            for t in self._inputs:
                x = feed[t.name]
                if not ctx.set_input_shape(t.name, tuple(x.shape)):
                    raise InputMismatchError(f"TensorRT rejected shape {tuple(x.shape)} for {t.name!r}")
                ctx.set_tensor_address(t.name, x.data_ptr())
            outputs = {}
            for t in self._outputs:
                y = self._alloc_output(t, tuple(int(d) for d in ctx.get_tensor_shape(t.name)))
                ctx.set_tensor_address(t.name, y.data_ptr())
                outputs[t.name] = y
            stream = torch.cuda.current_stream(self.device)
            if not ctx.execute_async_v3(stream.cuda_stream):
                raise TensorRTError(f"{self.name}: execute_async_v3 failed (see TensorRT log)")
        return outputs
