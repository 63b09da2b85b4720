"""The runner protocol every inference backend implements, its base class and its errors.

A runner maps person crops to network outputs, nothing else::

    runner = make_runner("onnxruntime", "snapshot_6.pth.tar", device="cpu")
    runner.warmup()
    out = runner(crops)          # crops (N, 3, 512, 384) float32 RGB in [0, 1] on runner.device
                                 # -> h4w_core.model.network.NetworkOutput, float32 tensors on runner.device

so any runner plugs into ``WholeBodyEstimator(..., network=runner)`` in place of the eager
network. Public ``__call__`` validates the crops (type, dtype, shape, device, batch limit) and
raises :class:`InputValidationError` instead of copying or casting silently, then calls the
backend's ``_infer`` and records ``inference_time`` (seconds, last call), Polygraphy style.

This module imports neither torch nor any backend library at import time.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Protocol, Tuple, runtime_checkable

from h4w_core.model.constants import CROP_SHAPE

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from h4w_core.model.network import NetworkOutput

PRECISIONS = ("fp32", "fp16", "bf16")


class BackendError(RuntimeError):
    """Base class of the inference-backend errors."""


class UnknownBackendError(BackendError, TypeError):
    """A backend name that is not registered; the message lists the supported ones."""


class BackendUnavailableError(BackendError, ImportError):
    """The backend's library, execution provider or device is missing here."""


class PrecisionError(BackendError, ValueError):
    """A precision the backend cannot honour on this device (never silently replaced)."""


class InputValidationError(BackendError, ValueError):
    """Crops that do not match what the runner executes (dtype, shape, device, batch)."""


@runtime_checkable
class NetworkRunner(Protocol):
    """What WholeBodyEstimator needs from a backend."""

    name: str
    device: Any  # torch.device
    precision: str

    def __call__(self, crops: torch.Tensor) -> NetworkOutput: ...

    def warmup(self) -> None: ...


class BaseRunner:
    """Shared validation, timing, warm-up and lifecycle; subclasses implement ``_infer``.

    Subclasses set ``name`` and ``supported`` (device type -> precisions) and call
    ``super().__init__(device, precision, max_batch)`` before loading anything heavy.
    """

    name = "base"
    supported: Dict[str, Tuple[str, ...]] = {"cpu": ("fp32",)}
    needs_contiguous = True  # False: crops pass with their strides (eager torch handles any layout)

    def __init__(self, device: Any = "cpu", precision: str = "fp32", max_batch: Optional[int] = None):
        import torch

        self.device = torch.device(device)
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailableError(
                    f"backend {self.name!r}: device {str(device)!r} requested but torch sees no CUDA GPU "
                    "(torch.cuda.is_available() is False); use device 'cpu'")
            if self.device.index is None:
                self.device = torch.device("cuda", torch.cuda.current_device())
        allowed = self.supported.get(self.device.type)
        if allowed is None:
            raise BackendUnavailableError(
                f"backend {self.name!r} runs on {sorted(self.supported)}, not on device {str(device)!r}")
        if precision not in allowed:
            raise PrecisionError(
                f"backend {self.name!r} on {self.device.type} supports precision {list(allowed)}, "
                f"not {precision!r}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.precision = precision
        self.max_batch = max_batch
        self.inference_time: Optional[float] = None
        self.closed = False

    # ---------------------------------------------------------------------------- inference
    def __call__(self, crops: torch.Tensor) -> NetworkOutput:
        if self.closed:
            raise BackendError(f"{self.describe()} is closed")
        crops = self.validate(crops)
        start = time.perf_counter()
        out = self._infer(crops)
        self.inference_time = time.perf_counter() - start
        return out

    def _infer(self, crops: torch.Tensor) -> NetworkOutput:
        raise NotImplementedError

    def validate(self, crops: Any) -> torch.Tensor:
        import torch

        if not isinstance(crops, torch.Tensor):
            raise InputValidationError(f"crops must be a torch.Tensor, got {type(crops).__name__}")
        if crops.dtype != torch.float32:
            raise InputValidationError(
                f"crops must be float32 RGB in [0, 1], got {crops.dtype} (the runner handles "
                f"precision {self.precision!r} itself)")
        if crops.dim() != 4 or tuple(crops.shape[1:]) != CROP_SHAPE:
            raise InputValidationError(
                f"crops must have shape (N, {', '.join(map(str, CROP_SHAPE))}), got {tuple(crops.shape)}")
        n = crops.shape[0]
        if n < 1:
            raise InputValidationError("crops hold no person (batch 0); skip the call instead")
        if self.max_batch is not None and n > self.max_batch:
            raise InputValidationError(
                f"batch {n} exceeds this runner's max_batch {self.max_batch} (make the runner with a "
                "larger max_batch, or split the batch)")
        if crops.device != self.device:
            raise InputValidationError(
                f"crops are on {crops.device}, runner {self.name!r} executes on {self.device} "
                "(move them with .to(runner.device); runners do not copy silently)")
        if self.needs_contiguous and not crops.is_contiguous():
            crops = crops.contiguous()
        return crops

    # ------------------------------------------------------------------------------ helpers
    def warmup(self, batch: int = 1, iterations: int = 2) -> None:
        """Run a mid-grey batch `iterations` times (first-call allocations, kernel selection)."""
        import torch

        crops = torch.full((batch, *CROP_SHAPE), 0.5, dtype=torch.float32, device=self.device)
        for _ in range(iterations):
            self(crops)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> str:
        return f"{self.name} runner ({self.device}, {self.precision})"

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> BaseRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


def as_network_output(tensors: Any, device: Any = None) -> NetworkOutput:
    """NetworkOutput of float32 tensors from a sequence in OUTPUT order or a name -> tensor dict."""
    from h4w_core.model.network import NetworkOutput

    if isinstance(tensors, dict):
        missing = [k for k in NetworkOutput._fields if k not in tensors]
        if missing:
            raise BackendError(f"backend outputs lack {missing}")
        tensors = [tensors[k] for k in NetworkOutput._fields]
    out = []
    for t in tensors:
        t = t.float()
        if device is not None:
            t = t.to(device)
        out.append(t)
    return NetworkOutput(*out)
