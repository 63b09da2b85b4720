"""Person boxes for the whole-body network: an offline HOG default and user-supplied YOLO ONNX models.

Hand4Whole needs one box per person. Two detectors implement the same small protocol and are
registered by name (``make_detector('hog' | 'onnx', **config)``):

* ``hog``: OpenCV's built-in Dalal-Triggs HOG + linear SVM people detector. Nothing to download,
  so the node works offline out of the box. It is a pedestrian detector: it finds upright,
  mostly full-length people whose height in the (possibly downscaled) image is at least about
  100 pixels, and misses sitting people and tight upper-body portraits (it finds nobody in
  h4w_core/data/astronaut.jpg, a 512x512 half-body photo).
* ``onnx``: a YOLO-family model exported to ONNX by the user, run with ONNX Runtime. Supported
  output layouts (first output of the model, batch 1, boxes cx, cy, w, h in input pixels,
  person = class 0 as in COCO):

  - ``yolov8`` (also YOLOv9/YOLO11 heads): shape (1, 4 + C, N), no objectness; person score
    = class-0 probability.
  - ``yolov5`` (also YOLOv7): shape (1, N, 5 + C), objectness at index 4; person score =
    objectness x class-0 probability.

  ``layout='auto'`` picks ``yolov8`` when the middle dimension is the smaller one, else
  ``yolov5``; set it explicitly for a transposed YOLOv8 export. Exports with NMS built in
  (end-to-end heads such as YOLOv10) are not supported. A candidate counts as a person only
  when class 0 is its best class (single-label, as Ultralytics' default NMS).

Both return at most ``max_persons`` boxes after score threshold and NMS, best score first.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from h4w_core.inference.preprocess import to_rgb

log = logging.getLogger(__name__)

LAYOUTS = ("auto", "yolov8", "yolov5")
LETTERBOX_FILL = 114  # grey padding value used by the YOLO family's letterbox


class DetectorError(RuntimeError):
    """A person detector could not be built or could not run."""


class DetectorModelNotFoundError(DetectorError, FileNotFoundError):
    """The configured detector model file does not exist."""


class UnknownOutputLayoutError(DetectorError, ValueError):
    """The ONNX model's output is none of the supported YOLO layouts."""


class UnknownDetectorError(DetectorError, ValueError):
    """make_detector was asked for a detector name that is not registered."""


@dataclass(frozen=True, eq=False)
class PersonDetection:
    """One person box: x, y, w, h in original image pixels, and a score in [0, 1]."""

    bbox_xywh: np.ndarray  # (4,) float64
    score: float


@runtime_checkable
class PersonDetector(Protocol):
    """What the node needs from a detector."""

    def detect(self, image: np.ndarray, channel_order: str = "rgb") -> list[PersonDetection]:
        """image: (H, W, 3) uint8. Returns person boxes, best score first."""
        ...


def _check_common(score_threshold: float, nms_iou: float, max_persons: int) -> None:
    if not 0.0 <= score_threshold < 1.0:
        raise ValueError(f"score_threshold must be in [0, 1), got {score_threshold}")
    if not 0.0 < nms_iou <= 1.0:
        raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
    if max_persons < 1:
        raise ValueError(f"max_persons must be >= 1, got {max_persons}")


def select_boxes(
    boxes_xywh: np.ndarray, scores: np.ndarray, score_threshold: float, nms_iou: float, max_persons: int
) -> list[PersonDetection]:
    """Score threshold, then NMS (cv2.dnn.NMSBoxes), then the best ``max_persons``, best first."""
    boxes_xywh = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    keep = (scores >= score_threshold) & (boxes_xywh[:, 2] > 0) & (boxes_xywh[:, 3] > 0)
    boxes_xywh, scores = boxes_xywh[keep], scores[keep]
    if len(scores) == 0:
        return []
    idx = np.asarray(cv2.dnn.NMSBoxes(boxes_xywh.tolist(), scores.tolist(), score_threshold, nms_iou)).reshape(-1)
    idx = idx[np.argsort(-scores[idx], kind="stable")][:max_persons]
    return [PersonDetection(boxes_xywh[i].copy(), float(scores[i])) for i in idx]


# ---------------------------------------------------------------------------------------------
# HOG


