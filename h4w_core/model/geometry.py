"""Pure tensor functions of the Hand4Whole forward pass.

Everything here is free of data-dependent Python control flow so that the same code exports to
ONNX and TensorRT unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from h4w_core.model import constants


def soft_argmax_3d(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over each (D, H, W) volume and expected voxel index.

    logits: (N, J, D, H, W). Returns (coords (N, J, 3) as x, y, z in voxel units, heatmap).
    """
    n, j, d, h, w = logits.shape
    heatmap = F.softmax(logits.reshape(n, j, d * h * w), dim=2).reshape(n, j, d, h, w)
    accu_x = heatmap.sum(dim=(2, 3)) * torch.arange(w, dtype=heatmap.dtype, device=heatmap.device)
    accu_y = heatmap.sum(dim=(2, 4)) * torch.arange(h, dtype=heatmap.dtype, device=heatmap.device)
    accu_z = heatmap.sum(dim=(3, 4)) * torch.arange(d, dtype=heatmap.dtype, device=heatmap.device)
    coords = torch.stack((accu_x.sum(2), accu_y.sum(2), accu_z.sum(2)), dim=2)
    return coords, heatmap


def soft_argmax_2d(logits: torch.Tensor) -> torch.Tensor:
    """logits (N, J, H, W) -> expected pixel (x, y) per map, (N, J, 2)."""
    n, j, h, w = logits.shape
    heatmap = F.softmax(logits.reshape(n, j, h * w), dim=2).reshape(n, j, h, w)
    accu_x = heatmap.sum(dim=2) * torch.arange(w, dtype=heatmap.dtype, device=heatmap.device)
    accu_y = heatmap.sum(dim=3) * torch.arange(h, dtype=heatmap.dtype, device=heatmap.device)
    return torch.stack((accu_x.sum(2), accu_y.sum(2)), dim=2)


def sample_joint_features(feature: torch.Tensor, joint_xy: torch.Tensor) -> torch.Tensor:
    """Bilinear features at joint positions given in feature-map pixels.

    feature (N, C, H, W), joint_xy (N, J, 2) -> (N, J, C). Pixel centres sit on integers
    (align_corners=True), zeros outside, as the reference samples them.
    """
    h, w = feature.shape[2:]
    x = joint_xy[:, :, 0] / (w - 1) * 2 - 1
    y = joint_xy[:, :, 1] / (h - 1) * 2 - 1
    grid = torch.stack((x, y), dim=2)[:, :, None, :]
    sampled = F.grid_sample(feature, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return sampled[:, :, :, 0].permute(0, 2, 1)


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3). Columns a1 = (x0, x2, x4), a2 = (x1, x3, x5): interleaved."""
    m = x.reshape(*x.shape[:-1], 3, 2)
    a1, a2 = m[..., 0], m[..., 1]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def rotmat_to_axis_angle(rot: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) through a unit quaternion (Shepperd's branch choice, branch-free)."""
    r = rot
    m00, m01, m02 = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    m10, m11, m12 = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    m20, m21, m22 = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    trace = m00 + m11 + m22
    # four candidate (unnormalised) quaternions (w, x, y, z); pick the one with the largest norm
    q_w = torch.stack((1 + trace, m21 - m12, m02 - m20, m10 - m01), dim=-1)
    q_x = torch.stack((m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20), dim=-1)
    q_y = torch.stack((m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21), dim=-1)
    q_z = torch.stack((m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22), dim=-1)
    cands = torch.stack((q_w, q_x, q_y, q_z), dim=-2)  # (..., 4, 4)
    diag = torch.stack((1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), -1)
    best = F.one_hot(diag.argmax(dim=-1), 4).to(r.dtype)
    q = (cands * best[..., None]).sum(dim=-2)
    q = F.normalize(q, dim=-1)
    q = q * torch.where(q[..., :1] < 0, -1.0, 1.0).to(q.dtype)  # w >= 0: angle in [0, pi]
    w, v = q[..., 0], q[..., 1:]
    sin_half = v.norm(dim=-1)
    angle = 2 * torch.atan2(sin_half, w)
    # angle / sin(angle/2) -> 2 as the angle -> 0
    scale = torch.where(sin_half > 1e-8, angle / sin_half.clamp_min(1e-8), torch.full_like(angle, 2.0))
    aa = v * scale[..., None]
    return torch.nan_to_num(aa, nan=0.0)


