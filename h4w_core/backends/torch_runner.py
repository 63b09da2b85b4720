"""PyTorch runners: eager (``torch``) and traced-and-frozen (``torch_compiled``).

``torch`` options: ``network`` (an already-built Hand4WholeNet; the checkpoint is then not read),
``cuda_graphs`` (CUDA only: one captured graph per batch size, replayed on later calls),
``channels_last`` (NHWC weights and input; sometimes faster on GPUs).
Precisions: CPU ``fp32``; CUDA ``fp32`` (TF32 off), ``fp16`` and ``bf16`` (torch.autocast).
bf16 autocast is refused on CPU: on the parity fixture it moves poses by up to 4.6 rad
(docs/BACKENDS.md), far outside the issue's 0.005 rad bound.

``torch_compiled``: ``torch.jit.trace`` (at batch ``trace_batch``; the traced graph keeps the batch
dimension symbolic) + ``torch.jit.freeze`` (folds BatchNorm into the convolutions, inlines the
weights) + ``torch.jit.optimize_for_inference`` (oneDNN convolution/ReLU fusion with pre-packed
weights on CPU, cuDNN fusion on CUDA). It was the fastest *faithful* torch configuration measured
on the 2-core CPU; torch.compile with inductor freezing was faster but wrong on this network, and
torch.compile without freezing slower than eager (docs/BACKENDS.md). fp32 only.
"""
from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Dict, Optional

from h4w_core.backends.base import BackendError, BaseRunner, as_network_output

LOG = logging.getLogger(__name__)


def _load_network(checkpoint: Any, network: Any):
    if network is not None:
        return network.eval()
    from h4w_core.export import load_network

    return load_network(checkpoint)


class TorchRunner(BaseRunner):
    """Eager Hand4WholeNet (the reference against which every other backend is measured)."""

    name = "torch"
    supported = {"cpu": ("fp32",), "cuda": ("fp32", "fp16", "bf16")}

    def __init__(self, checkpoint: Any = None, device: str = "cpu", precision: str = "fp32", *,
                 network: Any = None, cuda_graphs: bool = False, channels_last: bool = False,
                 max_batch: Optional[int] = None):
        super().__init__(device, precision, max_batch)
        import torch

        if checkpoint is None and network is None:
            raise ValueError("TorchRunner needs a checkpoint path or a network")
        if cuda_graphs and self.device.type != "cuda":
            raise BackendError("cuda_graphs=True needs device 'cuda' (CUDA graphs do not exist on CPU)")
        self.cuda_graphs = cuda_graphs
        self.channels_last = channels_last
        net = _load_network(checkpoint, network).to(self.device)
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.network = net
        self._graphs: Dict[int, Any] = {}  # batch -> (graph, static input, static outputs)
        self._dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)

    @property
    def stage_timer(self):
        """The eager network's per-stage timer hook (h4w_core.bench sets it)."""
        return self.network.stage_timer

    @stage_timer.setter
    def stage_timer(self, value) -> None:
        self.network.stage_timer = value

    def _context(self):
        import torch

        if self._dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._dtype)

    def _forward(self, crops):
        import torch

        if self.channels_last:
            crops = crops.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._context():
            return self.network(crops)

    def _infer(self, crops):
        if self.cuda_graphs:
            return self._replay(crops)
        return as_network_output(self._forward(crops))

    # ------------------------------------------------------------------------- CUDA graphs
    def _capture(self, batch: int):
        import torch

        static_in = torch.full((batch, 3, 512, 384), 0.5, device=self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up on a side stream, as torch.cuda.graphs requires
                self._forward(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
        except RuntimeError as exc:
            raise BackendError(
                f"CUDA graph capture failed at batch {batch}: {exc}. Something in the forward "
                "synchronises with the host during capture (e.g. a tensor built from a Python list "
                "on the GPU); run without cuda_graphs") from exc
        LOG.info("captured a CUDA graph for batch %d", batch)
        return graph, static_in, static_out

    def _replay(self, crops):
        batch = crops.shape[0]
        if batch not in self._graphs:
            self._graphs[batch] = self._capture(batch)
        graph, static_in, static_out = self._graphs[batch]
        static_in.copy_(crops)
        graph.replay()
        # clone: the next replay overwrites the static outputs
        return as_network_output([t.clone() for t in static_out])

    def describe(self) -> str:
        extra = ", CUDA graphs" if self.cuda_graphs else ""
        return f"{self.name} runner ({self.device}, {self.precision}{extra})"

    def close(self) -> None:
        self._graphs.clear()
        super().close()


class _TupleNet:
    """Module wrapper returning a plain tuple (what torch.jit.trace handles)."""

    @staticmethod
    def wrap(network: Any):
        import torch

        class TupleOutputs(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, image):
                return tuple(self.net(image))

        return TupleOutputs(network).eval()


class CompiledTorchRunner(BaseRunner):
    """torch.jit.trace + freeze + optimize_for_inference of the eager network (fp32).

    Options: ``network`` (prebuilt Hand4WholeNet), ``trace_batch`` (2: any batch runs afterwards),
    ``optimize`` (True: also torch.jit.optimize_for_inference), ``max_batch``.
    """

    name = "torch_compiled"
    supported = {"cpu": ("fp32",), "cuda": ("fp32",)}

    def __init__(self, checkpoint: Any = None, device: str = "cpu", precision: str = "fp32", *,
                 network: Any = None, trace_batch: int = 2, optimize: bool = True,
                 max_batch: Optional[int] = None):
        super().__init__(device, precision, max_batch)
        import torch

        if checkpoint is None and network is None:
            raise ValueError("CompiledTorchRunner needs a checkpoint path or a network")
        net = _load_network(checkpoint, network).to(self.device)
        example = torch.full((trace_batch, 3, 512, 384), 0.5, device=self.device)
        start = time.perf_counter()
        import warnings

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about constants are expected
            traced = torch.jit.trace(_TupleNet.wrap(net), (example,), check_trace=False)
            module = torch.jit.freeze(traced)
            if optimize:
                module = torch.jit.optimize_for_inference(module)
        self.module = module
        self.optimize = optimize
        self.compile_seconds = time.perf_counter() - start
        LOG.info("traced and froze the network in %.1f s", self.compile_seconds)

    def _infer(self, crops):
        import torch

        with torch.inference_mode():
            return as_network_output(self.module(crops))