@dataclass(frozen=True)
class HogConfig:
    """OpenCV HOG people detector settings.

    score_threshold: on the logistic of the SVM margin (0.5 = margin 0, OpenCV's default).
    max_side: images whose longer side exceeds this are downscaled first (speed; people must
        then be at least about 100 pixels tall at the reduced size).
    box_margin: fraction of the 64x128 window trimmed from each side; the INRIA training
        windows put a 96-pixel person in 128 pixels, so 1/8 per side gives the person's box.

    Measured on make_crowd_sequence() (40 frames, 480x240): fully visible people found in
    53/80 cases at score_threshold 0.5 and 79/80 at 0.4, no false boxes either way; but at
    0.4 the portrait photo gets a false box on the helmet, so the default stays OpenCV's.
    About 0.1 s per 640x480 frame on one CPU core.
    """

    score_threshold: float = 0.5
    nms_iou: float = 0.45
    max_persons: int = 10
    max_side: int = 640
    win_stride: int = 8
    padding: int = 8
    scale: float = 1.05
    box_margin: float = 0.125

    def __post_init__(self):
        _check_common(self.score_threshold, self.nms_iou, self.max_persons)
        if self.max_side < 128:
            raise ValueError(f"max_side must be >= 128 (the HOG window height), got {self.max_side}")
        if self.scale <= 1.0:
            raise ValueError(f"scale (pyramid step) must be > 1, got {self.scale}")
        if not 0.0 <= self.box_margin < 0.5:
            raise ValueError(f"box_margin must be in [0, 0.5), got {self.box_margin}")


class HogPersonDetector:
    """Offline default: OpenCV's built-in HOG people detector (score = logistic of SVM margin)."""

    def __init__(self, config: HogConfig | None = None):
        self.config = config or HogConfig()
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, image: np.ndarray, channel_order: str = "rgb") -> list[PersonDetection]:
        """image: (H, W, 3) uint8 in channel_order ('rgb' or 'bgr')."""
        cfg = self.config
        rgb = to_rgb(image, channel_order)
        height, width = rgb.shape[:2]
        factor = min(1.0, cfg.max_side / max(height, width))
        if factor < 1.0:
            rgb = cv2.resize(rgb, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)
        if rgb.shape[0] < 128 or rgb.shape[1] < 64:
            return []  # smaller than one 64x128 detection window
        p = max(cfg.score_threshold, 1e-3)
        rects, weights = self._hog.detectMultiScale(
            rgb,
            hitThreshold=math.log(p / (1.0 - p)),  # the SVM margin whose logistic is p
            winStride=(cfg.win_stride, cfg.win_stride),
            padding=(cfg.padding, cfg.padding),
            scale=cfg.scale,
        )
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4) / factor
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, dtype=np.float64).reshape(-1)))
        trim = rects[:, 2:] * cfg.box_margin
        boxes = np.concatenate([rects[:, :2] + trim, rects[:, 2:] - 2 * trim], axis=1)
        return select_boxes(_clip_xywh(boxes, width, height), scores, cfg.score_threshold, cfg.nms_iou, cfg.max_persons)


# ---------------------------------------------------------------------------------------------
# ONNX (YOLO family)


@dataclass(frozen=True)
class OnnxYoloConfig:
    """A user-supplied YOLO ONNX model (see the module docstring for the output layouts).

    input_size: (H, W) network input; None reads it from the model (640x640 when dynamic).
    providers: ONNX Runtime execution providers in order of preference; None: CUDA when this
        onnxruntime build has it, then CPU. TensorRT through ONNX Runtime:
        ('TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider').
    """

    model_path: str
    score_threshold: float = 0.25
    nms_iou: float = 0.45
    max_persons: int = 10
    input_size: tuple[int, int] | None = None
    providers: tuple[str, ...] | None = None
    layout: str = "auto"
    person_class: int = 0

    def __post_init__(self):
        _check_common(self.score_threshold, self.nms_iou, self.max_persons)
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.input_size is not None:
            size = tuple(int(v) for v in np.broadcast_to(np.asarray(self.input_size), (2,)))
            if min(size) < 32:
                raise ValueError(f"input_size must be at least 32x32, got {self.input_size}")
            object.__setattr__(self, "input_size", size)
        if self.providers is not None:
            object.__setattr__(self, "providers", tuple(self.providers))


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the network input: input = original * scale + pad, per axis."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_original(self, boxes_xywh: np.ndarray) -> np.ndarray:
        """(N, 4) x, y, w, h in input pixels -> original pixels."""
        out = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4).copy()
        out[:, 0] = (out[:, 0] - self.pad_x) / self.scale_x
        out[:, 1] = (out[:, 1] - self.pad_y) / self.scale_y
        out[:, 2] /= self.scale_x
        out[:, 3] /= self.scale_y
        return out


