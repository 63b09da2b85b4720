"""Metric placement from a registered depth image.

Hand4Whole's translation fixes the person's distance from an assumed 2.5 m body extent
(model.constants.CAMERA_3D_SIZE), so children, crouching people and wrong intrinsics end up at the wrong
depth. When a depth image registered to the colour camera is available, the robust median depth
over the person's torso gives the true distance, and scaling the person's points about the camera
centre by ``measured / estimated`` moves them along their camera rays: the projections (and so the
overlay on the image) do not change, only the metric placement and size.

Depth conventions (REP 118 and the common drivers): uint16 in millimetres or float32 in metres,
with 0 (and NaN, inf for floats) meaning "no measurement".
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from h4w_core.inference.results import PersonResult
from h4w_core.model.joint_tables import joint_indices


class InvalidDepthImageError(ValueError):
    """A depth image of an unsupported dtype or shape."""


@dataclass(frozen=True)
class DepthConfig:
    """Robust torso depth settings.

    min_valid_pixels: fewer valid torso pixels than this and no depth is reported.
    min_depth_m, max_depth_m: readings outside this range are treated as invalid.
    outlier_mads: readings further than this many scaled MADs from the median are dropped
        (an arm in front of the torso, background seen through a gap); the floor
        ``outlier_floor_m`` keeps a flat torso's tiny MAD from rejecting its own pixels.
    """

    min_valid_pixels: int = 20
    min_depth_m: float = 0.1
    max_depth_m: float = 20.0
    outlier_mads: float = 3.0
    outlier_floor_m: float = 0.05

    def __post_init__(self):
        if self.min_valid_pixels < 1:
            raise ValueError(f"min_valid_pixels must be >= 1, got {self.min_valid_pixels}")
        if not 0.0 <= self.min_depth_m < self.max_depth_m:
            raise ValueError(f"need 0 <= min_depth_m < max_depth_m, got {self.min_depth_m}, {self.max_depth_m}")
        if self.outlier_mads <= 0 or self.outlier_floor_m < 0:
            raise ValueError("outlier_mads must be positive and outlier_floor_m non-negative")


def _check_depth(depth: np.ndarray) -> np.ndarray:
    """Validate a depth image; returns it as (H, W)."""
    if not isinstance(depth, np.ndarray) or depth.ndim not in (2, 3) or (depth.ndim == 3 and depth.shape[2] != 1):
        raise InvalidDepthImageError(f"depth image must be (H, W), got {getattr(depth, 'shape', type(depth))}")
    if depth.dtype not in (np.uint16, np.float32, np.float64):
        raise InvalidDepthImageError(f"depth must be uint16 (mm) or float32 (m), got {depth.dtype}")
    return depth.reshape(depth.shape[:2])


def depth_in_metres(depth: np.ndarray) -> np.ndarray:
    """Depth readings (any shape) as uint16 millimetres or float metres -> float64 metres, NaN
    where invalid (0, NaN, inf)."""
    metres = depth.astype(np.float64) / (1000.0 if depth.dtype == np.uint16 else 1.0)
    metres[~np.isfinite(metres) | (metres <= 0)] = np.nan
    return metres


def polygon_pixels(polygon_xy: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Pixels (N, 2) x, y inside the convex hull of the given points (e.g. projected shoulders
    and hips), clipped to the image of shape (H, W, ...)."""
    pts = np.asarray(polygon_xy, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    mask = np.zeros(image_shape[:2], dtype=np.uint8)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    ys, xs = np.nonzero(mask)
    return np.stack([xs, ys], axis=1)


def box_pixels(box_xywh, image_shape: tuple[int, ...], shrink: float = 0.0) -> np.ndarray:
    """Pixels (N, 2) x, y of a box, optionally shrunk by ``shrink`` of its size on each side."""
    x, y, w, h = (float(v) for v in np.asarray(box_xywh, dtype=np.float64).reshape(4))
    x1, y1 = x + shrink * w, y + shrink * h
    x2, y2 = x + (1.0 - shrink) * w, y + (1.0 - shrink) * h
    height, width = image_shape[:2]
    xs = np.arange(max(0, int(np.ceil(x1))), min(width, int(np.ceil(x2))))
    ys = np.arange(max(0, int(np.ceil(y1))), min(height, int(np.ceil(y2))))
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def torso_depth(depth: np.ndarray, pixels_xy: np.ndarray, config: DepthConfig | None = None) -> float | None:
    """Robust depth (metres) of the given torso pixels, or None when too few are valid.

    depth: (H, W) uint16 mm or float m. pixels_xy: (N, 2) x, y pixel coordinates (rounded;
    those outside the image ignored). Median of the valid readings, then median again of the
    readings within ``outlier_mads`` scaled MADs of it.
    """
    cfg = config or DepthConfig()
    depth = _check_depth(depth)
    pix = np.round(np.asarray(pixels_xy, dtype=np.float64).reshape(-1, 2))
    pix = pix[np.all(np.isfinite(pix), axis=1)].astype(np.int64)
    height, width = depth.shape
    inside = (pix[:, 0] >= 0) & (pix[:, 0] < width) & (pix[:, 1] >= 0) & (pix[:, 1] < height)
    pix = np.unique(pix[inside], axis=0)
    values = depth_in_metres(depth[pix[:, 1], pix[:, 0]])
    values = values[np.isfinite(values) & (values >= cfg.min_depth_m) & (values <= cfg.max_depth_m)]
    if len(values) < cfg.min_valid_pixels:
        return None
    median = float(np.median(values))
    mad = 1.4826 * float(np.median(np.abs(values - median)))  # ~ std for Gaussian noise
    inliers = values[np.abs(values - median) <= max(cfg.outlier_mads * mad, cfg.outlier_floor_m)]
    if len(inliers) < cfg.min_valid_pixels:
        return None
    return float(np.median(inliers))


def depth_scale(estimated_depth: float, measured_depth: float) -> float:
    """Factor that moves a point at ``estimated_depth`` along its ray to ``measured_depth``."""
    if not (np.isfinite(estimated_depth) and estimated_depth > 0):
        raise ValueError(f"estimated depth must be positive and finite, got {estimated_depth}")
    if not (np.isfinite(measured_depth) and measured_depth > 0):
        raise ValueError(f"measured depth must be positive and finite, got {measured_depth}")
    return float(measured_depth) / float(estimated_depth)


def rescale_to_depth(points: np.ndarray, estimated_depth: float, measured_depth: float) -> np.ndarray:
    """Scale camera-frame points (..., 3) about the camera centre so that the reference point
    at ``estimated_depth`` (e.g. the pelvis z) lands at ``measured_depth``; projections unchanged.

    The sensor sees the torso's front surface, a few centimetres before the pelvis joint; for
    the closest match take ``estimated_depth`` the same way (median z of the person's torso
    vertices), otherwise the person lands that much too close.
    """
    return np.asarray(points, dtype=np.float64) * depth_scale(estimated_depth, measured_depth)


TORSO_JOINTS = joint_indices("L_Hip", "R_Hip", "L_Shoulder", "R_Shoulder")  # 137-joint set, torso corners


def place_person_with_depth(result: PersonResult, depth: np.ndarray, intrinsics, config: DepthConfig | None = None) -> PersonResult:
    """The person with its real-camera points rescaled so its torso sits at the measured depth.

    intrinsics: the colour camera's (camera.Intrinsics), to which the depth image is registered.
    The torso is the hull of the projected shoulders and hips. The sensor's robust torso depth
    is compared with the same quantity on the mesh: the near (front) surface, i.e. the 25th
    percentile depth of the vertices that project into the torso. The applied scale is the
    result's ``track.depth_scale``; the result is returned unchanged (depth_scale None) when the
    depth image has too few valid torso readings.
    """
    corners = np.asarray(result.joints_img, dtype=np.float64)[list(TORSO_JOINTS)]
    pixels = polygon_pixels(corners, depth.shape)
    measured = torso_depth(depth, pixels, config)
    if measured is None:
        return result
    v = np.asarray(result.vertices, dtype=np.float64)
    u, w = np.round(intrinsics.project(v)).astype(np.int64).T
    mask = np.zeros(depth.shape[:2], dtype=bool)
    mask[pixels[:, 1], pixels[:, 0]] = True
    h, wd = mask.shape
    ok = (u >= 0) & (u < wd) & (w >= 0) & (w < h)
    in_torso = np.zeros(len(v), dtype=bool)
    in_torso[ok] = mask[w[ok], u[ok]]
    if not in_torso.any():
        return result
    estimated = float(np.percentile(v[in_torso, 2], 25))
    scale = depth_scale(estimated, measured)
    scaled = {name: np.asarray(getattr(result, name), dtype=np.float64) * scale for name in ("vertices", "joints", "skeleton_joints")}
    return replace(result, track=replace(result.track, depth_scale=scale), **scaled)
