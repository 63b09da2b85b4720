"""PyTorch runners: eager (``torch``) and traced-and-frozen (``torch_compiled``).

``torch`` options: ``network`` (an already-built Hand4WholeNet; the checkpoint is then not read),
``cuda_graphs`` (CUDA only: one captured graph per batch size, replayed on later calls),
``channels_last`` (NHWC weights and input; sometimes faster on GPUs).
Precisions: CPU ``fp32``; CUDA ``fp32`` (TF32 off), ``fp16`` and ``bf16`` (torch.autocast).
bf16 autocast is refused on CPU: on the parity fixture it moves poses by up to 4.6 rad
(docs/BACKENDS.md), far outside the 0.005 rad accuracy bound of a faster backend.

``torch_compiled`` (fp32), two modes:

* ``mode="jit"`` (default): ``torch.jit.trace`` (at batch ``trace_batch``; the traced graph keeps
  the batch dimension symbolic) + ``torch.jit.freeze`` (folds BatchNorm into the convolutions,
  inlines the weights) + ``torch.jit.optimize_for_inference`` (oneDNN convolution/ReLU fusion with
  pre-packed weights on CPU, cuDNN fusion on CUDA). About 5-10 s to build on 2 cores.
* ``mode="inductor"``: ``torch.compile`` with inductor freezing (constant folding, oneDNN weight
  prepacking), batch dimension dynamic. As fast as ONNX Runtime on the 2-core CPU, but it compiles
  for about a minute on 2 cores at the first batch-1 call and again at the first batch >= 2
  (kept in inductor's on-disk cache afterwards). torch 2.13's freezing folds BatchNorm into
  ConvTranspose2d along the wrong channel axis when in_channels == out_channels (BoxNet: boxes
  off by up to 170 px); this runner folds those BatchNorms itself first (:func:`fold_deconv_bn`),
  so inductor finds nothing to mis-fold.

torch.compile without freezing was slower than eager on the 2-core CPU (docs/BACKENDS.md).
"""
from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Dict, Optional

from h4w_core.backends.base import BackendError, BaseRunner, as_network_output
from h4w_core.backends.export import tuple_outputs

LOG = logging.getLogger(__name__)


def _load_network(checkpoint: Any, network: Any):
    if network is not None:
        return network.eval()
    from h4w_core.backends.export import load_network

    return load_network(checkpoint)


class TorchRunner(BaseRunner):
    """Eager Hand4WholeNet (the reference against which every other backend is measured)."""

    name = "torch"
    supported = {"cpu": ("fp32",), "cuda": ("fp32", "fp16", "bf16")}
    # Crops keep their strides: the estimator's crops are channels-last in memory and oneDNN picks
    # other kernels for them than for contiguous ones (up to 5e-4 rad apart on the parity crops),
    # so this runner stays bit-identical to calling the network directly.
    needs_contiguous = False

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


def fold_deconv_bn(network: Any) -> Any:
    """A copy of `network` with every ConvTranspose2d -> BatchNorm2d pair (inside an nn.Sequential)
    folded into one ConvTranspose2d with bias; the BatchNorm becomes Identity. Eval-mode exact up
    to fp32 rounding. ConvTranspose2d weights are (in, out/groups, kH, kW): the BN scale goes on
    axis 1 (the axis torch 2.13's inductor freezing gets wrong when in == out)."""
    import copy

    import torch
    from torch import nn

    network = copy.deepcopy(network).eval()
    with torch.no_grad():
        for seq in network.modules():
            if not isinstance(seq, nn.Sequential):
                continue
            for i in range(len(seq) - 1):
                conv, bn = seq[i], seq[i + 1]
                if not (isinstance(conv, nn.ConvTranspose2d) and isinstance(bn, nn.BatchNorm2d)) or conv.groups != 1:
                    continue
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                fused = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                           conv.padding, conv.output_padding, bias=True, dilation=conv.dilation)
                fused.weight.copy_(conv.weight * scale.view(1, -1, 1, 1))
                fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
                seq[i], seq[i + 1] = fused.to(conv.weight.device), nn.Identity()
    return network


class CompiledTorchRunner(BaseRunner):
    """The eager network compiled for inference, fp32 (see the module docstring for the modes).

    Options: ``mode`` ('jit' or 'inductor'), ``network`` (prebuilt Hand4WholeNet), ``trace_batch``
    (jit: 2; any batch runs afterwards), ``optimize`` (jit: also optimize_for_inference),
    ``max_batch``.
    """

    name = "torch_compiled"
    supported = {"cpu": ("fp32",), "cuda": ("fp32",)}
    modes = ("jit", "inductor")

    def __init__(self, checkpoint: Any = None, device: str = "cpu", precision: str = "fp32", *,
                 mode: str = "jit", network: Any = None, trace_batch: int = 2, optimize: bool = True,
                 max_batch: Optional[int] = None):
        super().__init__(device, precision, max_batch)
        import warnings

        import torch

        if mode not in self.modes:
            raise ValueError(f"torch_compiled mode must be one of {self.modes}, got {mode!r}")
        if checkpoint is None and network is None:
            raise ValueError("CompiledTorchRunner needs a checkpoint path or a network")
        self.mode = mode
        net = _load_network(checkpoint, network).to(self.device)
        start = time.perf_counter()
        if mode == "inductor":
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True  # process-wide inductor setting (documented)
            self.module = torch.compile(fold_deconv_bn(net), dynamic=True)
        else:
            example = torch.full((trace_batch, 3, 512, 384), 0.5, device=self.device)
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer warnings about constants are expected
                traced = torch.jit.trace(tuple_outputs(net), (example,), check_trace=False)
                module = torch.jit.freeze(traced)
                if optimize:
                    module = torch.jit.optimize_for_inference(module)
            self.module = module
        self.compile_seconds = time.perf_counter() - start
        LOG.info("%s: prepared in %.1f s", self.describe(), self.compile_seconds)

    def _infer(self, crops):
        import torch

        # inductor: run under no_grad, the configuration measured (docs/BACKENDS.md)
        with torch.no_grad() if self.mode == "inductor" else torch.inference_mode():
            return as_network_output(self.module(crops))

    def describe(self) -> str:
        return f"{self.name} runner ({self.device}, {self.precision}, {getattr(self, 'mode', 'jit')})"
