"""ONNX export of the Hand4Whole network: crop in; SMPL-X parameters, boxes and joints out.

    from h4w_core.backends.export import export_onnx
    result = export_onnx("snapshot_6.pth.tar", "h4w.onnx", opset=17, max_batch=8)

One input ``image`` (batch, 3, 512, 384), RGB float32 in [0, 1] (the reference crop), and the
twelve :class:`~h4w_core.model.network.NetworkOutput` fields as outputs, by the same names, every one
with the dynamic person axis ``batch`` first. The file works with ONNX Runtime and parses in
TensorRT without plugins: hand and face crops are MatMul-based RoIAlign (no ``RoiAlign`` op),
joint sampling is ``GridSample``; :func:`check_tensorrt_ops` refuses anything outside the ops
TensorRT >= 8.5 parses natively and any custom-domain op.

Exporter: ``torch.onnx.export(..., dynamo=False)`` (TorchScript tracing). The network has no
data-dependent control flow (h4w_core.model.geometry is written for this), so tracing is exact; the
dynamo exporter needs ``onnxscript``, which is not a dependency, and brings nothing here.

The SMPL-X mesh is NOT in the graph, on purpose:

* licence: the SMPL-X model data (template, shape, expression and pose blend shapes, skinning
  weights, joint regressor) would be baked into the ONNX file as constants. SMPL-X may not be
  redistributed, so an ONNX file that holds it could not be shared, cached in CI or shipped with
  a robot image; without it the file only carries the network weights (the checkpoint's licence).
* shape of the computation: the smplx layer has data-dependent pieces (the dynamic face contour
  picks landmark triangles from the neck/head angle with index arithmetic) and a 55-joint
  kinematic chain that traces into a long unrolled chain of tiny ops; its big constants
  (posedirs 486 x 31425, shapedirs 31425 x 20, lbs weights 10475 x 55: about 70 MB fp32) would
  sit in the engine and, under FP16 engines, lose precision where it shows (vertex offsets).
* cost: the mesh is a few small matmuls next to three ResNets. Keeping it in torch
  (:class:`h4w_core.model.body_model.BodyModel`, the same code for every backend) makes all backends
  produce vertices the same way, so backend parity is a statement about the network alone.
  The price is a few milliseconds of torch per frame after the network; on GPUs those kernels
  can be captured in a CUDA graph by the caller. See docs/BACKENDS.md.

Metadata travels with the file (``custom_metadata_map`` in ONNX Runtime, ``metadata_props`` in
the ModelProto): model name, h4w version, input/output names and shapes, the checkpoint's SHA-256,
the opset, the batch the export was checked up to, and ``smplx_in_graph = false``. The export has
no timestamp, so the same checkpoint and exporter give the same bytes (the TensorRT engine cache
is keyed by the ONNX file hash).
"""
from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from h4w_core.model.constants import CROP_SHAPE

LOG = logging.getLogger(__name__)

MODEL_NAME = "h4w-hand4whole"
INPUT_NAME = "image"
OUTPUT_NAMES = (
    "global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose", "betas",
    "expression", "cam_trans", "lhand_bbox", "rhand_bbox", "face_bbox", "joint_img",
)
BATCH_AXIS = "batch"
MIN_OPSET = 17  # GridSample needs 16; 17 is what TensorRT 8.5/8.6 (JetPack 5/6) parse
MAX_OPSET = 20  # highest opset torch's TorchScript exporter emits
DEFAULT_OPSET = 17