def rot6d_to_axis_angle(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3)."""
    return rotmat_to_axis_angle(rot6d_to_rotmat(x))


def camera_translation(cam_param: torch.Tensor) -> torch.Tensor:
    """(N, 3) network camera output -> (N, 3) metres; t_z = k * sigmoid(c_z)."""
    k = math.sqrt(
        constants.FOCAL[0] * constants.FOCAL[1] * constants.CAMERA_3D_SIZE**2
        / (constants.INPUT_BODY_SHAPE[0] * constants.INPUT_BODY_SHAPE[1])
    )
    t_z = k * torch.sigmoid(cam_param[:, 2])
    return torch.stack((cam_param[:, 0], cam_param[:, 1], t_z), dim=1)


def restore_bbox(center: torch.Tensor, size: torch.Tensor, aspect_ratio: float, extension: float) -> torch.Tensor:
    """Box-net centre/size (output-heatmap units) -> x1 y1 x2 y2 in 192x256 body-input pixels.

    Keeps the centre, grows the smaller side to aspect_ratio (w/h), then scales by extension.
    """
    hm_h, hm_w = constants.OUTPUT_HM_SHAPE[1], constants.OUTPUT_HM_SHAPE[2]
    body_h, body_w = constants.INPUT_BODY_SHAPE
    x1 = (center[:, 0] - size[:, 0] / 2) / hm_w * body_w
    y1 = (center[:, 1] - size[:, 1] / 2) / hm_h * body_h
    x2 = (center[:, 0] + size[:, 0] / 2) / hm_w * body_w
    y2 = (center[:, 1] + size[:, 1] / 2) / hm_h * body_h
    w = x2 - x1
    h = y2 - y1
    c_x = x1 + w / 2
    c_y = y1 + h / 2
    too_wide = w > aspect_ratio * h
    too_tall = w < aspect_ratio * h
    h, w = torch.where(too_wide, w / aspect_ratio, h), torch.where(too_tall, h * aspect_ratio, w)
    w = w * extension
    h = h * extension
    x1 = c_x - w / 2
    y1 = c_y - h / 2
    return torch.stack((x1, y1, w + x1, h + y1), dim=1)


def _roi_axis_weights(start: torch.Tensor, end: torch.Tensor, out_size: int, in_size: int, max_grid: int) -> torch.Tensor:
    """RoIAlign (aligned=False, adaptive sampling) along one axis as a (N, out, in) matrix.

    Reproduces torchvision's sample positions (bin grid = ceil(roi / out), clamped to max_grid),
    its edge rule (samples in [-1, size] clamp to the border, farther ones are zero) and its
    average over the grid. Bilinear sampling is separable, so a 2-D RoIAlign is Wy @ img @ Wx^T.
    """
    roi = torch.clamp(end - start, min=1.0)  # (N,)
    bin_size = roi / out_size
    grid = torch.clamp(torch.ceil(roi / out_size), 1, max_grid)  # (N,)
    p = torch.arange(out_size, dtype=start.dtype, device=start.device)
    s = torch.arange(max_grid, dtype=start.dtype, device=start.device)
    pos = (
        start[:, None, None]
        + p[None, :, None] * bin_size[:, None, None]
        + (s[None, None, :] + 0.5) * bin_size[:, None, None] / grid[:, None, None]
    )  # (N, out, G)
    used = (s[None, None, :] < grid[:, None, None]).to(start.dtype)
    inside = ((pos >= -1.0) & (pos <= in_size)).to(start.dtype)
    weight = used * inside / grid[:, None, None]
    pos = pos.clamp(0, in_size - 1)
    pix = torch.arange(in_size, dtype=start.dtype, device=start.device)
    hat = torch.relu(1 - (pos[..., None] - pix).abs())  # (N, out, G, in)
    return (hat * weight[..., None]).sum(dim=2)


def roi_align(image: torch.Tensor, boxes: torch.Tensor, output_size: tuple[int, int], max_grid: int = 8) -> torch.Tensor:
    """torchvision.ops.roi_align(image, boxes_with_batch_index, output_size, aligned=False) equivalent.

    image (N, C, H, W); boxes (N, 4) x1 y1 x2 y2 in image pixels, one box per image.
    Exact for boxes up to max_grid times the output size; built from MatMul only (ONNX/TensorRT
    friendly, no RoiAlign plugin).
    """
    out_h, out_w = output_size
    in_h, in_w = image.shape[2:]
    wy = _roi_axis_weights(boxes[:, 1], boxes[:, 3], out_h, in_h, max_grid)  # (N, out_h, H)
    wx = _roi_axis_weights(boxes[:, 0], boxes[:, 2], out_w, in_w, max_grid)  # (N, out_w, W)
    rows = torch.matmul(wy[:, None], image)  # (N, C, out_h, W)
    return torch.matmul(rows, wx.transpose(1, 2)[:, None])  # (N, C, out_h, out_w)
