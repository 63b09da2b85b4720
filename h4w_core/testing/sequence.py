"""A deterministic multi-person image sequence built from a real photo, for tests and the demo.

The tracker, smoother and detectors need people who move, cross, occlude each other and leave
the frame; we have one licence-free photo of one person (h4w_core/data/astronaut.jpg). So the person is
cropped from it and pasted three times, one copy mirrored, each at its own scale and path:

* person 0 walks left to right;
* person 1 (mirrored, largest, so nearest and drawn last) walks right to left and passes in
  front of person 0 half-way through, hiding it for a few frames;
* person 2 walks out through the right edge, stays out for a while and walks back in.

The crop is squeezed to the 1:2 aspect of an upright pedestrian because OpenCV's default HOG
people detector is trained on 64x128 full-body windows; at the default heights (about 120-140
pixels) it finds these crops, so the sequence also exercises the offline detector.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from h4w_core.data import SAMPLE_PHOTO

DEFAULT_PHOTO = SAMPLE_PHOTO
PHOTO_PERSON_BOX = (10, 10, 360, 502)  # x, y, w, h of the person in h4w_core/data/astronaut.jpg
SPRITE_ASPECT = 0.5  # width / height of a pasted person (the HOG window's aspect)


@dataclass(frozen=True)
class _Walker:
    """One pasted person: path keyframes (time in [0, 1], centre x as a fraction of the width)."""

    keys_t: tuple[float, ...]
    keys_x: tuple[float, ...]
    height: float  # fraction of the frame height
    feet_y: float  # fraction of the frame height
    mirrored: bool
    bob_phase: float


# Person 1 is the largest, so the nearest: it is drawn over person 0 where they cross.
_WALKERS = (
    _Walker((0.0, 1.0), (0.10, 0.70), 0.50, 0.84, False, 0.0),
    _Walker((0.0, 1.0), (0.62, 0.10), 0.58, 0.90, True, 1.3),
    _Walker((0.0, 0.25, 0.6, 1.0), (0.82, 1.15, 1.15, 0.86), 0.50, 0.83, False, 2.1),
)
_DRAW_ORDER = tuple(sorted(range(len(_WALKERS)), key=lambda i: _WALKERS[i].height))  # far to near


@dataclass(frozen=True)
class CrowdSequence:
    """Frames with ground truth. Boxes are x, y, w, h in pixels, clipped to the frame.

    A box is listed whenever any part of its person is inside the frame, even when another
    person hides it (visibility says how much of it can be seen).
    """

    frames: list[np.ndarray]  # T x (H, W, 3) uint8 RGB
    gt_boxes: list[np.ndarray]  # T x (K_t, 4) float64
    gt_ids: list[np.ndarray]  # T x (K_t,) int64, 0..num_people-1
    visibility: list[np.ndarray]  # T x (K_t,) float64, visible fraction of the whole person
    num_people: int


def load_person_sprite(photo_path: Path | str | None = None) -> np.ndarray:
    """The person cropped from the photo, RGB uint8 (H, W, 3)."""
    path = Path(photo_path) if photo_path is not None else DEFAULT_PHOTO
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(
            f"cannot read the person photo {path}; pass photo_path= or reinstall h4w (the photo is package data: h4w_core/data/astronaut.jpg)"
        )
    x, y, w, h = PHOTO_PERSON_BOX
    img_h, img_w = bgr.shape[:2]
    if img_w < x + w or img_h < y + h:
        # another photo: use its central full-height strip of the same aspect
        w = min(img_w, int(round(img_h * w / h)))
        x, y, h = (img_w - w) // 2, 0, img_h
    return np.ascontiguousarray(bgr[y : y + h, x : x + w, ::-1])


def _background(height: int, width: int) -> np.ndarray:
    """A plain wall over a darker floor with faint fixed noise (seeded, so deterministic)."""
    rows = np.arange(height, dtype=np.float64)[:, None]
    horizon = 0.72 * height
    wall = 150.0 + 10.0 * rows / max(horizon, 1.0)
    floor = 115.0 - 15.0 * (rows - horizon) / max(height - horizon, 1.0)
    grey = np.where(rows < horizon, wall, floor) * np.ones((1, width))
    noise = np.random.default_rng(5).normal(0.0, 2.0, size=(height, width))
    base = np.clip(grey + noise, 0, 255)
    tint = np.array([1.0, 0.98, 0.94])  # slightly warm, so the channels are not identical
    return np.clip(base[:, :, None] * tint, 0, 255).astype(np.uint8)


def _walker_box(walker: _Walker, t: float, frame_index: int, height: int, width: int) -> np.ndarray:
    """Unclipped x, y, w, h of a walker at normalised time t."""
    cx = float(np.interp(t, walker.keys_t, walker.keys_x)) * width
    h = walker.height * height
    w = SPRITE_ASPECT * h
    bob = 1.5 * np.sin(0.9 * frame_index + walker.bob_phase)  # a gait's up-and-down, pixels
    return np.array([cx - w / 2.0, walker.feet_y * height - h + bob, w, h])


def make_crowd_sequence(
    num_frames: int = 40, size: tuple[int, int] = (240, 480), photo_path: Path | str | None = None
) -> CrowdSequence:
    """Render the three-person sequence; size is (H, W). Same arguments, same pixels."""
    if num_frames < 2:
        raise ValueError(f"num_frames must be at least 2, got {num_frames}")
    height, width = (int(v) for v in size)
    if height < 64 or width < 64:
        raise ValueError(f"size (H, W) must be at least 64x64 pixels, got {size}")
    sprite = load_person_sprite(photo_path)
    background = _background(height, width)
    frames, boxes, ids, vis = [], [], [], []
    for f in range(num_frames):
        t = f / (num_frames - 1)
        frame = background.copy()
        owner = np.full((height, width), -1, dtype=np.int64)  # who is seen at each pixel
        full_area, clipped = [0] * len(_WALKERS), [None] * len(_WALKERS)
        for pid in _DRAW_ORDER:
            walker = _WALKERS[pid]
            box = _walker_box(walker, t, f, height, width)
            x0, y0 = int(round(box[0])), int(round(box[1]))
            w, h = int(round(box[2])), int(round(box[3]))
            full_area[pid] = w * h
            patch = cv2.resize(sprite, (w, h), interpolation=cv2.INTER_AREA)
            if walker.mirrored:
                patch = patch[:, ::-1]
            xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
            if xb <= xa or yb <= ya:
                continue
            frame[ya:yb, xa:xb] = patch[ya - y0 : yb - y0, xa - x0 : xb - x0]
            owner[ya:yb, xa:xb] = pid
            clipped[pid] = (xa, ya, xb - xa, yb - ya)
        counts = np.bincount(owner[owner >= 0], minlength=len(_WALKERS))
        present = [pid for pid, c in enumerate(clipped) if c is not None]
        frames.append(frame)
        boxes.append(np.array([clipped[p] for p in present], dtype=np.float64).reshape(-1, 4))
        ids.append(np.array(present, dtype=np.int64))
        vis.append(np.array([counts[p] / full_area[p] for p in present], dtype=np.float64))
    return CrowdSequence(frames, boxes, ids, vis, len(_WALKERS))

