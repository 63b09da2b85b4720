"""SMPL-X posing and placement in the real camera as one module: what ``WholeBodyEstimator.pose``
runs for all persons of a frame, traced per batch size (h4w_core.model.tracing), through one
input tensor and one output tensor (PackedPosing)."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from h4w_core.inference.placement import lift_to_camera, project_to_image
from h4w_core.inference.results import PLACED_FIELDS
from h4w_core.model import constants
from h4w_core.model.body_model import BodyModel
from h4w_core.model.joint_tables import JOINT_NAMES, SKELETON_JOINT_NAMES


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


# PackedPosing's row of one person: its inputs in PoseAndPlace's order, then the camera (5,)
PACKED_INPUTS: dict[str, int] = {**constants.SMPLX_PARAM_SIZES, "cam_trans": 3, "bbox_xywh": 4, "camera": 5}
# and its output row: each PlacedBodies field flattened, then 1.0 where all of them are finite (else 0.0)
PLACED_SHAPES: dict[str, tuple[int, ...]] = dict(zip(PLACED_FIELDS, (
    (constants.NUM_VERTICES, 3), (constants.NUM_VERTICES, 3), (len(JOINT_NAMES), 3),
    (len(SKELETON_JOINT_NAMES), 3), (len(SKELETON_JOINT_NAMES), 3, 3), (len(JOINT_NAMES), 2),
)))
_PLACED_SIZES = [math.prod(shape) for shape in PLACED_SHAPES.values()]
FINITE_COLUMN = sum(_PLACED_SIZES)
assert tuple(PLACED_SHAPES) == PlacedBodies._fields


def unpack_placed(packed: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """PackedPosing's output (N, FINITE_COLUMN + 1) as numpy -> each PLACED_SHAPES field (N, *shape),
    views of ``packed``, and the (N,) finite flags."""
    columns = np.split(packed[:, :FINITE_COLUMN], np.cumsum(_PLACED_SIZES[:-1]), axis=1)
    arrays = {name: part.reshape(-1, *shape) for (name, shape), part in zip(PLACED_SHAPES.items(), columns)}
    return arrays, packed[:, FINITE_COLUMN] > 0.5


class PackedPosing(nn.Module):
    """PoseAndPlace with one input and one output: rows (N, sum(PACKED_INPUTS)) float32 -> (N,
    FINITE_COLUMN + 1), each person's placed bodies flattened in PLACED_SHAPES order and a finite flag.

    Why: every torch call made from Python gives up the GIL and must take it back, which in the
    node, beside stages running Python, can wait a whole switch interval (5 ms). Ten input tensors,
    six outputs brought to numpy and a scan of 63,000 numbers for finiteness cost some 30 such
    handoffs per frame; packed, a frame's posing makes three (from_numpy, the graph, numpy).
    """

    def __init__(self, body_model: BodyModel):
        super().__init__()
        self.place = PoseAndPlace(body_model)

    def forward(self, rows: torch.Tensor) -> tuple[torch.Tensor]:
        inputs = torch.split(rows, list(PACKED_INPUTS.values()), dim=1)
        placed = self.place(*inputs[:-1], inputs[-1][0])
        flat = torch.cat([t.reshape(t.shape[0], -1) for t in placed], dim=1)
        finite = torch.isfinite(flat).all(dim=1, keepdim=True).to(flat.dtype)
        return (torch.cat((flat, finite), dim=1),)
