"""One place for TensorRT API differences: TensorRT 8.5+, 10.x, 11.x and TensorRT-RTX.

Nothing here imports TensorRT, torch or onnx at module import time, so a torch-only (or even
numpy-only) install can import h4w_core.backends freely; :func:`load_api` does the import.

Which module is used: ``tensorrt`` if it imports, else ``tensorrt_rtx`` (the ``tensorrt-rtx-cu12``
wheel, which parses ONNX and builds engines without a GPU). ``H4W_TRT_MODULE=tensorrt_rtx`` (or
``tensorrt``) forces one.

TensorRT older than 8.5 is refused (:data:`MIN_TENSORRT`): the ONNX export uses opset 17, which
earlier parsers cannot read. Every version from 8.5 on has ``build_serialized_network``,
``set_memory_pool_limit``, ``parse_from_file``, the timing cache and the tensor-name I/O API
(``num_io_tensors``, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``), so those
are used unconditionally.

API differences handled (see docs/TENSORRT.md for the table):

* network creation: ``EXPLICIT_BATCH`` flag needed on 8.x, deprecated/ignored on 10.x, gone on 11.x
  and RTX; ``STRONGLY_TYPED`` where the flavour has no weak-typing precision flags (11.x, RTX);
* precision: ``BuilderFlag.FP16`` / ``INT8`` + calibrator (8.x, 10.x) vs strongly typed only
  (11.x removed the flags; RTX never had them): the ONNX itself must carry fp16 / Q/DQ;
* timing cache: ``create_timing_cache``/``set_timing_cache`` on TensorRT; a deprecated no-op on
  RTX, which caches JIT kernels at run time in a runtime cache instead;
* parser errors: ``node_name()``/``node_operator()`` exist on newer parsers (10.x has them); older
  8.x ones give only the node index, which is resolved against the ONNX graph when ``onnx`` is
  installed.
"""
from __future__ import annotations

import importlib
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

LOG = logging.getLogger(__name__)

MODULE_CANDIDATES = ("tensorrt", "tensorrt_rtx")
MODULE_ENV = "H4W_TRT_MODULE"
PRECISIONS = ("fp32", "fp16", "int8")
MIN_TENSORRT = (8, 5)  # first TensorRT whose ONNX parser reads opset 17 (h4w's export)

INSTALL_HINT = (
    "install TensorRT: on Jetson it comes with JetPack (apt install nvidia-tensorrt / "
    "python3-libnvinfer), on x86 `pip install tensorrt` (or apt `python3-libnvinfer` from the "
    "CUDA repository); for building engines without a GPU `pip install -r requirements-trt.txt` "
    "(tensorrt-rtx-cu12)"
)


# --------------------------------------------------------------------------------------- errors
class TensorRTError(RuntimeError):
    """Base class of every TensorRT backend error raised by h4w_core."""


class TensorRTNotInstalled(TensorRTError, ImportError):
    """Neither ``tensorrt`` nor ``tensorrt_rtx`` can be imported."""

    def __init__(self, detail: str = ""):
        msg = "TensorRT is not installed (no `tensorrt` or `tensorrt_rtx` module): " + INSTALL_HINT
        if detail:
            msg += f" [{detail}]"
        super().__init__(msg)


class NoGpuError(TensorRTError):
    """A CUDA GPU is needed (engine execution; building with standard TensorRT) but none is usable."""


@dataclass(frozen=True)
class ParserErrorInfo:
    """One ONNX parser error, reduced to plain Python values."""

    node_index: int
    node_name: str
    op_type: str
    code: str
    desc: str

    def one_line(self) -> str:
        where = f"node {self.node_index}" if self.node_index >= 0 else "model"
        if self.node_name:
            where += f" '{self.node_name}'"
        if self.op_type:
            where += f" ({self.op_type})"
        return f"{where}: {self.code}: {' '.join(self.desc.split())}"


