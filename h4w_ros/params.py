"""The node's parameters: each declared once with a descriptor, read into a frozen dataclass.

Every parameter is either read-only (its descriptor says so and ``ros2 param set`` is refused) or
applied live: ``check_update`` validates a change and the node applies the new NodeConfig.
Integers are accepted where floats (or float arrays) are declared; any other wrong type, an
out-of-range value or an unknown choice is a ``ParameterError`` naming the parameter and what
it expects, reported in one line.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter

from h4w_core.backends import BACKENDS, PRECISIONS
from h4w_core.people.hands import HandStateConfig
from h4w_core.people.pipeline import BOX_SOURCES, PeopleConfig
from h4w_core.people.tracking import TRACKERS

IMAGE_RELIABILITIES = ("auto", "best_effort", "reliable")
EXECUTORS = ("auto", "events", "single_threaded")


class ParameterError(ValueError):
    """A parameter value the node cannot use (type, range or choice), named in the message."""


@dataclass(frozen=True)
class NodeConfig:
    """The parameters' values; defaults equal config/h4w.yaml (tested)."""

    checkpoint: str = ""
    smplx_dir: str = ""
    allow_standin: bool = False
    autostart: bool = True
    device: str = "cpu"
    backend: str = "torch"
    precision: str = "fp32"
    torch_threads: int = 0
    executor: str = "auto"
    box_source: str = "detector"
    fixed_roi: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    detector: str = "hog"
    detector_model: str = ""
    detector_providers: str = ""
    detector_score_threshold: float = 0.5
    max_persons: int = 4
    detector_every_n: int = 1
    detector_scale: float = 1.0
    image_reliability: str = "auto"
    sync_slop: float = 0.05
    sync_queue_size: int = 10
    camera_info_timeout: float = 2.0
    stamp_jump_threshold: float = 10.0
    idle_warning_timeout: float = 5.0
    detections_format: str = "h4w"
    use_depth: bool = False
    tracking: bool = True
    tracker: str = "iou"
    track_iou_threshold: float = 0.3
    track_min_hits: int = 1
    track_max_age: int = 15
    smoothing: bool = True
    smoothing_min_cutoff: float = 0.5
    smoothing_translation_beta: float = 1.0
    smoothing_rotation_beta: float = 0.5
    publish_mesh: bool = True
    publish_markers: bool = True
    publish_tf: bool = True
    publish_overlay: bool = False
    frame_prefix: str = ""
    marker_rate: float = 10.0
    marker_mesh: str = "coarse"
    marker_face_stride: int = 1
    marker_lifetime: float = 1.0
    diagnostics_period: float = 1.0
    hri: bool = True
    publish_hands: bool = True
    hand_straight_max: float = HandStateConfig.straight_max
    hand_curled_min: float = HandStateConfig.curled_min
    hand_pinch_aperture: float = HandStateConfig.pinch_aperture_m


@dataclass(frozen=True)
class Spec:
    """How one parameter is declared and checked."""

    description: str
    read_only: bool = False
    choices: tuple[str, ...] = ()
    low: float | None = None  # inclusive range for numbers
    high: float | None = None


