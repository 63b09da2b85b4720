"""The node's parameters: each declared once with a descriptor, read once into a frozen dataclass."""
from __future__ import annotations

from dataclasses import dataclass, fields

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from h4w_core.backends import BACKENDS, PRECISIONS
from h4w_core.people.pipeline import BOX_SOURCES, PeopleConfig
from h4w_core.people.tracking import TRACKERS


@dataclass(frozen=True)
class NodeConfig:
    checkpoint: str = ""
    smplx_dir: str = ""
    allow_standin: bool = False
    device: str = "cpu"
    backend: str = "torch"
    precision: str = "fp32"
    box_source: str = "full_frame"
    fixed_roi: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    detector: str = "hog"
    detector_model: str = ""
    detector_providers: str = ""
    detector_score_threshold: float = 0.5
    max_persons: int = 4
    image_reliability: str = "best_effort"
    sync_slop: float = 0.05
    sync_queue_size: int = 10
    camera_info_timeout: float = 2.0
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
    marker_face_stride: int = 1
    marker_lifetime: float = 1.0
    diagnostics_period: float = 1.0


def _float_range(lo: float, hi: float) -> dict:
    return {"floating_point_range": [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]}


def _int_range(lo: int, hi: int) -> dict:
    return {"integer_range": [IntegerRange(from_value=lo, to_value=hi, step=1)]}


DESCRIPTIONS: dict[str, tuple[str, dict]] = {
    "checkpoint": ("Path to the released Hand4Whole checkpoint snapshot_6.pth.tar ('' = none).", {}),
    "smplx_dir": ("Folder holding SMPLX_NEUTRAL.npz (or a smplx/ subfolder with it).", {}),
    "allow_standin": ("With no checkpoint and smplx_dir, run on generated stand-in assets (demo/tests only; outputs are not real estimates).", {}),
    "device": ("Inference device: 'cpu' or 'cuda'.", {}),
    "backend": ("Inference backend: " + ", ".join(BACKENDS) + ".", {}),
    "precision": ("Network precision: fp32, fp16 or bf16 (what the backend supports on the device; never silently changed).", {}),
    "box_source": ("Where person boxes come from: " + ", ".join(BOX_SOURCES) + ".", {}),
    "fixed_roi": ("Person box x, y, width, height in pixels for box_source 'fixed_roi'.", {}),
    "detector": ("Built-in detector for box_source 'detector': 'hog' (OpenCV, offline) or 'onnx' (detector_model).", {}),
    "detector_model": ("YOLO-family ONNX person detector for detector 'onnx'.", {}),
    "detector_providers": ("ONNX Runtime execution providers for detector 'onnx', comma-separated in order of preference, "
                           "e.g. 'TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider' ('' = CUDA, then CPU).", {}),
    "detector_score_threshold": ("Minimum detector score of a person box.", _float_range(0.0, 1.0)),
    "max_persons": ("Most persons per frame sent through the network (highest scores kept).", _int_range(1, 64)),
    "image_reliability": ("Image/camera_info QoS reliability: 'best_effort' (sensor data, default) or 'reliable'. "
                          "Large images over Fast DDS shared memory may need 'reliable' or config/fastdds_large_images.xml.", {}),
    "sync_slop": ("Largest stamp difference (s) between an image and its camera_info (and detections).", _float_range(0.0, 1.0)),
    "sync_queue_size": ("Messages kept per input by the time synchronizer.", _int_range(1, 100)),
    "camera_info_timeout": ("Warn when images arrive without a matching camera_info for this long (s).", _float_range(0.1, 60.0)),
    "detections_format": ("Message type on 'detections': 'h4w' (h4w_ros/PersonBoxArray) or 'vision_msgs' "
                          "(vision_msgs/Detection2DArray, needs vision_msgs; class id 'person' or '0' kept).", {}),
    "use_depth": ("Subscribe 'depth' (depth image registered to the colour camera, 16UC1 mm or 32FC1 m) and "
                  "rescale each person to its measured torso depth.", {}),
    "tracking": ("Give persons persistent ids across frames.", {}),
    "tracker": ("Tracker used when tracking is on: " + ", ".join(sorted(TRACKERS)) + " (iou: IoU + Hungarian, constant velocity).", {}),
    "track_iou_threshold": ("Smallest IoU for a box to continue a track.", _float_range(0.0, 1.0)),
    "track_min_hits": ("Frames a track needs before it gets an id (birth).", _int_range(1, 100)),
    "track_max_age": ("Frames a track survives unseen before it is dropped (death).", _int_range(0, 1000)),
    "smoothing": ("One-Euro smoothing per track of the SMPL-X parameters before posing: rotations on SO(3), translation, placement box, shape.", {}),
    "smoothing_min_cutoff": ("One-Euro minimum cutoff frequency (Hz): lower = smoother when still.", _float_range(0.001, 100.0)),
    "smoothing_translation_beta": ("One-Euro speed gain for translation (Hz per m/s): higher = less lag when moving.", _float_range(0.0, 100.0)),
    "smoothing_rotation_beta": ("One-Euro speed gain for rotations (Hz per rad/s): higher = less lag when turning.", _float_range(0.0, 100.0)),
    "publish_mesh": ("Fill WholeBodyMesh.vertices (10475 x 3 floats per person).", {}),
    "publish_markers": ("Publish RViz markers on /human/wholebody/markers.", {}),
    "publish_tf": ("Broadcast TF frames for pelvis, wrists and finger joints.", {}),
    "publish_overlay": ("Publish a debug image with the meshes drawn on /human/wholebody/overlay.", {}),
    "marker_face_stride": ("Draw every n-th mesh triangle in the RViz marker (1 = all).", _int_range(1, 100)),
    "marker_lifetime": ("Marker lifetime (s), so markers of a stopped node vanish.", _float_range(0.0, 60.0)),
    "diagnostics_period": ("Period (s) of /diagnostics messages.", _float_range(0.1, 60.0)),
}