class OnnxParseError(TensorRTError):
    """The TensorRT ONNX parser rejected the model; ``errors`` names the offending nodes."""

    def __init__(self, path: str, errors: Sequence[ParserErrorInfo]):
        self.path = str(path)
        self.errors = list(errors)
        nodes = sorted({e.node_name or e.op_type for e in self.errors if e.node_name or e.op_type})
        lines = "; ".join(e.one_line() for e in self.errors) or "no error details reported"
        hint = ""
        if any("plugin" in e.desc.lower() or "unsupported" in e.desc.lower() for e in self.errors):
            hint = " (unsupported op: replace it in the export, h4w needs no TensorRT plugins)"
        super().__init__(
            f"ONNX parse failed for {self.path}: {len(self.errors)} error(s)"
            f"{' at ' + ', '.join(nodes) if nodes else ''}{hint}: {lines}"
        )

    @property
    def node_names(self) -> List[str]:
        return [e.node_name for e in self.errors if e.node_name]


class EngineBuildError(TensorRTError):
    """Building or serialising the engine failed (bad settings, builder returned nothing, ...)."""


class PrecisionNotSupported(EngineBuildError):
    """The requested precision cannot be honoured with this TensorRT flavour / model / settings."""


class EngineLoadError(TensorRTError):
    """A serialised engine could not be read or deserialised (wrong TensorRT version/GPU, corrupt)."""


class InputMismatchError(TensorRTError, ValueError):
    """A feed does not match the engine's inputs (names, dtypes, devices, shapes, profile range)."""


# ------------------------------------------------------------------------------------- importing
_API_CACHE: Dict[str, TrtApi] = {}


def load_api(module: Optional[str] = None) -> TrtApi:
    """Import TensorRT lazily and wrap it; raises :class:`TensorRTNotInstalled`.

    ``module`` (or env ``H4W_TRT_MODULE``) picks ``tensorrt`` or ``tensorrt_rtx``; by default the
    first of those that imports. A standard TensorRT older than :data:`MIN_TENSORRT` raises
    :class:`TensorRTError` (it cannot parse the opset-17 export).
    """
    wanted = module or os.environ.get(MODULE_ENV) or None
    candidates = (wanted,) if wanted else MODULE_CANDIDATES
    if wanted and wanted not in MODULE_CANDIDATES:
        raise TensorRTNotInstalled(f"{MODULE_ENV}={wanted!r} is not one of {MODULE_CANDIDATES}")
    failures = []
    for name in candidates:
        if name in _API_CACHE:
            return _API_CACHE[name]
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # ImportError, or OSError from a broken shared library
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        api = TrtApi(mod)
        _API_CACHE[name] = api
        return api
    raise TensorRTNotInstalled("; ".join(failures))


def tensorrt_available() -> bool:
    """True when :func:`load_api` would succeed (never raises; a too-old TensorRT counts as absent)."""
    try:
        load_api()
    except TensorRTError:
        return False
    return True


def parse_version(text: str) -> Tuple[int, ...]:
    """'10.3.0.26' -> (10, 3, 0, 26); non-numeric tails are dropped."""
    out = []
    for part in str(text).split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group(0)))
    return tuple(out) or (0,)


# -------------------------------------------------------------------------------------- GPU info
def cuda_available() -> bool:
    """True when torch is importable and sees a CUDA device (no pycuda needed)."""
    try:
        import torch
    except ImportError:
        return False
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # broken driver installs raise from is_available on some platforms
        return False


def gpu_identity(device_index: Optional[int] = None) -> Optional[Tuple[str, str]]:
    """(GPU name, compute capability 'major.minor') of ``device_index`` (default: torch's current
    device, the one TensorRT builds for) through torch, or None without a usable GPU."""
    if not cuda_available():
        return None
    import torch

    if device_index is None:
        device_index = torch.cuda.current_device()
    name = torch.cuda.get_device_name(device_index)
    major, minor = torch.cuda.get_device_capability(device_index)
    return name, f"{major}.{minor}"


