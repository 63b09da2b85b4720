"""Data that crosses module boundaries: camera intrinsics and per-person results."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the real camera, pixels (sensor_msgs/CameraInfo K)."""

    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def default_for(cls, width: int, height: int) -> "Intrinsics":
        """A plausible camera when none is known: focal = max(W, H), centred principal point."""
        f = float(max(width, height))
        return cls(f, f, width / 2.0, height / 2.0)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points (N, 3) -> pixels (N, 2), pinhole without distortion."""
        p = np.asarray(points, dtype=np.float64)
        return np.stack((p[:, 0] / p[:, 2] * self.fx + self.cx, p[:, 1] / p[:, 2] * self.fy + self.cy), axis=1)

    @classmethod
    def parse(cls, text: str) -> "Intrinsics":
        """Parse 'fx,fy,cx,cy'."""
        parts = [p for p in text.split(",") if p.strip()]
        if len(parts) != 4:
            raise ValueError(f"intrinsics must be 'fx,fy,cx,cy', got {text!r}")
        fx, fy, cx, cy = (float(p) for p in parts)
        if fx <= 0 or fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={fx}, fy={fy}")
        return cls(fx, fy, cx, cy)


@dataclass
class PersonResult:
    """Whole-body estimate for one person.

    Pose parameters are axis-angle (radians) under smplx's argument names; hand poses are
    relative to the model's hand mean (flat_hand_mean=False), as the reference returns them.
    Real-camera quantities are metres in the camera optical frame (x right, y down, z forward).
    """

    bbox_xywh: np.ndarray  # (4,) processed person box (aspect 0.75, x1.25), original pixels
    global_orient: np.ndarray  # (3,)
    body_pose: np.ndarray  # (63,)
    left_hand_pose: np.ndarray  # (45,)
    right_hand_pose: np.ndarray  # (45,)
    jaw_pose: np.ndarray  # (3,)
    betas: np.ndarray  # (10,)
    expression: np.ndarray  # (10,)
    cam_trans: np.ndarray  # (3,) translation in the crop's virtual camera, metres
    mesh_cam: np.ndarray  # (10475, 3) vertices in the crop's virtual camera (reference smplx_mesh_cam)
    vertices: np.ndarray  # (10475, 3) vertices in the real camera frame
    joints: np.ndarray  # (137, 3) named joints (joint_tables.JOINT_NAMES) in the real camera frame
    skeleton_joints: np.ndarray  # (55, 3) SMPL-X skeleton joints in the real camera frame
    skeleton_rotations: np.ndarray  # (55, 3, 3) global joint orientations in the camera frame
    joints_img: np.ndarray  # (137, 2) projected named joints, original image pixels
    lhand_bbox: np.ndarray  # (4,) x1 y1 x2 y2, original pixels
    rhand_bbox: np.ndarray  # (4,)
    face_bbox: np.ndarray  # (4,)
    score: float = 1.0  # detector score of the person box (1.0 when the box was given)
    track_id: int = -1  # -1 when untracked
    extras: dict = field(default_factory=dict)
