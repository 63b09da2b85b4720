"""Reference preprocessing: box sanitising, aspect 0.75, x1.25, affine crop to 384x512, RGB/255."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from h4w_core.model import constants


class InvalidBoxError(ValueError):
    """A person box that is empty, non-finite or entirely outside the image."""


class InvalidImageError(ValueError):
    """An image that is not HxWx3 uint8 (or HxW grey), or is empty."""


@dataclass(frozen=True)
class Crop:
    """The network input for one person and how it maps back to the original image."""

    patch: np.ndarray  # (3, 512, 384) float32 RGB in [0, 1]
    bbox_xywh: np.ndarray  # (4,) float32 processed box, original pixels
    img2crop: np.ndarray  # (2, 3) affine, original pixels -> crop pixels
    crop2img: np.ndarray  # (2, 3) affine, crop pixels -> original pixels


def process_bbox(bbox_xywh, img_width: int, img_height: int) -> np.ndarray:
    """Clip the box to the image, then widen to aspect 0.75 about its centre and scale by 1.25.

    Raises InvalidBoxError for an empty, non-finite or outside box (the reference returns None).
    """
    x, y, w, h = (float(v) for v in np.asarray(bbox_xywh, dtype=np.float64).reshape(4))
    if not np.all(np.isfinite([x, y, w, h])):
        raise InvalidBoxError(f"person box must be finite, got x,y,w,h = {x}, {y}, {w}, {h}")
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(img_width - 1.0, x1 + max(0.0, w - 1))
    y2 = min(img_height - 1.0, y1 + max(0.0, h - 1))
    if not (w * h > 0 and x2 > x1 and y2 > y1):
        raise InvalidBoxError(
            f"person box x,y,w,h = {x:g},{y:g},{w:g},{h:g} is empty or outside the {img_width}x{img_height} image"
        )
    w, h = x2 - x1, y2 - y1
    c_x, c_y = x1 + w / 2.0, y1 + h / 2.0
    if w > constants.BOX_ASPECT * h:
        h = w / constants.BOX_ASPECT
    elif w < constants.BOX_ASPECT * h:
        w = h * constants.BOX_ASPECT
    w, h = w * constants.BOX_SCALE, h * constants.BOX_SCALE
    return np.array([c_x - w / 2.0, c_y - h / 2.0, w, h], dtype=np.float32)


def _affine(bbox: np.ndarray, out_w: int, out_h: int, inverse: bool = False) -> np.ndarray:
    """Three-point affine mapping the box centre/half-extents onto the output's (float32 as reference)."""
    c = np.array([bbox[0] + 0.5 * bbox[2], bbox[1] + 0.5 * bbox[3]], dtype=np.float32)
    src = np.stack([c, c + np.array([0, bbox[3] * 0.5], np.float32), c + np.array([bbox[2] * 0.5, 0], np.float32)])
    dc = np.array([out_w * 0.5, out_h * 0.5], dtype=np.float32)
    dst = np.stack([dc, dc + np.array([0, out_h * 0.5], np.float32), dc + np.array([out_w * 0.5, 0], np.float32)])
    src, dst = src.astype(np.float32), dst.astype(np.float32)
    trans = cv2.getAffineTransform(dst, src) if inverse else cv2.getAffineTransform(src, dst)
    return trans.astype(np.float32)


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an HxWx3 (or HxW grey) uint8 image; returns HxWx3."""
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InvalidImageError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidImageError(f"image must be HxWx3 (or HxW), got shape {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise InvalidImageError(f"image is too small: {image.shape[1]}x{image.shape[0]}")
    return image


def to_rgb(image: np.ndarray, channel_order: str) -> np.ndarray:
    """uint8 HxWx3 (or HxW) in the stated order -> contiguous uint8 RGB."""
    image = check_image(image)
    order = channel_order.lower()
    if order == "bgr":
        image = image[:, :, ::-1]
    elif order != "rgb":
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    return np.ascontiguousarray(image)


def crop_person(rgb: np.ndarray, bbox_xywh) -> Crop:
    """Crop one person: process the box, warp the uint8 image bilinear with zero border to 384x512
    (uint8 rounding included, as the reference's parity run shows), /255, CHW float32."""
    img_h, img_w = rgb.shape[:2]
    bbox = process_bbox(bbox_xywh, img_w, img_h)
    out_h, out_w = constants.INPUT_IMG_SHAPE
    img2crop = _affine(bbox, out_w, out_h)
    patch = cv2.warpAffine(rgb, img2crop, (out_w, out_h), flags=cv2.INTER_LINEAR)
    chw = np.empty((3, out_h, out_w), dtype=np.float32)
    np.divide(patch.transpose(2, 0, 1), np.float32(255.0), out=chw, dtype=np.float32)  # one pass, = astype / 255
    return Crop(chw, bbox, img2crop, _affine(bbox, out_w, out_h, inverse=True))