# -------------------------------------------------------------------------------------- the API
@dataclass(frozen=True)
class IOTensor:
    """One engine input or output as the runtime sees it."""

    name: str
    is_input: bool
    trt_dtype: Any
    shape: Tuple[int, ...]  # -1 for dynamic dims
    profile: Optional[Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]]  # min/opt/max


class TrtApi:
    """A thin wrapper over an imported TensorRT module that papers over version differences.

    Raises :class:`TensorRTError` for standard TensorRT older than :data:`MIN_TENSORRT`, so no
    code path below has to handle pre-8.5 APIs (TensorRT-RTX has its own 1.x numbering).
    """

    def __init__(self, module: Any):
        self.trt = module
        self.module_name = module.__name__.split(".")[0]
        self.is_rtx = self.module_name == "tensorrt_rtx"
        self.flavour = "tensorrt_rtx" if self.is_rtx else "tensorrt"
        self.version = str(getattr(module, "__version__", "0"))
        self.version_tuple = parse_version(self.version)
        self.major = self.version_tuple[0]
        if not self.is_rtx and self.version_tuple < MIN_TENSORRT:
            minimum = ".".join(map(str, MIN_TENSORRT))
            raise TensorRTError(
                f"TensorRT {self.version} is installed but h4w needs TensorRT >= {minimum} "
                "(its ONNX export uses opset 17)"
            )
        self._logger = None

    def __repr__(self) -> str:
        return f"TrtApi({self.flavour} {self.version})"

    @property
    def label(self) -> str:
        """'tensorrt 10.3.0' / 'tensorrt_rtx 1.7.1.116' for messages and cache sidecars."""
        return f"{self.flavour} {self.version}"

    # ---- capability queries
    @property
    def builds_without_gpu(self) -> bool:
        """TensorRT-RTX builds (AOT, portable) engines on a CPU-only machine; TensorRT needs CUDA."""
        return self.is_rtx

    @property
    def weakly_typed_precision_flags(self) -> bool:
        """True where ``BuilderFlag.FP16`` exists (TensorRT <= 10.x); False on 11.x and RTX."""
        return hasattr(self.trt.BuilderFlag, "FP16")

    @property
    def supports_calibrator(self) -> bool:
        """Implicit INT8 calibration exists (TensorRT <= 10.x; removed in 11.x, absent in RTX)."""
        return hasattr(self.trt.BuilderFlag, "INT8") and hasattr(self.trt, "IInt8EntropyCalibrator2")

    @property
    def supports_timing_cache(self) -> bool:
        """A real timing cache on TensorRT; on TensorRT-RTX the calls are deprecated no-ops."""
        return not self.is_rtx

    @property
    def supports_runtime_cache(self) -> bool:
        """TensorRT-RTX's JIT runtime cache (``IRuntimeConfig.create_runtime_cache``)."""
        return hasattr(self.trt, "IRuntimeConfig") and hasattr(self.trt.IRuntimeConfig, "create_runtime_cache")

    # ---- logger
    def logger(self) -> Any:
        """One process-wide TensorRT logger that forwards to Python logging (TensorRT wants one)."""
        if self._logger is None:
            self._logger = _make_logger(self.trt)
        return self._logger

    # ---- builder side
    def create_builder(self) -> Any:
        """``trt.Builder``; a builder that cannot be made means no usable CUDA on standard TRT."""
        try:
            builder = self.trt.Builder(self.logger())
        except Exception as exc:  # pybind raises TypeError/RuntimeError when createInferBuilder fails
            raise self._no_gpu_for_build(exc) from exc
        if builder is None:
            raise self._no_gpu_for_build(None)
        return builder

    def _no_gpu_for_build(self, exc: Optional[BaseException]) -> TensorRTError:
        if self.builds_without_gpu:
            return EngineBuildError(f"could not create a {self.label} builder: {exc}")
        return NoGpuError(
            f"{self.label} needs a CUDA GPU to build engines and could not create a builder"
            f"{': ' + str(exc) if exc else ''} (tensorrt-rtx can build on CPU, see docs/TENSORRT.md)"
        )

    def create_network(self, builder: Any, strongly_typed: bool = False) -> Any:
        """Explicit-batch network on every version; strongly typed when asked and available."""
        flags = 0
        creation = self.trt.NetworkDefinitionCreationFlag
        if hasattr(creation, "EXPLICIT_BATCH") and self.major < 10 and not self.is_rtx:
            flags |= 1 << int(creation.EXPLICIT_BATCH)  # required on 8.x; deprecated no-op on 10.x
        if strongly_typed and hasattr(creation, "STRONGLY_TYPED"):
            flags |= 1 << int(creation.STRONGLY_TYPED)
        network = builder.create_network(flags)
        if network is None:
            raise EngineBuildError(f"{self.label}: builder.create_network({flags}) returned None")
        return network

    def create_parser(self, network: Any) -> Any:
        return self.trt.OnnxParser(network, self.logger())

    def parse_onnx_file(self, parser: Any, path: str) -> None:
        """Parse ``path`` (external data resolved relative to it); raise :class:`OnnxParseError`."""
        if not parser.parse_from_file(str(path)):
            raise OnnxParseError(str(path), self.parser_errors(parser, path))

    def parser_errors(self, parser: Any, path: Optional[str] = None) -> List[ParserErrorInfo]:
        """All parser errors, with node names; 8.x parsers only give an index we resolve."""
        out = []
        graph_nodes = None
        for i in range(int(getattr(parser, "num_errors", 0))):
            err = parser.get_error(i)
            index = _call_or(err, "node", -1)
            name = _call_or(err, "node_name", "")
            op = _call_or(err, "node_operator", "")
            if (not name or not op) and isinstance(index, int) and index >= 0 and path:
                if graph_nodes is None:
                    graph_nodes = _onnx_nodes(path)
                if 0 <= index < len(graph_nodes):
                    name = name or graph_nodes[index][0]
                    op = op or graph_nodes[index][1]
            code = _call_or(err, "code", "")
            out.append(
                ParserErrorInfo(
                    node_index=int(index) if isinstance(index, int) else -1,
                    node_name=str(name or ""),
                    op_type=str(op or ""),
                    code=getattr(code, "name", str(code)),
                    desc=str(_call_or(err, "desc", str(err))),
                )
            )
        return out

    def set_workspace(self, config: Any, nbytes: int) -> None:
        config.set_memory_pool_limit(self.trt.MemoryPoolType.WORKSPACE, int(nbytes))

    def set_flag(self, config: Any, name: str, on: bool = True) -> bool:
        """Set/clear ``BuilderFlag.<name>`` if this flavour has it; returns whether it exists."""
        flag = getattr(self.trt.BuilderFlag, name, None)
        if flag is None:
            return False
        if on:
            config.set_flag(flag)
        else:
            config.clear_flag(flag)
        return True

    def set_int8_calibrator(self, config: Any, calibrator: Any) -> None:
        if not self.supports_calibrator or not hasattr(config, "int8_calibrator"):
            raise PrecisionNotSupported(f"{self.label} has no implicit INT8 calibration")
        config.int8_calibrator = calibrator

    def load_timing_cache(self, config: Any, data: bytes) -> bool:
        """Attach a timing cache made from ``data`` (b'' = empty); False when unsupported/corrupt."""
        if not self.supports_timing_cache:
            return False
        try:
            cache = config.create_timing_cache(data)
        except Exception as exc:
            LOG.warning("timing cache unreadable (%s); starting an empty one", exc)
            cache = None
        if cache is None and data:
            cache = config.create_timing_cache(b"")
        if cache is None:
            return False
        return bool(config.set_timing_cache(cache, ignore_mismatch=False))

    def serialize_timing_cache(self, config: Any) -> Optional[bytes]:
        if not self.supports_timing_cache:
            return None
        cache = config.get_timing_cache()
        if cache is None:
            return None
        return host_memory_bytes(cache.serialize())

    def build_serialized(self, builder: Any, network: Any, config: Any) -> bytes:
        """Engine bytes from ``build_serialized_network``; a None result becomes :class:`EngineBuildError`."""
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise EngineBuildError(
                f"{self.label} builder returned no engine (see the TensorRT errors logged above; "
                "common causes: workspace too small, unsupported layer for the precision)"
            )
        data = host_memory_bytes(blob)
        if not data:
            raise EngineBuildError(f"{self.label} builder returned an empty engine")
        return data

    # ---- runtime side
    def create_runtime(self) -> Any:
        return self.trt.Runtime(self.logger())

    def io_tensors(self, engine: Any, profile_index: int = 0) -> List[IOTensor]:
        """Inputs and outputs of ``engine``, in engine order."""
        out: List[IOTensor] = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == self.trt.TensorIOMode.INPUT
            shape = tuple(int(d) for d in engine.get_tensor_shape(name))
            profile = None
            if is_input and -1 in shape:
                mn, opt, mx = engine.get_tensor_profile_shape(name, profile_index)
                profile = (_dims(mn), _dims(opt), _dims(mx))
            out.append(IOTensor(name, is_input, engine.get_tensor_dtype(name), shape, profile))
        return out

    def torch_dtype(self, trt_dtype: Any) -> Any:
        """TensorRT DataType -> torch dtype; raises :class:`EngineLoadError` for unmapped ones."""
        import torch

        name = getattr(trt_dtype, "name", str(trt_dtype)).upper()
        table = {
            "FLOAT": torch.float32,
            "HALF": torch.float16,
            "BF16": torch.bfloat16,
            "INT8": torch.int8,
            "UINT8": torch.uint8,
            "INT32": torch.int32,
            "INT64": torch.int64,
            "BOOL": torch.bool,
            "FP8": getattr(torch, "float8_e4m3fn", None),
        }
        dtype = table.get(name)
        if dtype is None:
            raise EngineLoadError(f"TensorRT dtype {name} has no torch equivalent here")
        return dtype