# ONNX ops that TensorRT >= 8.5 parses natively (onnx-tensorrt docs/operators.md, "Y" rows), so
# an ONNX file made only of these builds on every TensorRT this project supports (8.5 .. 11,
# TensorRT-RTX). RoiAlign is left out on purpose (plugin before 8.6, and the MatMul form is exact).
TENSORRT_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GridSample HardSigmoid HardSwish Identity If InstanceNormalization IsNaN LeakyRelu Less
LessOrEqual Log LogSoftmax Loop LpNormalization LRN MatMul Max MaxPool Mean Min Mod Mul Neg Not
OneHot Or Pad Pow PRelu QuantizeLinear Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape
Resize Round Selu Shape Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth
Split Sqrt Squeeze Sub Sum Tan Tanh Tile TopK Transpose Trilu Unsqueeze Where Xor
""".split())

FLT_MAX = 3.4028234663852886e38

OUTPUT_UNITS = {
    "global_orient": "axis-angle rad (N,3)", "body_pose": "axis-angle rad (N,63)",
    "left_hand_pose": "axis-angle rad (N,45), relative to the hand mean",
    "right_hand_pose": "axis-angle rad (N,45), relative to the hand mean",
    "jaw_pose": "axis-angle rad (N,3)", "betas": "(N,10)", "expression": "(N,10)",
    "cam_trans": "metres (N,3), virtual camera of the crop",
    "lhand_bbox": "x1 y1 x2 y2 px of the 384x512 crop (N,4)", "rhand_bbox": "x1 y1 x2 y2 px (N,4)",
    "face_bbox": "x1 y1 x2 y2 px (N,4)", "joint_img": "body-heatmap units (N,65,3)",
}


class ExportError(RuntimeError):
    """The ONNX export or its checks failed."""


class ExportSettingsError(ExportError, ValueError):
    """Bad export arguments (opset out of range, batch sizes)."""


class UnsupportedOpError(ExportError):
    """The exported graph holds ops TensorRT does not parse natively (or custom-domain ops)."""


class MissingDependencyError(ExportError, ImportError):
    """``onnx`` (or ``onnxruntime`` for verification) is not installed."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    opset: int
    op_counts: Dict[str, int]
    metadata: Dict[str, str]
    seconds: float
    size_bytes: int
    rewritten_nodes: int = 0
    verification: Dict[str, float] = field(default_factory=dict)  # output name -> max abs err


def h4w_version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("h4w")
    except PackageNotFoundError:
        return "unknown"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependencyError(f"h4w-export needs the `onnx` package (pip install onnx): {exc}") from exc
    return onnx