SPECS: dict[str, Spec] = {
    "checkpoint": Spec("Path to the released Hand4Whole checkpoint snapshot_6.pth.tar ('' = none).", read_only=True),
    "smplx_dir": Spec("Folder holding SMPLX_NEUTRAL.npz (or a smplx/ subfolder with it).", read_only=True),
    "allow_standin": Spec("With no checkpoint and smplx_dir, run on generated stand-in assets (demo/tests only; outputs are not real estimates).", read_only=True),
    "autostart": Spec("Configure and activate at start (lifecycle); false: wait for `ros2 lifecycle set ... configure`.", read_only=True),
    "device": Spec("Inference device.", read_only=True, choices=("cpu", "cuda")),
    "backend": Spec("Inference backend (docs/BACKENDS.md).", read_only=True, choices=tuple(BACKENDS)),
    "precision": Spec("Network precision, as the backend supports it on the device (never silently changed).", read_only=True, choices=PRECISIONS),
    "torch_threads": Spec("Threads of torch's CPU kernels (SMPL-X posing on the CPU, a torch network on the CPU); 0 = auto: "
                          "one per core when a torch backend runs the network on the CPU, else 1 (the node's stages run at "
                          "once, and idle torch threads spin on the cores the other stages need).", read_only=True, low=0, high=256),
    "executor": Spec("rclpy executor that receives images and runs the timers: 'events' (rclpy's EventsExecutor, "
                     "experimental in rclpy, less Python per message), 'single_threaded', or 'auto' (events where rclpy "
                     "has it, else single_threaded).", read_only=True, choices=EXECUTORS),
    "box_source": Spec("Where person boxes come from.", read_only=True, choices=BOX_SOURCES),
    "fixed_roi": Spec("Person box x, y, width, height in pixels for box_source 'fixed_roi'."),
    "detector": Spec("Built-in detector for box_source 'detector': 'hog' (OpenCV, offline) or 'onnx' (detector_model).", read_only=True, choices=("hog", "onnx")),
    "detector_model": Spec("YOLO-family ONNX person detector for detector 'onnx'.", read_only=True),
    "detector_providers": Spec("ONNX Runtime execution providers for detector 'onnx', comma-separated in order of preference, "
                               "e.g. 'TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider' ('' = CUDA, then CPU).", read_only=True),
    "detector_score_threshold": Spec("Minimum detector score of a person box.", low=0.0, high=1.0),
    "detector_every_n": Spec("Run the person detector on every n-th frame; the tracks' predictions stand in between (needs tracking).", low=1, high=100),
    "detector_scale": Spec("Detect persons on the image scaled by this factor (faster, misses small people); boxes are mapped back.", low=0.05, high=1.0),
    "max_persons": Spec("Most persons per frame sent through the network (highest scores kept).", low=1, high=64),
    "image_reliability": Spec("Image/camera_info/depth QoS reliability: 'auto' (match the camera's publisher: reliable when it is), "
                              "'best_effort' (sensor data) or 'reliable'.", read_only=True, choices=IMAGE_RELIABILITIES),
    "sync_slop": Spec("Largest stamp difference (s) between an image and its camera_info (and detections, depth).", read_only=True, low=0.0, high=1.0),
    "sync_queue_size": Spec("Messages kept per input by the time synchronizer.", read_only=True, low=1, high=100),
    "camera_info_timeout": Spec("Warn when images arrive without a matching camera_info for this long (s).", low=0.1, high=60.0),
    "stamp_jump_threshold": Spec("A frame stamped this many seconds or more ahead of or behind the previous one resets the "
                                 "synchroniser and the tracks (a looping bag, a camera resync).", low=0.1, high=1e9),
    "idle_warning_timeout": Spec("Diagnostics WARN when images arrive but no person was output for this long (s).", low=0.5, high=3600.0),
    "detections_format": Spec("Message type on 'detections': 'h4w' (h4w_ros/PersonBoxArray) or 'vision_msgs' "
                              "(vision_msgs/Detection2DArray; class id 'person' or '0' kept).", read_only=True, choices=("h4w", "vision_msgs")),
    "use_depth": Spec("Subscribe 'depth' (depth image registered to the colour camera, 16UC1 mm or 32FC1 m) and "
                      "rescale each person to its measured torso depth.", read_only=True),
    "tracking": Spec("Give persons persistent ids across frames."),
    "tracker": Spec("Tracker used when tracking is on (iou: IoU + Hungarian, constant velocity).", read_only=True, choices=tuple(sorted(TRACKERS))),
    "track_iou_threshold": Spec("Smallest IoU for a box to continue a track.", low=0.01, high=1.0),
    "track_min_hits": Spec("Frames a track needs before it gets an id (birth).", low=1, high=100),
    "track_max_age": Spec("Frames a track survives unseen before it is dropped (death).", low=0, high=1000),
    "smoothing": Spec("One-Euro smoothing per track of the SMPL-X parameters before posing: rotations on SO(3), translation, "
                      "placement box, shape."),
    "smoothing_min_cutoff": Spec("One-Euro minimum cutoff frequency (Hz): lower = smoother when still.", low=0.001, high=100.0),
    "smoothing_translation_beta": Spec("One-Euro speed gain for translation (Hz per m/s): higher = less lag when moving.", low=0.0, high=100.0),
    "smoothing_rotation_beta": Spec("One-Euro speed gain for rotations (Hz per rad/s): higher = less lag when turning.", low=0.0, high=100.0),
    "publish_mesh": Spec("Fill WholeBodyMesh.vertices (10475 x 3 floats per person)."),
    "publish_markers": Spec("Publish RViz markers on human/wholebody/markers."),
    "publish_tf": Spec("Broadcast TF frames for pelvis, wrists and finger joints."),
    "publish_overlay": Spec("Publish a debug image with the meshes drawn on human/wholebody/overlay."),
    "frame_prefix": Spec("Prefix of every TF frame name the node broadcasts (e.g. 'cam_left/'), so two nodes never collide.", read_only=True),
    "marker_rate": Spec("Most RViz marker frames per second, built on their own thread from the newest result (Hz).", low=0.1, high=100.0),
    "marker_mesh": Spec("Mesh marker: 'coarse' (a display mesh of at most 3,000 triangles on the posed vertices) or 'full' (20,908).",
                        read_only=True, choices=("full", "coarse")),
    "marker_face_stride": Spec("Draw every n-th mesh triangle in the RViz marker (1 = all).", low=1, high=100),
    "marker_lifetime": Spec("Marker lifetime (s), so markers of a stopped node vanish.", low=0.0, high=60.0),
    "diagnostics_period": Spec("Period (s) of /diagnostics messages.", low=0.1, high=60.0),
    "hri": Spec("Publish the REP 155 (ROS4HRI) topics under /humans when hri_msgs is installed (else a one-line notice); "
                "TF frames follow REP 155 either way.", read_only=True),
    "publish_hands": Spec("Publish every hand's state (pointing ray, aperture, curls, gesture) on human/hands (docs/HANDS.md)."),
    "hand_straight_max": Spec("A long finger with curl at most this is extended (open hand, pointing index); 0..1.", low=0.0, high=1.0),
    "hand_curled_min": Spec("A long finger with curl at least this is folded (fist, pointing); 0..1, above hand_straight_max.", low=0.0, high=1.0),
    "hand_pinch_aperture": Spec("Thumb tip to index tip at most this for a pinch (m).", low=0.001, high=0.2),
}

