"""The Hand4Whole network (reference main/model.py, test mode) without the SMPL-X layer.

Attribute names are the release checkpoint's keys after the `module.` prefix.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from h4w_core.model import constants
from h4w_core.model.geometry import camera_translation, restore_bbox, rot6d_to_axis_angle
from h4w_core.model.nets.heads import (
    BodyRotationNet,
    BoxNet,
    FaceRegressor,
    FaceRoI,
    HandRoI,
    HandRotationNet,
    PositionNet,
)
from h4w_core.model.nets.resnet import ResNetBackbone

MCP_JOINTS = (4, 8, 12, 16)  # Index_1, Middle_1, Ring_1, Pinky_1 inside the 20-joint hand set


class NetworkOutput(NamedTuple):
    """Per-crop network outputs (N = persons). Poses are axis-angle, radians."""

    global_orient: torch.Tensor  # (N, 3)
    body_pose: torch.Tensor  # (N, 63)
    left_hand_pose: torch.Tensor  # (N, 45), relative to the hand mean
    right_hand_pose: torch.Tensor  # (N, 45)
    jaw_pose: torch.Tensor  # (N, 3)
    betas: torch.Tensor  # (N, 10)
    expression: torch.Tensor  # (N, 10)
    cam_trans: torch.Tensor  # (N, 3) metres, virtual camera of the crop
    lhand_bbox: torch.Tensor  # (N, 4) x1 y1 x2 y2, 384x512 crop pixels
    rhand_bbox: torch.Tensor  # (N, 4)
    face_bbox: torch.Tensor  # (N, 4)
    joint_img: torch.Tensor  # (N, 65, 3) PositionNet joints, body-heatmap units (x, y); z per part


def _hand_to_body_hm(joints: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Hand-heatmap joints (N, 20, 3) -> body-heatmap x, y through the hand box (body-input pixels)."""
    hand_d, hand_h, hand_w = constants.OUTPUT_HAND_HM_SHAPE
    _, hm_h, hm_w = constants.OUTPUT_HM_SHAPE
    body_h, body_w = constants.INPUT_BODY_SHAPE
    x = joints[:, :, 0] * ((box[:, None, 2] - box[:, None, 0]) / hand_w * hm_w / body_w) + box[:, None, 0] / body_w * hm_w
    y = joints[:, :, 1] * ((box[:, None, 3] - box[:, None, 1]) / hand_h * hm_h / body_h) + box[:, None, 1] / body_h * hm_h
    return torch.stack((x, y, joints[:, :, 2]), dim=2)


class Hand4WholeNet(nn.Module):
    """Image crop (N, 3, 512, 384), RGB in [0, 1] -> NetworkOutput."""

    def __init__(self):
        super().__init__()
        body_d = constants.OUTPUT_HM_SHAPE[0]
        hand_d = constants.OUTPUT_HAND_HM_SHAPE[0]
        self.backbone = ResNetBackbone(50)
        self.body_position_net = PositionNet(25, body_d)
        self.body_rotation_net = BodyRotationNet()
        self.box_net = BoxNet(25, body_d)
        self.hand_roi_net = HandRoI()
        self.hand_position_net = PositionNet(20, hand_d)
        self.hand_rotation_net = HandRotationNet(20)
        self.face_roi_net = FaceRoI()
        self.face_regressor = FaceRegressor()
        self._init_heads()

    def _init_heads(self) -> None:
        """Reference head init (backbones keep torchvision's)."""
        for name, module in self.named_modules():
            if name.startswith(("backbone", "hand_roi_net", "face_roi_net")):
                continue
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(module.weight, std=0.001)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)

    def forward(self, img: torch.Tensor) -> NetworkOutput:
        """Plain forward pass. h4w_core.tools.stage_bench times its stages from outside, with forward
        pre-hooks on box_net, hand_roi_net, face_roi_net and body_rotation_net (the first module of
        each stage), so keep those calls in that order and each called once."""
        n = img.shape[0]
        # body
        body_img = F.interpolate(img, constants.INPUT_BODY_SHAPE, mode="nearest")
        body_feat = self.backbone(body_img)
        body_hm, body_joints = self.body_position_net(body_feat)
        # hand and face boxes
        lc, ls, rc, rs, fc, fs = self.box_net(body_feat, body_hm)
        hand_aspect = constants.INPUT_HAND_SHAPE[1] / constants.INPUT_HAND_SHAPE[0]
        face_aspect = constants.INPUT_FACE_SHAPE[1] / constants.INPUT_FACE_SHAPE[0]
        lhand_box = restore_bbox(lc, ls, hand_aspect, constants.HAND_BOX_EXTENSION)
        rhand_box = restore_bbox(rc, rs, hand_aspect, constants.HAND_BOX_EXTENSION)
        face_box = restore_bbox(fc, fs, face_aspect, constants.FACE_BOX_EXTENSION)
        # hands
        hand_feat = self.hand_roi_net(img, lhand_box, rhand_box)  # (2N, 2048, 8, 8): left mirrored
        _, hand_joints = self.hand_position_net(hand_feat)
        hand_pose = rot6d_to_axis_angle(self.hand_rotation_net(hand_feat, hand_joints).reshape(2 * n, 15, 6))
        # un-mirror the left hand: joints x' = W-1-x (heatmap units, as released), rotations (x, -y, -z)
        hand_w = constants.OUTPUT_HAND_HM_SHAPE[2]
        lhand_joints = torch.cat((hand_w - 1 - hand_joints[:n, :, 0:1], hand_joints[:n, :, 1:]), dim=2)
        rhand_joints = hand_joints[n:]
        lhand_pose = torch.cat((hand_pose[:n, :, 0:1], -hand_pose[:n, :, 1:3]), dim=2).reshape(n, 45)
        rhand_pose = hand_pose[n:].reshape(n, 45)
        lhand_feat = torch.flip(hand_feat[:n], [3])
        rhand_feat = hand_feat[n:]
        # face
        expression, jaw6d = self.face_regressor(self.face_roi_net(img, face_box))
        # body rotation and outputs
        mcp = list(MCP_JOINTS)
        root6d, body6d, betas, cam_param = self.body_rotation_net(
            body_feat, body_joints, lhand_feat, lhand_joints[:, mcp], rhand_feat, rhand_joints[:, mcp]
        )
        crop_scale = constants.INPUT_IMG_SHAPE[1] / constants.INPUT_BODY_SHAPE[1]  # 2: both axes
        lhand_joint_img = _hand_to_body_hm(lhand_joints, lhand_box)
        rhand_joint_img = _hand_to_body_hm(rhand_joints, rhand_box)
        return NetworkOutput(
            global_orient=rot6d_to_axis_angle(root6d),
            body_pose=rot6d_to_axis_angle(body6d.reshape(n, 21, 6)).reshape(n, 63),
            left_hand_pose=lhand_pose,
            right_hand_pose=rhand_pose,
            jaw_pose=rot6d_to_axis_angle(jaw6d),
            betas=betas,
            expression=expression,
            cam_trans=camera_translation(cam_param),
            lhand_bbox=lhand_box * crop_scale,
            rhand_bbox=rhand_box * crop_scale,
            face_bbox=face_box * crop_scale,
            joint_img=torch.cat((body_joints, lhand_joint_img, rhand_joint_img), dim=1),
        )
