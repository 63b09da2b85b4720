"""Emulated backend (``emulated``): recorded network outputs after a fixed, GIL-releasing delay.

This backend does NOT run the network. It exists to measure the node's own costs (image
conversion, cropping, tracking, smoothing, posing, message building, DDS) under a network call
that takes a known time and, like a GPU call, releases the GIL while it waits (``time.sleep``),
so other Python threads (the executor receiving images, publishing) run meanwhile.

Its outputs do not depend on the image: every call returns the same recorded single-person
outputs, repeated once per crop (float32 tensors on the CPU). Poses, boxes and meshes built from
them are therefore meaningless as estimates; only their shapes and costs are real.

    runner = EmulatedRunner("snapshot_6.pth.tar", network_ms=5.0)
    out = runner(crops)   # sleeps 5 ms, returns the recording repeated crops.shape[0] times

Options:

* ``network_ms``: the delay per call in milliseconds (any batch size), default
  ``$H4W_EMULATED_NETWORK_MS`` or 5.0. The node passes no backend options, so with
  ``backend:=emulated`` set the delay through that environment variable.
* ``recording``: an .npz holding the :class:`~h4w_core.model.network.NetworkOutput` fields
  (leading dimension 1; only the first row is used otherwise), default
  ``$H4W_EMULATED_RECORDING``. Without one, the real eager network of ``checkpoint`` is run once
  on a synthetic crop at construction and its outputs are cached under
  ``<cache_dir>/emulated/`` (default cache ``$H4W_CACHE`` or ``~/.cache/h4w``), keyed by the
  checkpoint's SHA-256 and the h4w version, so later runs skip the network.
* ``cache_dir``, ``max_batch``.

Precision fp32 on the CPU only (the recording is fp32; nothing is computed).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

from h4w_core.backends.base import BackendError, BaseRunner

LOG = logging.getLogger(__name__)

NETWORK_MS_ENV = "H4W_EMULATED_NETWORK_MS"
RECORDING_ENV = "H4W_EMULATED_RECORDING"
DEFAULT_NETWORK_MS = 5.0


def _network_ms(value: Optional[float]) -> float:
    source = "network_ms"
    if value is None:
        text = os.environ.get(NETWORK_MS_ENV, "").strip()
        if not text:
            return DEFAULT_NETWORK_MS
        source = f"${NETWORK_MS_ENV}"
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{source} must be a number of milliseconds, got {text!r}") from None
    value = float(value)
    if not (value >= 0.0 and value < float("inf")):
        raise ValueError(f"{source} must be a finite number >= 0 (milliseconds), got {value}")
    return value


def record_outputs(checkpoint: Any, path: Path) -> Path:
    """Run the eager network of `checkpoint` on one synthetic crop and save its outputs to `path`."""
    import numpy as np
    import torch

    from h4w_core.backends.export import load_network, synthetic_crop

    LOG.info("emulated backend: recording the network's outputs of %s once (into %s)", Path(checkpoint).name, path)
    net = load_network(checkpoint)
    with torch.inference_mode():
        out = net(synthetic_crop(1))
    arrays = {k: v.detach().float().cpu().numpy() for k, v in out._asdict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
    return path


def cached_recording(checkpoint: Any, cache_dir: Any = None) -> Path:
    """The recording of `checkpoint` under ``<cache_dir>/emulated/``, recorded now if missing."""
    from h4w_core.backends.export import file_sha256, h4w_version

    checkpoint = Path(checkpoint).expanduser()
    if not checkpoint.is_file():
        from h4w_core.model.checkpoint import CHECKPOINT_HINT

        raise FileNotFoundError(f"checkpoint not found: {checkpoint}. {CHECKPOINT_HINT}")
    if cache_dir is None:
        from h4w_core.model.assets import default_cache_dir

        cache_dir = default_cache_dir()
    version = h4w_version().replace("/", "_")
    path = Path(cache_dir).expanduser() / "emulated" / f"outputs-{file_sha256(checkpoint)[:16]}-v{version}.npz"
    if path.is_file():
        return path
    return record_outputs(checkpoint, path)


def load_recording(path: Any):
    """NetworkOutput of (1, ...) float32 CPU tensors from an .npz of NetworkOutput fields."""
    import numpy as np
    import torch

    from h4w_core.model.network import NetworkOutput

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"emulated backend: recording not found: {path}")
    with np.load(path) as data:
        missing = [k for k in NetworkOutput._fields if k not in data.files]
        if missing:
            raise BackendError(f"emulated backend: recording {path} lacks the NetworkOutput fields {missing}")
        fields = []
        for k in NetworkOutput._fields:
            a = np.asarray(data[k], dtype=np.float32)
            if a.ndim < 1 or a.shape[0] < 1:
                raise BackendError(f"emulated backend: field {k!r} of {path} has no person (shape {a.shape})")
            fields.append(torch.from_numpy(np.ascontiguousarray(a[:1])))
    return NetworkOutput(*fields)


class EmulatedRunner(BaseRunner):
    """Recorded outputs after ``network_ms`` of sleep: for measuring the node, not for estimates."""

    name = "emulated"
    supported = {"cpu": ("fp32",)}

    def __init__(self, checkpoint: Any = None, device: str = "cpu", precision: str = "fp32", *,
                 network_ms: Optional[float] = None, recording: Any = None, cache_dir: Any = None,
                 max_batch: Optional[int] = None):
        super().__init__(device, precision, max_batch)
        self.network_ms = _network_ms(network_ms)
        if recording is None:
            recording = os.environ.get(RECORDING_ENV, "").strip() or None
        if recording is None:
            if checkpoint is None:
                raise ValueError("EmulatedRunner needs a checkpoint (recorded once) or a recording .npz")
            recording = cached_recording(checkpoint, cache_dir)
        self.recording_path = Path(recording)
        self.recording = load_recording(recording)
        self._batches: dict = {}  # batch size -> the recording repeated as numpy arrays, made once
        LOG.warning("emulated backend: network replaced by a %.1f ms sleep returning recorded outputs (%s); "
                    "outputs do not depend on the image", self.network_ms, self.recording_path.name)

    def _infer(self, crops):
        import torch

        from h4w_core.model.network import NetworkOutput

        n = crops.shape[0]
        time.sleep(self.network_ms / 1000.0)  # releases the GIL, as waiting on a GPU does
        if n not in self._batches:
            self._batches[n] = [t.repeat(n, *([1] * (t.dim() - 1))).numpy() for t in self.recording]
        # fresh outputs (a caller may change them) copied by numpy, which keeps the GIL: a torch
        # kernel per field would give it up and wait to get it back (h4w_core.model.tracing)
        return NetworkOutput(*(torch.from_numpy(a.copy()) for a in self._batches[n]))

    def describe(self) -> str:
        return f"{self.name} runner ({self.device}, {self.precision}, {self.network_ms:g} ms sleep)"