def _validate_settings(opset: int, max_batch: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportSettingsError(f"opset must be within {MIN_OPSET}..{MAX_OPSET}, got {opset}")
    if max_batch < 1:
        raise ExportSettingsError(f"max_batch must be >= 1, got {max_batch}")


def tuple_outputs(network: Any):
    """nn.Module returning the NetworkOutput as a plain tuple (what the exporter traces)."""
    from torch import nn

    class TupleOutputs(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, image):
            return tuple(self.net(image))

    return TupleOutputs(network).eval()


def load_network(checkpoint: str | os.PathLike):
    """Hand4WholeNet with the checkpoint's weights, eval mode, CPU fp32."""
    from h4w_core.model.checkpoint import load_network_weights
    from h4w_core.model.network import Hand4WholeNet

    net = Hand4WholeNet()
    load_network_weights(net, checkpoint)
    return net.eval()


# ------------------------------------------------------------------------------- graph passes
def _max_finite(elem_type: int) -> Optional[float]:
    from onnx import TensorProto

    return {TensorProto.FLOAT: FLT_MAX, TensorProto.FLOAT16: 65504.0,
            TensorProto.DOUBLE: 1.7976931348623157e308}.get(elem_type)


def rewrite_for_tensorrt(model: Any) -> int:
    """Replace IsInf (from torch.nan_to_num; TensorRT 8.5 has no IsInf) by exact comparisons.

    IsInf(x) == Greater(x, MAX) | Less(x, -MAX), MAX the largest finite value of x's type, each
    side only where detect_positive / detect_negative ask for it: true exactly for the
    infinities, false for NaN, as IsInf. The exporter feeds IsInf through a Cast to DOUBLE; a
    float -> double cast keeps every value, so the comparison reads the float tensor and the
    orphaned Cast is dropped (TensorRT has only limited DOUBLE support). Returns how many IsInf
    nodes were replaced.
    """
    onnx = _import_onnx()
    from onnx import TensorProto, helper

    graph = model.graph
    if not any(n.op_type == "IsInf" for n in graph.node):
        return 0
    inferred = onnx.shape_inference.infer_shapes(model)
    elem = {v.name: v.type.tensor_type.elem_type
            for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    elem.update({t.name: t.data_type for t in graph.initializer})
    producer = {o: n for n in graph.node for o in n.output}
    new_nodes = []
    count = 0
    for node in graph.node:
        if node.op_type != "IsInf" or node.domain not in ("", "ai.onnx"):
            new_nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        pos, neg = int(attrs.get("detect_positive", 1)), int(attrs.get("detect_negative", 1))
        x, y = node.input[0], node.output[0]
        cast = producer.get(x)
        if (cast is not None and cast.op_type == "Cast" and elem.get(x) == TensorProto.DOUBLE
                and elem.get(cast.input[0]) in (TensorProto.FLOAT, TensorProto.FLOAT16)):
            x = cast.input[0]
        x_type = elem.get(x)
        limit = _max_finite(x_type) if x_type is not None else None
        if limit is None:
            raise ExportError(f"cannot rewrite {node.name or 'IsInf'}: input {x!r} has unknown or non-float type")
        base = (node.name or f"isinf_{count}").replace("/", "_").strip("_")
        parts = []
        for enabled, sign, op, tag in ((pos, 1.0, "Greater", "pos"), (neg, -1.0, "Less", "neg")):
            if not enabled:
                continue
            c = f"{base}_{tag}_limit"
            new_nodes.append(helper.make_node("Constant", [], [c], name=c,
                                              value=helper.make_tensor(c, x_type, [], [sign * limit])))
            new_nodes.append(helper.make_node(op, [x, c], [f"{base}_{tag}"], name=f"{base}_{tag}"))
            parts.append(f"{base}_{tag}")
        if len(parts) == 2:
            new_nodes.append(helper.make_node("Or", parts, [y], name=f"{base}_or"))
        elif len(parts) == 1:
            new_nodes.append(helper.make_node("Identity", parts, [y], name=f"{base}_id"))
        else:  # detects nothing: constant false shaped like x
            new_nodes.append(helper.make_node("IsNaN", [x], [f"{base}_nan"], name=f"{base}_nan"))
            new_nodes.append(helper.make_node("Not", [f"{base}_nan"], [f"{base}_notnan"], name=f"{base}_not"))
            new_nodes.append(helper.make_node("And", [f"{base}_nan", f"{base}_notnan"], [y], name=f"{base}_false"))
        count += 1
    del graph.node[:]
    graph.node.extend(_drop_dead_nodes(new_nodes, {o.name for o in graph.output}))
    return count


def _drop_dead_nodes(nodes: list, graph_outputs: set) -> list:
    """Remove nodes none of whose outputs is consumed or a graph output (repeat to a fixpoint)."""
    while True:
        used = {i for n in nodes for i in n.input} | graph_outputs
        kept = [n for n in nodes if any(o in used for o in n.output)]
        if len(kept) == len(nodes):
            return kept
        nodes = kept


def check_tensorrt_ops(model: Any, allowed: frozenset = TENSORRT_OPS) -> Dict[str, int]:
    """Op histogram of the graph; raise UnsupportedOpError naming every node TensorRT would not
    parse without a plugin (op not in `allowed`, or a custom domain)."""
    bad = []
    counts: Dict[str, int] = collections.Counter()
    for i, node in enumerate(model.graph.node):
        counts[node.op_type] += 1
        custom = node.domain not in ("", "ai.onnx")
        if custom or node.op_type not in allowed:
            where = f"node {i} '{node.name}'" if node.name else f"node {i}"
            bad.append(f"{where}: {node.domain + '::' if custom else ''}{node.op_type}")
    if bad:
        shown = "; ".join(bad[:20]) + (f"; ... ({len(bad)} in all)" if len(bad) > 20 else "")
        raise UnsupportedOpError(f"ops TensorRT cannot parse without plugins: {shown}")
    return dict(sorted(counts.items()))


def set_metadata(model: Any, metadata: Dict[str, str]) -> None:
    """Replace the ModelProto's metadata_props with `metadata` (ONNX Runtime's custom_metadata_map)."""
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)


def read_metadata(path: str | os.PathLike) -> Dict[str, str]:
    """metadata_props of an ONNX file, without loading the weights."""
    onnx = _import_onnx()
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


# ------------------------------------------------------------------------------------- export
def export_onnx(
    checkpoint: str | os.PathLike,
    output: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    max_batch: int = 8,
    network: Any = None,
    verify: bool = True,
    verify_batches: Sequence[int] = (1, 2),
    smplx_dir: str | os.PathLike | None = None,
    tensorrt_rewrites: bool = True,
    progress: Optional[Callable[[str], None]] = None,
    checkpoint_sha256: Optional[str] = None,
) -> ExportResult:
    """Export the network with `checkpoint`'s weights to `output` (written atomically).

    `network`: an already-loaded Hand4WholeNet (the checkpoint is then only hashed). `verify`:
    run the file in ONNX Runtime (when installed) at `verify_batches` on a smooth synthetic crop
    and record the largest absolute difference from torch per output; with `smplx_dir` also the
    vertices through the same BodyModel (key ``vertices``).
    """
    onnx = _import_onnx()
    import torch

    _validate_settings(opset, max_batch)
    say = progress or (lambda msg: LOG.info("%s", msg))
    checkpoint = Path(checkpoint).expanduser()
    output = Path(output).expanduser()
    if not checkpoint.is_file():
        from h4w_core.model.checkpoint import CHECKPOINT_HINT

        raise FileNotFoundError(f"checkpoint not found: {checkpoint}. {CHECKPOINT_HINT}")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {output.parent}")
    start = time.perf_counter()
    if checkpoint_sha256 is None:
        say(f"hashing {checkpoint}")
    ckpt_sha = checkpoint_sha256 or file_sha256(checkpoint)
    if network is None:
        say("loading the network")
        network = load_network(checkpoint)
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in network.parameters()):
        import copy

        network = copy.deepcopy(network).float().cpu()  # leave the caller's module where it is
    network = network.eval()
    wrapper = tuple_outputs(network)
    example = torch.rand(min(2, max_batch), *CROP_SHAPE, generator=torch.Generator().manual_seed(0))
    axes = {name: {0: BATCH_AXIS} for name in (INPUT_NAME, *OUTPUT_NAMES)}

    fd, tmp_name = tempfile.mkstemp(prefix=output.name + ".", suffix=".tmp", dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        say(f"tracing and exporting (opset {opset})")
        with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                torch.onnx.export(
                    wrapper, (example,), str(tmp), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                    dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False,
                )
            except Exception as exc:  # the exporter raises many unrelated types
                raise ExportError(f"torch.onnx.export failed: {exc}") from exc
        for w in caught:
            LOG.debug("exporter warning: %s", w.message)
        model = onnx.load(str(tmp))
        rewritten = rewrite_for_tensorrt(model) if tensorrt_rewrites else 0
        op_counts = check_tensorrt_ops(model) if tensorrt_rewrites else dict(
            collections.Counter(n.op_type for n in model.graph.node))
        metadata = {
            "model_name": MODEL_NAME,
            "h4w_version": h4w_version(),
            "input_names": json.dumps([INPUT_NAME]),
            "output_names": json.dumps(list(OUTPUT_NAMES)),
            "input_shape": json.dumps([BATCH_AXIS, *CROP_SHAPE]),
            "input_format": "RGB float32 in [0,1], NCHW, the reference 512x384 person crop",
            "output_units": json.dumps(OUTPUT_UNITS),
            "checkpoint_sha256": ckpt_sha,
            "checkpoint_name": checkpoint.name,
            "opset": str(opset),
            "max_batch": str(max_batch),
            "smplx_in_graph": "false",
            "exporter": f"torch {torch.__version__.split('+')[0]} torchscript",
        }
        set_metadata(model, metadata)
        model.producer_name = "h4w-export"
        model.doc_string = "Hand4Whole network (SMPL-X parameters, hand/face boxes, joints); SMPL-X mesh not included"
        onnx.save(model, str(tmp))
        say("onnx.checker")
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except Exception as exc:  # onnx raises ValidationError / InferenceError
            raise ExportError(f"onnx.checker rejected the exported model: {exc}") from exc
        del model
        verification: Dict[str, float] = {}
        if verify:
            verification = verify_onnx(tmp, network, verify_batches, smplx_dir=smplx_dir, progress=say)
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return ExportResult(
        path=output, opset=opset, op_counts=op_counts, metadata=metadata,
        seconds=time.perf_counter() - start, size_bytes=output.stat().st_size,
        rewritten_nodes=rewritten, verification=verification,
    )


def cached_export(
    checkpoint: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    opset: int = DEFAULT_OPSET,
    max_batch: int = 8,
) -> Path:
    """The ONNX export of `checkpoint` under ``<cache_dir>/onnx/`` (default cache: $H4W_CACHE or
    ~/.cache/h4w), exported now if missing. Keyed by the checkpoint's SHA-256, the opset and the
    h4w version, so runners never re-export needlessly (and TensorRT's engine cache, keyed by the
    ONNX hash, stays valid)."""
    checkpoint = Path(checkpoint).expanduser()
    if not checkpoint.is_file():
        from h4w_core.model.checkpoint import CHECKPOINT_HINT

        raise FileNotFoundError(f"checkpoint not found: {checkpoint}. {CHECKPOINT_HINT}")
    if cache_dir is None:
        from h4w_core.model.assets import default_cache_dir

        cache_dir = default_cache_dir()
    folder = Path(cache_dir).expanduser() / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    version = h4w_version().replace("/", "_")
    sha = file_sha256(checkpoint)
    path = folder / f"h4w-{sha[:16]}-op{opset}-v{version}.onnx"
    if path.is_file():
        LOG.info("ONNX cache hit: %s", path)
        return path
    LOG.warning("exporting %s to %s (once; about 15 s on 2 CPU cores)", checkpoint.name, path)
    export_onnx(checkpoint, path, opset=opset, max_batch=max_batch, verify=False, checkpoint_sha256=sha)
    return path


def synthetic_crop(batch: int, seed: int = 0):
    """A smooth, deterministic crop batch (blobs over a gradient): realistic enough that the
    network's soft-argmaxes are not fed pure noise."""
    import torch

    g = torch.Generator().manual_seed(seed)
    h, w = CROP_SHAPE[1:]
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    crops = []
    for _ in range(batch):
        img = torch.stack((xx, yy, 1 - xx * yy))
        for _ in range(6):
            cx, cy, s = torch.rand(3, generator=g)
            colour = torch.rand(3, 1, 1, generator=g)
            blob = torch.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (0.01 + 0.05 * s)))
            img = img * (1 - blob) + colour * blob
        crops.append(img.clamp(0, 1))
    return torch.stack(crops).float()


