"""The real camera: pinhole intrinsics, checked on construction (numpy only)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_FOCAL_PX = 1e6  # a focal length beyond this is a broken camera_info, not a lens


class InvalidIntrinsicsError(ValueError):
    """Camera intrinsics that are not finite, not positive or absurd."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the real camera, pixels (sensor_msgs/CameraInfo K)."""

    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self):
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values):
            raise InvalidIntrinsicsError(f"intrinsics must be finite, got fx={self.fx}, fy={self.fy}, cx={self.cx}, cy={self.cy}")
        if not (0.0 < self.fx <= MAX_FOCAL_PX and 0.0 < self.fy <= MAX_FOCAL_PX):
            raise InvalidIntrinsicsError(f"focal lengths must be in (0, {MAX_FOCAL_PX:g}] px, got fx={self.fx}, fy={self.fy}")

    @classmethod
    def default_for(cls, width: int, height: int) -> Intrinsics:
        """A plausible camera when none is known: focal = max(W, H), centred principal point."""
        f = float(max(width, height))
        return cls(f, f, width / 2.0, height / 2.0)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points (N, 3) -> pixels (N, 2), pinhole without distortion."""
        p = np.asarray(points, dtype=np.float64)
        return np.stack((p[:, 0] / p[:, 2] * self.fx + self.cx, p[:, 1] / p[:, 2] * self.fy + self.cy), axis=1)

    @classmethod
    def parse(cls, text: str) -> Intrinsics:
        """Parse 'fx,fy,cx,cy' (raises InvalidIntrinsicsError, a ValueError)."""
        parts = [p for p in text.split(",") if p.strip()]
        if len(parts) != 4:
            raise InvalidIntrinsicsError(f"intrinsics must be 'fx,fy,cx,cy', got {text!r}")
        try:
            fx, fy, cx, cy = (float(p) for p in parts)
        except ValueError as exc:
            raise InvalidIntrinsicsError(f"intrinsics must be four numbers 'fx,fy,cx,cy', got {text!r}") from exc
        return cls(fx, fy, cx, cy)
