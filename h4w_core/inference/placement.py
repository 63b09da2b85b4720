"""From the crop's virtual camera to the real one: where the reference draws each point, and at what depth.

The network predicts a translation in a virtual camera of the crop (focal 5000 px in 192x256
body-input pixels). Placement puts each posed point on the real camera's ray through the pixel
where the reference draws it, at a metric depth rescaled from the virtual focal to the real one.
All functions are batched over persons (leading axis N) and branch-free.
"""
from __future__ import annotations

import numpy as np
import torch

from h4w_core.inference.camera import Intrinsics
from h4w_core.model import constants


def project_to_image(points_cam: torch.Tensor, bbox_xywh: torch.Tensor) -> torch.Tensor:
    """Virtual-camera points (N, K, 3) -> original-image pixels, exactly the reference's projection
    (focal 5000, princpt (96, 128) in 192x256 body-input pixels, mapped through the processed box)."""
    z = points_cam[..., 2] + 1e-4
    x = points_cam[..., 0] / z * constants.FOCAL[0] + constants.PRINCPT[0]
    y = points_cam[..., 1] / z * constants.FOCAL[1] + constants.PRINCPT[1]
    body_h, body_w = constants.INPUT_BODY_SHAPE
    u = x / body_w * bbox_xywh[:, None, 2] + bbox_xywh[:, None, 0]
    v = y / body_h * bbox_xywh[:, None, 3] + bbox_xywh[:, None, 1]
    return torch.stack((u, v), dim=-1)


def placement_camera(intrinsics: Intrinsics) -> np.ndarray:
    """(5,) float32: sqrt(fx fy), fx, fy, cx, cy: the camera as lift_to_camera reads it."""
    k = intrinsics
    return np.array((float(np.sqrt(k.fx * k.fy)), k.fx, k.fy, k.cx, k.cy), dtype=np.float32)


def camera_tensor(intrinsics: Intrinsics, device: torch.device | str = "cpu") -> torch.Tensor:
    """placement_camera as a tensor (an input of a traced graph)."""
    return torch.from_numpy(placement_camera(intrinsics)).to(device)


def lift_to_camera(
    points_cam: torch.Tensor, cam_trans: torch.Tensor, bbox_xywh: torch.Tensor, camera: Intrinsics | torch.Tensor
) -> torch.Tensor:
    """Place virtual-camera points (N, K, 3) in the real camera so they project where the reference draws them.

    The person's distance is rescaled from the virtual camera (focal 5000/192 * box width on the
    original image) to the real focal; each point keeps its metric depth offset from the body
    and is put on the real camera ray through its reference pixel. Projection with the given
    intrinsics is exact by construction, and the shape stays metric to first order.
    """
    if isinstance(camera, Intrinsics):
        camera = camera_tensor(camera, points_cam.device)
    focal, fx, fy, cx, cy = camera.unbind()
    uv = project_to_image(points_cam, bbox_xywh)
    virtual_focal = constants.FOCAL[0] / constants.INPUT_BODY_SHAPE[1] * bbox_xywh[:, 2]  # (N,)
    scale = focal / virtual_focal
    depth = points_cam[..., 2] - cam_trans[:, None, 2] + (scale * cam_trans[:, 2])[:, None]
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    return torch.stack((x, y, depth), dim=-1)


def crop_box_to_image(boxes: np.ndarray, bbox_xywh: np.ndarray) -> np.ndarray:
    """x1 y1 x2 y2 in 384x512 crop pixels (N, 4) -> original pixels (the crop is an axis-aligned scaling).

    numpy on purpose: these few tiny operations hold the GIL, where each torch call would give it
    up and have to wait for it back (see h4w_core.model.tracing)."""
    out_h, out_w = constants.INPUT_IMG_SHAPE
    sx = bbox_xywh[:, 2:3] / out_w
    sy = bbox_xywh[:, 3:4] / out_h
    scale = np.concatenate((sx, sy, sx, sy), axis=1)
    offset = np.concatenate((bbox_xywh[:, 0:2], bbox_xywh[:, 0:2]), axis=1)
    return boxes * scale + offset
