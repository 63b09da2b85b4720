"""A module run as TorchScript graphs traced per batch size, so one call takes Python's GIL once.

Why: an eager SMPL-X forward with placement is some 700 small torch calls, each of which gives
up the GIL and must take it back. In a process whose other threads run Python (the ROS
executor, message building), each take-back can wait a whole switch interval (5 ms): measured
on a 2-core machine, posing one person took 8.5 ms alone and 2 s beside one busy Python thread.
A traced graph runs the same kernels in C++ and takes the GIL back once (10-30 ms there).

Modules that read the batch size from shapes (smplx does) trace to constants, so each batch
size gets its own trace, made on first use and checked against the eager module on that call
(a call whose eager outputs are not finite checks nothing: the trace waits for a later call);
a size whose trace fails or disagrees runs eager from then on (said once in the log).
"""
from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

LOG = logging.getLogger(__name__)

TRACE_TOLERANCE = 1e-5  # largest difference accepted between a trace and eager (the same kernels give 0)


class TracedByBatch:
    """``module(*tensors)`` through a cached trace for the batch size, device and dtype of the first tensor.

    ``wrap`` turns the graph's tuple back into the module's output type (a NamedTuple's constructor).
    """

    def __init__(self, module: nn.Module, wrap: Callable[..., Any]):
        self.module = module
        self.wrap = wrap
        self._graphs: dict[tuple, torch.jit.ScriptModule | None] = {}
        self._lock = threading.Lock()

    @torch.no_grad()
    def __call__(self, *args: torch.Tensor):
        key = (args[0].shape[0], args[0].device, args[0].dtype)
        graph = self._graphs.get(key, False)
        if graph is False:
            with self._lock:
                return self._trace(key, args)
        if graph is None:
            return self.module(*args)
        return self.wrap(*graph(*args))

    def _trace(self, key: tuple, args: tuple):
        eager = self.module(*args)
        if key in self._graphs:  # traced by another thread meanwhile
            return eager
        if not all(torch.isfinite(t).all() for t in eager):
            return eager  # nothing to check a trace against: trace on a later call
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TracerWarnings: shape reads become constants, as intended
                graph = torch.jit.trace(self.module, tuple(args), check_trace=False)
            for _ in range(2):  # the first runs of a graph profile it; later ones run what it optimised
                traced = self.wrap(*graph(*args))
            names = getattr(eager, "_fields", range(len(eager)))
            differ = [name for name, a, b in zip(names, traced, eager)
                      if not torch.allclose(a, b, rtol=0.0, atol=TRACE_TOLERANCE, equal_nan=True)]
            if differ:
                raise ValueError(f"traced outputs {differ} differ from eager by more than {TRACE_TOLERANCE:g}")
        except Exception as exc:  # a failed trace only costs speed
            LOG.warning("%s for batch %d runs eager (slower beside other Python threads): tracing failed: %s: %s",
                        type(self.module).__name__, key[0], type(exc).__name__, exc)
            graph = None
        self._graphs[key] = graph
        return eager
