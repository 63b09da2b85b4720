"""SMPL-X posing and placement in the real camera as one module: what ``WholeBodyEstimator.pose``
runs for all persons of a frame, traced per batch size (h4w_core.model.tracing)."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from h4w_core.inference.placement import lift_to_camera, project_to_image
from h4w_core.model.body_model import BodyModel


class PlacedBodies(NamedTuple):
    mesh_cam: torch.Tensor  # (N, 10475, 3) virtual camera of the crop
    vertices: torch.Tensor  # (N, 10475, 3) real camera, metres
    joints: torch.Tensor  # (N, 137, 3) real camera
    skeleton_joints: torch.Tensor  # (N, 55, 3) real camera
    skeleton_rotations: torch.Tensor  # (N, 55, 3, 3) global joint orientations
    joints_img: torch.Tensor  # (N, 137, 2) original-image pixels (the reference's projection)


class PoseAndPlace(nn.Module):
    """SMPL-X parameters, virtual-camera translations, placement boxes and the camera -> PlacedBodies."""

    def __init__(self, body_model: BodyModel):
        super().__init__()
        self.body_model = body_model

    def forward(self, global_orient: torch.Tensor, body_pose: torch.Tensor, left_hand_pose: torch.Tensor,
                right_hand_pose: torch.Tensor, jaw_pose: torch.Tensor, betas: torch.Tensor, expression: torch.Tensor,
                cam_trans: torch.Tensor, bbox_xywh: torch.Tensor, camera: torch.Tensor) -> PlacedBodies:
        """camera: placement.camera_tensor(intrinsics), so the trace takes the camera as an input."""
        body = self.body_model(global_orient, body_pose, left_hand_pose, right_hand_pose, jaw_pose, betas, expression)
        shift = cam_trans[:, None, :]
        mesh_cam = body.vertices + shift
        joints_cam = body.joints + shift
        return PlacedBodies(
            mesh_cam=mesh_cam,
            vertices=lift_to_camera(mesh_cam, cam_trans, bbox_xywh, camera),
            joints=lift_to_camera(joints_cam, cam_trans, bbox_xywh, camera),
            skeleton_joints=lift_to_camera(body.skeleton_joints + shift, cam_trans, bbox_xywh, camera),
            skeleton_rotations=body.skeleton_rotations,
            joints_img=project_to_image(joints_cam, bbox_xywh),
        )