# Parameters applied to the people pipeline (a change rebuilds it: tracks restart)
PEOPLE_PARAMETERS = frozenset(f.name for f in fields(PeopleConfig)) - {"detector_providers"}


def _expected(default: Any) -> str:
    if isinstance(default, bool):
        return "a bool"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, tuple):
        return "a list of numbers"
    return "a string"


def coerce(name: str, value: Any) -> Any:
    """The value as the parameter's Python type, checked against its choices and range."""
    default = getattr(NodeConfig(), name)
    spec = SPECS[name]
    expected = _expected(default)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        value = tuple(float(v) for v in value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ParameterError(f"parameter '{name}' must be {expected}, got {value!r} ({type(value).__name__})")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"parameter '{name}' must be finite, got {value}")
    if isinstance(value, tuple) and not all(math.isfinite(v) for v in value):
        raise ParameterError(f"parameter '{name}' must hold finite numbers, got {list(value)}")
    if spec.choices and value not in spec.choices:
        raise ParameterError(f"parameter '{name}' must be one of {', '.join(spec.choices)}; got {value!r}")
    if spec.low is not None and isinstance(value, (int, float)) and not spec.low <= value <= spec.high:
        raise ParameterError(f"parameter '{name}' must be in [{spec.low:g}, {spec.high:g}], got {value}")
    return value


def _descriptor(name: str, default: Any) -> ParameterDescriptor:
    spec = SPECS[name]
    text = spec.description + (f" One of: {', '.join(spec.choices)}." if spec.choices else "")
    extra: dict = {}
    if isinstance(default, float):
        # dynamic typing so that integers are accepted where floats are declared; checked in coerce()
        extra["dynamic_typing"] = True
        if spec.low is not None:
            extra["floating_point_range"] = [FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
    elif isinstance(default, tuple):
        extra["dynamic_typing"] = True
    elif isinstance(default, int) and not isinstance(default, bool) and spec.low is not None:
        extra["integer_range"] = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)]
    return ParameterDescriptor(description=text, read_only=spec.read_only, **extra)