def letterbox(rgb: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio, pad with grey 114 to input_hw (H, W), image centred."""
    in_h, in_w = input_hw
    height, width = rgb.shape[:2]
    ratio = min(in_h / height, in_w / width)
    new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
    pad_x, pad_y = (in_w - new_w) // 2, (in_h - new_h) // 2
    canvas = np.full((in_h, in_w, 3), LETTERBOX_FILL, dtype=np.uint8)
    if (new_w, new_h) != (width, height):
        rgb = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = rgb
    return canvas, Letterbox(new_w / width, new_h / height, float(pad_x), float(pad_y))


def decode_yolo(output: np.ndarray, layout: str = "auto", person_class: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw first output -> (boxes (N, 4) x, y, w, h in input pixels, person scores (N,)).

    Raises UnknownOutputLayoutError for shapes that fit no supported layout.
    """
    out = np.asarray(output)
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if out.ndim != 2:
        raise UnknownOutputLayoutError(
            f"detector output has shape {tuple(np.shape(output))}; expected (1, 4+C, N) for yolov8 or "
            "(1, N, 5+C) for yolov5 with batch 1"
        )
    if layout == "auto":
        layout = "yolov8" if out.shape[0] < out.shape[1] else "yolov5"
    rows = out.T if layout == "yolov8" else out
    first_class = 4 if layout == "yolov8" else 5
    num_classes = rows.shape[1] - first_class
    if num_classes <= person_class:
        raise UnknownOutputLayoutError(
            f"detector output has shape {tuple(np.shape(output))}: read as {layout} it has {num_classes} "
            f"class column(s), so no class {person_class}; set layout='yolov8' or 'yolov5' to match the export"
        )
    rows = rows.astype(np.float64)
    classes = rows[:, first_class:]
    scores = classes[:, person_class] * (rows[:, 4] if layout == "yolov5" else 1.0)
    scores = np.where(np.argmax(classes, axis=1) == person_class, scores, 0.0)
    cxcywh = rows[:, :4]
    boxes = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2.0, cxcywh[:, 2:]], axis=1)
    return boxes, scores


class OnnxYoloPersonDetector:
    """A YOLO-family ONNX person detector through ONNX Runtime."""

    def __init__(self, config: OnnxYoloConfig):
        import onnxruntime as ort  # lazy: only this detector needs it

        self.config = config
        path = Path(config.model_path).expanduser()
        if not path.is_file():
            raise DetectorModelNotFoundError(
                f"detector model {path} not found; export a YOLO model to ONNX (e.g. `yolo export "
                "model=yolov8n.pt format=onnx`) and set its path, or use the built-in 'hog' detector"
            )
        available = ort.get_available_providers()
        wanted = config.providers or ("CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in wanted if p in available]
        if not providers:
            raise DetectorError(f"none of the providers {list(wanted)} is available; this onnxruntime has {available}")
        if config.providers and len(providers) < len(config.providers):
            log.warning("onnxruntime lacks %s; using %s", sorted(set(config.providers) - set(providers)), providers)
        try:
            self._session = ort.InferenceSession(str(path), providers=providers)
        except Exception as err:  # onnxruntime raises its own untyped errors for bad files
            raise DetectorError(f"onnxruntime cannot load detector model {path}: {err}") from err
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self._input_dtype = np.float16 if "float16" in inp.type else np.float32
        self.input_size = config.input_size or self._model_input_size(inp.shape)
        out_shape = self._session.get_outputs()[0].shape
        if len(out_shape) not in (2, 3):
            raise UnknownOutputLayoutError(
                f"detector {path.name} has output shape {out_shape}; "
                "expected (1, 4+C, N) for yolov8 or (1, N, 5+C) for yolov5"
            )

    @staticmethod
    def _model_input_size(shape) -> tuple[int, int]:
        if len(shape) != 4:
            raise DetectorError(f"detector input must be (1, 3, H, W), got {shape}")
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            return h, w
        return 640, 640

    def detect(self, image: np.ndarray, channel_order: str = "rgb") -> list[PersonDetection]:
        """image: (H, W, 3) uint8 in channel_order ('rgb' or 'bgr')."""
        cfg = self.config
        rgb = to_rgb(image, channel_order)
        height, width = rgb.shape[:2]
        canvas, fit = letterbox(rgb, self.input_size)
        blob = (canvas.transpose(2, 0, 1)[None] / 255.0).astype(self._input_dtype)
        output = self._session.run(None, {self._input_name: blob})[0]
        boxes, scores = decode_yolo(output, cfg.layout, cfg.person_class)
        boxes = _clip_xywh(fit.to_original(boxes), width, height)
        return select_boxes(boxes, scores, cfg.score_threshold, cfg.nms_iou, cfg.max_persons)


def _clip_xywh(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip x, y, w, h boxes to the image; boxes entirely outside get zero size."""
    x1 = np.clip(boxes[:, 0], 0, width)
    y1 = np.clip(boxes[:, 1], 0, height)
    x2 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width)
    y2 = np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)


# ---------------------------------------------------------------------------------------------
# registry

DETECTORS = {
    "hog": (HogPersonDetector, HogConfig),
    "onnx": (OnnxYoloPersonDetector, OnnxYoloConfig),
}


def make_detector(name: str, **config) -> PersonDetector:
    """Build a registered detector from its config fields, e.g. make_detector('onnx', model_path=...)."""
    try:
        cls, config_cls = DETECTORS[name]
    except KeyError:
        raise UnknownDetectorError(f"unknown detector {name!r}; registered: {sorted(DETECTORS)}") from None
    return cls(config_cls(**config))