# ------------------------------------------------------------------------------------- helpers
def host_memory_bytes(blob: Any) -> bytes:
    """``IHostMemory`` (buffer protocol) or bytes-like -> bytes."""
    if isinstance(blob, (bytes, bytearray)):
        return bytes(blob)
    return bytes(memoryview(blob))


def _dims(d: Any) -> Tuple[int, ...]:
    return tuple(int(x) for x in d)


def _call_or(obj: Any, attr: str, default: Any) -> Any:
    fn = getattr(obj, attr, None)
    if fn is None:
        return default
    try:
        return fn() if callable(fn) else fn
    except Exception:
        return default


def _onnx_nodes(path: str) -> List[Tuple[str, str]]:
    """(name, op_type) of the top-level graph nodes, or [] when onnx is missing/unreadable."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return []
    return [(n.name, n.op_type) for n in model.graph.node]


_SEVERITY_TO_LEVEL = {
    "INTERNAL_ERROR": logging.CRITICAL,
    "ERROR": logging.ERROR,
    "WARNING": logging.WARNING,
    "INFO": logging.DEBUG,  # TensorRT's INFO is chatty (per-build memory stats): debug for us
    "VERBOSE": logging.DEBUG - 5,
}


def _make_logger(trt: Any) -> Any:
    """An ``ILogger`` subclass that forwards TensorRT messages to logger ``h4w_core.tensorrt``."""
    py_log = logging.getLogger("h4w_core.tensorrt")

    class _PyLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            level = _SEVERITY_TO_LEVEL.get(getattr(severity, "name", str(severity)), logging.INFO)
            py_log.log(level, "%s", msg)

    return _PyLogger()
