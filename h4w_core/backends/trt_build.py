"""TensorRT engine building in small steps, plus an on-disk engine cache.

Steps (each a small callable, Polygraphy style)::

    network = NetworkFromOnnxPath("model.onnx")            # -> (builder, network, parser)
    config = CreateConfig(BuildSettings(precision="fp16", max_batch=8, opt_batch=1))
    blob = EngineBytesFromNetwork(network, config, timing_cache="trt.cache")
    SaveEngine(blob, "model.engine")()

or all at once, cached: ``EngineCache("~/.cache/h4w/engines").get_or_build("model.onnx", settings)``.

Engines are not portable across TensorRT versions, GPU architectures or platforms, so the cache key
holds the ONNX hash, the TensorRT flavour and version, the GPU and compute capability (or
``cpu-build`` for TensorRT-RTX on a machine without a GPU), the precision, the batch profile and the
workspace limit. A JSON sidecar next to each engine records those fields plus build time and date;
a missing, corrupt or mismatching sidecar means "rebuild".
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

from h4w_core.backends.trt_compat import (
    PRECISIONS,
    EngineBuildError,
    NoGpuError,
    PrecisionNotSupported,
    TrtApi,
    gpu_identity,
    load_api,
)

LOG = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
CACHE_SCHEMA = 1
CPU_BUILD = "cpu-build"


class BuildSettingsError(EngineBuildError, ValueError):
    """Inconsistent build settings (batch profile, workspace, precision name)."""


@dataclass(frozen=True)
class BuildSettings:
    """What to build. Everything except ``timing_cache`` and ``calibrator`` is part of the cache key.

    ``precision``: 'fp32' (TF32 disabled: honest fp32), 'fp16' (BuilderFlag.FP16 where it exists;
    on strongly typed flavours the ONNX must already carry fp16), or 'int8' (needs ``calibrator``
    on TensorRT <= 10, or an ONNX with Q/DQ nodes; refused otherwise).
    The batch profile (``min_batch``..``max_batch``, optimised for ``opt_batch``) applies to every
    network input whose first dimension is dynamic.
    """

    precision: str = "fp32"
    max_batch: int = 8
    opt_batch: int = 1
    min_batch: int = 1
    workspace_mib: int = 1024
    timing_cache: Optional[str] = None
    calibrator: Any = field(default=None, compare=False, repr=False)
    calibration_tag: str = ""  # identifies the calibration data (keyed); required with calibrator

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BuildSettingsError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not (1 <= self.min_batch <= self.opt_batch <= self.max_batch):
            raise BuildSettingsError(
                "batch profile needs 1 <= min_batch <= opt_batch <= max_batch, got "
                f"min={self.min_batch} opt={self.opt_batch} max={self.max_batch}"
            )
        if self.workspace_mib <= 0:
            raise BuildSettingsError(f"workspace_mib must be positive, got {self.workspace_mib}")
        if self.calibrator is not None and not self.calibration_tag:
            raise BuildSettingsError("a calibrator needs a calibration_tag (it is part of the cache key)")

    def key_fields(self) -> Dict[str, Any]:
        fields = {
            "precision": self.precision,
            "min_batch": self.min_batch,
            "opt_batch": self.opt_batch,
            "max_batch": self.max_batch,
            "workspace_mib": self.workspace_mib,
        }
        if self.precision == "int8":
            fields["calibration_tag"] = self.calibration_tag
        return fields


# ---------------------------------------------------------------------------------- build steps
@dataclass
class ParsedNetwork:
    """What :class:`NetworkFromOnnxPath` returns. Keep it alive: the network borrows the builder."""

    api: TrtApi
    builder: Any
    network: Any
    parser: Any
    onnx_path: str


class NetworkFromOnnxPath:
    """Step: parse an ONNX file into a TensorRT network (raises OnnxParseError naming nodes)."""

    def __init__(self, path: PathLike, api: Optional[TrtApi] = None):
        self.path = str(path)
        self.api = api

    def __call__(self) -> ParsedNetwork:
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"ONNX file not found: {self.path}")
        api = self.api or load_api()
        builder = api.create_builder()
        # Strongly typed where weak-typing flags are gone (11.x, RTX); the ONNX decides the types.
        network = api.create_network(builder, strongly_typed=not api.weakly_typed_precision_flags)
        parser = api.create_parser(network)
        api.parse_onnx_file(parser, self.path)
        LOG.debug("parsed %s: %d layers", self.path, network.num_layers)
        return ParsedNetwork(api, builder, network, parser, self.path)


def network_dtypes(network: Any) -> set:
    """Names of the DataTypes of all layer outputs and network inputs ('FLOAT', 'HALF', ...)."""
    names = set()
    for i in range(network.num_inputs):
        names.add(network.get_input(i).dtype.name)
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_outputs):
            names.add(layer.get_output(j).dtype.name)
    return names


def network_has_qdq(network: Any, api: TrtApi) -> bool:
    types = {getattr(api.trt.LayerType, n, None) for n in ("QUANTIZE", "DEQUANTIZE")} - {None}
    return any(network.get_layer(i).type in types for i in range(network.num_layers))


class CreateConfig:
    """Step: builder config for ``settings`` (precision, workspace, batch profile, timing cache)."""

    def __init__(self, settings: BuildSettings):
        self.settings = settings

    def __call__(self, parsed: ParsedNetwork) -> Any:
        api, builder, network, s = parsed.api, parsed.builder, parsed.network, self.settings
        config = builder.create_builder_config()
        api.set_workspace(config, s.workspace_mib << 20)
        self._precision(api, config, network)
        self._profile(builder, config, network)
        if s.timing_cache:
            self._timing_cache(api, config, s.timing_cache)
        return config

    def _precision(self, api: TrtApi, config: Any, network: Any) -> None:
        p = self.settings.precision
        if p == "fp32":
            api.set_flag(config, "TF32", on=False)  # fp32 means fp32 (parity), not TF32 matmuls
            return
        if p == "fp16":
            if api.set_flag(config, "FP16"):
                return
            if "HALF" not in network_dtypes(network):
                raise PrecisionNotSupported(
                    f"{api.label} is strongly typed (no FP16 builder flag): precision 'fp16' needs an "
                    "ONNX that already computes in fp16 (convert it, e.g. ModelOpt AutoCast); this "
                    "one has no fp16 tensors"
                )
            return
        # int8
        if network_has_qdq(network, api):
            api.set_flag(config, "INT8")  # explicit quantization; no-op flag-less on 11.x / RTX
            api.set_flag(config, "FP16")  # let non-quantized layers use fp16 where weakly typed
            return
        if not api.supports_calibrator:
            raise PrecisionNotSupported(
                f"precision 'int8' on {api.label} (strongly typed, no INT8 calibration) needs an "
                "ONNX with Q/DQ nodes; this one has none, refusing to build a fake INT8 engine"
            )
        if self.settings.calibrator is None:
            raise PrecisionNotSupported(
                "precision 'int8' needs calibration data: pass BuildSettings(calibrator=..., "
                "calibration_tag=...) or build an ONNX with Q/DQ nodes; refusing to build an "
                "uncalibrated INT8 engine"
            )
        api.set_flag(config, "INT8")
        api.set_int8_calibrator(config, self.settings.calibrator)

    def _profile(self, builder: Any, config: Any, network: Any) -> None:
        s = self.settings
        profile = builder.create_optimization_profile()
        dynamic = []
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            shape = tuple(int(d) for d in tensor.shape)
            if not shape or shape[0] != -1:
                if -1 in shape:
                    raise BuildSettingsError(
                        f"input {tensor.name!r} has dynamic non-batch dims {shape}; only the first "
                        "(batch) axis may be dynamic"
                    )
                continue
            if -1 in shape[1:]:
                raise BuildSettingsError(
                    f"input {tensor.name!r} has dynamic dims {shape} beyond the batch axis; export "
                    "with fixed crop sizes"
                )
            rest = shape[1:]
            profile.set_shape(
                tensor.name, (s.min_batch,) + rest, (s.opt_batch,) + rest, (s.max_batch,) + rest
            )
            dynamic.append(tensor.name)
        if dynamic:
            config.add_optimization_profile(profile)
            LOG.debug("batch profile %d/%d/%d on %s", s.min_batch, s.opt_batch, s.max_batch, dynamic)
        else:
            LOG.warning("no input has a dynamic batch axis; the batch profile is ignored")

    @staticmethod
    def _timing_cache(api: TrtApi, config: Any, path: str) -> None:
        if not api.supports_timing_cache:
            LOG.info("%s has no build timing cache (it caches JIT kernels at run time); "
                     "ignoring %s", api.label, path)
            return
        data = b""
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
        api.load_timing_cache(config, data)
        LOG.debug("timing cache %s: %d bytes loaded", path, len(data))


class EngineBytesFromNetwork:
    """Step: build the serialised engine; saves the timing cache afterwards when one is set."""

    def __init__(self, network: Union[NetworkFromOnnxPath, Callable[[], ParsedNetwork]],
                 config: Union[CreateConfig, Callable[[ParsedNetwork], Any]],
                 timing_cache: Optional[str] = None):
        self.network = network
        self.config = config
        self.timing_cache = timing_cache
        self.build_seconds = 0.0

    def __call__(self) -> bytes:
        parsed = self.network()
        config = self.config(parsed)
        api = parsed.api
        start = time.perf_counter()
        data = api.build_serialized(parsed.builder, parsed.network, config)
        self.build_seconds = time.perf_counter() - start
        LOG.info("built %s engine from %s in %.2f s (%d bytes)", api.label, parsed.onnx_path,
                 self.build_seconds, len(data))
        if self.timing_cache:
            cache = api.serialize_timing_cache(config)
            if cache:
                _atomic_write(self.timing_cache, cache)
        return data


class SaveEngine:
    """Step: write engine bytes atomically; returns the path."""

    def __init__(self, engine: Union[bytes, Callable[[], bytes]], path: PathLike):
        self.engine = engine
        self.path = str(path)

    def __call__(self) -> str:
        data = self.engine() if callable(self.engine) else self.engine
        _atomic_write(self.path, data)
        return self.path


def build_engine_bytes(onnx_path: PathLike, settings: BuildSettings,
                       api: Optional[TrtApi] = None) -> Tuple[bytes, float]:
    """Parse + configure + build; returns (engine bytes, build seconds)."""
    step = EngineBytesFromNetwork(NetworkFromOnnxPath(onnx_path, api), CreateConfig(settings),
                                  timing_cache=settings.timing_cache)
    data = step()
    return data, step.build_seconds


# ------------------------------------------------------------------------------------ the cache
def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def device_fields(api: TrtApi) -> Dict[str, str]:
    """GPU name + compute capability, or 'cpu-build' for a GPU-less TensorRT-RTX build."""
    gpu = gpu_identity()
    if gpu is not None:
        return {"device": gpu[0], "compute_capability": gpu[1]}
    if api.builds_without_gpu:
        return {"device": CPU_BUILD, "compute_capability": ""}
    raise NoGpuError(
        f"{api.label} builds engines for the GPU it runs on, and torch sees no CUDA GPU here "
        "(tensorrt-rtx can build on CPU: pip install -r requirements-trt.txt)"
    )


class EngineCache:
    """Engines in ``cache_dir`` as ``<key>.engine`` + ``<key>.json`` (sidecar with the key fields)."""

    def __init__(self, cache_dir: PathLike, api: Optional[TrtApi] = None):
        self.cache_dir = Path(os.path.expanduser(str(cache_dir)))
        self._api = api

    @property
    def api(self) -> TrtApi:
        if self._api is None:
            self._api = load_api()
        return self._api

    def key_fields(self, onnx_path: PathLike, settings: BuildSettings) -> Dict[str, Any]:
        if not os.path.isfile(onnx_path):
            raise FileNotFoundError(f"ONNX file not found: {onnx_path}")
        fields: Dict[str, Any] = {
            "schema": CACHE_SCHEMA,
            "onnx_sha256": sha256_file(onnx_path),
            "trt_flavour": self.api.flavour,
            "trt_version": self.api.version,
        }
        fields.update(device_fields(self.api))
        fields.update(settings.key_fields())
        return fields

    @staticmethod
    def key_of(fields: Dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()

    def paths(self, key: str) -> Tuple[Path, Path]:
        return self.cache_dir / f"{key}.engine", self.cache_dir / f"{key}.json"

    def lookup(self, fields: Dict[str, Any]) -> Optional[Path]:
        """The cached engine for ``fields`` if its sidecar is intact and matches, else None."""
        key = self.key_of(fields)
        engine_path, sidecar_path = self.paths(key)
        reason = self._invalid_reason(fields, engine_path, sidecar_path)
        if reason:
            LOG.info("engine cache miss %s: %s", key[:12], reason)
            return None
        return engine_path

    def _invalid_reason(self, fields: Dict[str, Any], engine_path: Path, sidecar_path: Path) -> str:
        if not sidecar_path.is_file():
            return "no sidecar"
        if not engine_path.is_file():
            return "no engine file"
        try:
            meta = json.loads(sidecar_path.read_text())
        except (OSError, ValueError) as exc:
            return f"corrupt sidecar ({exc})"
        if not isinstance(meta, dict) or meta.get("fields") != fields:
            return "sidecar fields do not match"
        if meta.get("engine_bytes") != engine_path.stat().st_size:
            return "engine size differs from sidecar"
        if meta.get("engine_sha256") != sha256_file(engine_path):
            return "engine hash differs from sidecar"
        return ""

    def get_or_build(self, onnx_path: PathLike, settings: BuildSettings,
                     force: bool = False) -> Tuple[Path, bool]:
        """(engine path, hit). Builds and records the engine on a miss (or when ``force``)."""
        fields = self.key_fields(onnx_path, settings)
        key = self.key_of(fields)
        if not force:
            hit = self.lookup(fields)
            if hit is not None:
                LOG.info("engine cache hit %s -> %s", key[:12], hit)
                return hit, True
        else:
            LOG.info("engine cache: forced rebuild of %s", key[:12])
        data, seconds = build_engine_bytes(onnx_path, settings, self.api)
        engine_path, sidecar_path = self.paths(key)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        _atomic_write(engine_path, data)
        meta = {
            "key": key,
            "fields": fields,
            "onnx_path": os.path.abspath(str(onnx_path)),
            "engine_file": engine_path.name,
            "engine_bytes": len(data),
            "engine_sha256": hashlib.sha256(data).hexdigest(),
            "build_seconds": round(seconds, 4),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "trt_label": self.api.label,
        }
        # Sidecar last: it is the commit marker, so a crash mid-write leaves a miss, not a bad hit.
        _atomic_write(sidecar_path, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
        LOG.info("engine cache stored %s (%.2f s build)", engine_path, seconds)
        return engine_path, False

    def read_sidecar(self, engine_path: PathLike) -> Dict[str, Any]:
        return json.loads(Path(engine_path).with_suffix(".json").read_text())


def _atomic_write(path: PathLike, data: bytes) -> None:
    path = str(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