def declare_and_read(node: Node) -> NodeConfig:
    """Declare every parameter with its descriptor and read them into a checked NodeConfig.

    Raises ParameterError (one line, naming the parameter) for any unusable override.
    """
    defaults = NodeConfig()
    values = {}
    for f in fields(NodeConfig):
        default = getattr(defaults, f.name)
        declared = list(default) if isinstance(default, tuple) else default
        try:
            value = node.declare_parameter(f.name, declared, _descriptor(f.name, default)).value
        except ParameterException as exc:  # wrong type or range of an override given at start
            raise ParameterError(f"parameter '{f.name}' must be {_expected(default)}"
                                 f"{_range_text(f.name)}: {type(exc).__name__}: {_first_line(exc)}") from None
        values[f.name] = coerce(f.name, value)
    config = NodeConfig(**values)
    validate(config)
    return config


def _range_text(name: str) -> str:
    spec = SPECS[name]
    return f" in [{spec.low:g}, {spec.high:g}]" if spec.low is not None else ""


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else ""


def validate(config: NodeConfig) -> None:
    """Settings that only make sense together; raises ParameterError."""
    for f in fields(NodeConfig):
        coerce(f.name, getattr(config, f.name))
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_/]*|", config.frame_prefix):
        raise ParameterError(f"parameter 'frame_prefix' must be letters, digits, '_' and '/' not starting with '/' "
                             f"(TF frame names have no leading slash), got {config.frame_prefix!r}")
    try:
        people_config(config)
        hand_config(config)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None


def hand_config(config: NodeConfig) -> HandStateConfig:
    """The hand-state thresholds (h4w_core.people.hands) from the node's parameters."""
    if not config.hand_straight_max < config.hand_curled_min:
        raise ValueError(f"parameter 'hand_straight_max' ({config.hand_straight_max}) must be below "
                         f"'hand_curled_min' ({config.hand_curled_min})")
    return HandStateConfig(straight_max=config.hand_straight_max, curled_min=config.hand_curled_min,
                           pinch_aperture_m=config.hand_pinch_aperture)


def as_declared_types(parameters: list[Parameter]) -> list[Parameter]:
    """Integers given live for a float (or float array) parameter, stored as floats, so that
    `ros2 param get` and `ros2 param dump` show the declared type (a pre-set callback)."""
    defaults = NodeConfig()
    out = []
    for p in parameters:
        default = getattr(defaults, p.name, None)
        if isinstance(default, float) and p.type_ == Parameter.Type.INTEGER:
            p = Parameter(p.name, Parameter.Type.DOUBLE, float(p.value))
        elif isinstance(default, tuple) and p.type_ == Parameter.Type.INTEGER_ARRAY:
            p = Parameter(p.name, Parameter.Type.DOUBLE_ARRAY, [float(v) for v in p.value])
        out.append(p)
    return out


def check_update(config: NodeConfig, parameters: list[Parameter]) -> NodeConfig:
    """The NodeConfig after a live change, or ParameterError with the reason (nothing applied)."""
    changes = {}
    for p in parameters:
        if p.name not in SPECS:
            raise ParameterError(f"'{p.name}' is not a parameter of this node")
        if SPECS[p.name].read_only:
            raise ParameterError(f"parameter '{p.name}' is read-only (set it at launch)")
        changes[p.name] = coerce(p.name, p.value)
    new = replace(config, **changes)
    validate(new)
    return new


def people_config(config: NodeConfig) -> PeopleConfig:
    """The ROS-free people pipeline's settings from the node's parameters."""
    values = {name: getattr(config, name) for name in PEOPLE_PARAMETERS}
    providers = tuple(p.strip() for p in config.detector_providers.split(",") if p.strip())
    return PeopleConfig(detector_providers=providers, **values)