READ_ONLY = {"tracker", "detector_providers", "precision", "detections_format", "use_depth", "checkpoint", "smplx_dir", "allow_standin", "device", "backend", "box_source", "detector",
             "detector_model", "image_reliability", "sync_slop", "sync_queue_size"}


def declare_and_read(node: Node) -> NodeConfig:
    """Declare every parameter with its description and range, and read them into NodeConfig."""
    defaults = NodeConfig()
    values = {}
    for f in fields(NodeConfig):
        text, extra = DESCRIPTIONS[f.name]
        default = getattr(defaults, f.name)
        if isinstance(default, tuple):
            default = list(default)
        descriptor = ParameterDescriptor(description=text, read_only=f.name in READ_ONLY, **extra)
        value = node.declare_parameter(f.name, default, descriptor).value
        values[f.name] = tuple(float(v) for v in value) if isinstance(default, list) else value
    config = NodeConfig(**values)
    validate(config)
    return config


def validate(config: NodeConfig) -> None:
    """Reject contradictory settings early with the bad value and the allowed ones."""
    if config.box_source not in BOX_SOURCES:
        raise ValueError(f"box_source {config.box_source!r} is not one of {BOX_SOURCES}")
    if config.backend not in BACKENDS:
        raise ValueError(f"backend {config.backend!r} is not one of {tuple(BACKENDS)}")
    if config.precision not in PRECISIONS:
        raise ValueError(f"precision {config.precision!r} is not one of {PRECISIONS}")
    if config.tracker not in TRACKERS:
        raise ValueError(f"tracker {config.tracker!r} is not one of {tuple(sorted(TRACKERS))}")
    if config.device not in ("cpu", "cuda"):
        raise ValueError(f"device {config.device!r} must be 'cpu' or 'cuda'")
    if config.detections_format not in ("h4w", "vision_msgs"):
        raise ValueError(f"detections_format {config.detections_format!r} must be 'h4w' or 'vision_msgs'")
    if config.image_reliability not in ("best_effort", "reliable"):
        raise ValueError(f"image_reliability {config.image_reliability!r} must be 'best_effort' or 'reliable'")
    people_config(config)  # box source, fixed_roi and max_persons are checked there


def people_config(config: NodeConfig) -> PeopleConfig:
    """The ROS-free people pipeline's settings from the node's parameters."""
    names = {f.name for f in fields(PeopleConfig)}
    values = {name: getattr(config, name) for name in names if name != "detector_providers"}
    providers = tuple(p.strip() for p in config.detector_providers.split(",") if p.strip())
    return PeopleConfig(detector_providers=providers, **values)