def verify_onnx(
    path: str | os.PathLike,
    network: Any,
    batches: Sequence[int] = (1, 2),
    smplx_dir: str | os.PathLike | None = None,
    progress: Optional[Callable[[str], None]] = None,
) -> Dict[str, float]:
    """Largest |ONNX Runtime - torch| per output over `batches` (plus 'vertices' with smplx_dir)."""
    try:
        import onnxruntime as ort
    except ImportError:
        LOG.warning("onnxruntime not installed: skipping the export verification")
        return {}
    import torch

    say = progress or (lambda msg: LOG.info("%s", msg))
    say(f"verifying with ONNX Runtime {ort.__version__} at batch {list(batches)}")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    body_model = None
    if smplx_dir is not None:
        from h4w_core.model.body_model import BodyModel

        body_model = BodyModel(smplx_dir).eval()
    errors: Dict[str, float] = collections.defaultdict(float)
    for batch in batches:
        crops = synthetic_crop(batch, seed=batch)
        with torch.no_grad():
            ref = network(crops)
        got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: crops.numpy()})
        for name, value in zip(OUTPUT_NAMES, got):
            errors[name] = max(errors[name], float((torch.from_numpy(value) - getattr(ref, name)).abs().max()))
        if body_model is not None:
            from h4w_core.model.network import NetworkOutput

            ort_out = NetworkOutput(*(torch.from_numpy(v) for v in got))
            errors["vertices"] = max(errors["vertices"], vertex_error(body_model, ort_out, ref))
    return dict(errors)


def vertex_error(body_model: Any, a: Any, b: Any) -> float:
    """Largest |vertex_a - vertex_b| (metres, cam_trans applied) through the same body model."""
    import torch

    from h4w_core.model.constants import SMPLX_PARAM_FIELDS as keys

    with torch.no_grad():
        va = body_model(*(getattr(a, k).float() for k in keys)).vertices + a.cam_trans.float()[:, None]
        vb = body_model(*(getattr(b, k).float() for k in keys)).vertices + b.cam_trans.float()[:, None]
    return float((va - vb).abs().max())
