"""Hand4Whole heads. Sequential indices reproduce the reference layer builders' key names."""
from __future__ import annotations

import torch
from torch import nn

from h4w_core.model import constants
from h4w_core.model.geometry import roi_align, sample_joint_features, soft_argmax_2d, soft_argmax_3d
from h4w_core.model.nets.resnet import ResNetBackbone


def conv_stack(channels: list[int], kernel: int = 1, padding: int = 0, bnrelu_final: bool = False) -> nn.Sequential:
    """Conv2d layers with BN+ReLU after each but the last (unless bnrelu_final)."""
    layers: list[nn.Module] = []
    for i in range(len(channels) - 1):
        layers.append(nn.Conv2d(channels[i], channels[i + 1], kernel, 1, padding))
        if i < len(channels) - 2 or bnrelu_final:
            layers += [nn.BatchNorm2d(channels[i + 1]), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def linear_stack(features: list[int], relu_final: bool = False) -> nn.Sequential:
    """Linear layers with ReLU between them."""
    layers: list[nn.Module] = []
    for i in range(len(features) - 1):
        layers.append(nn.Linear(features[i], features[i + 1]))
        if i < len(features) - 2 or relu_final:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def deconv_stack(channels: list[int]) -> nn.Sequential:
    """x2 upsampling ConvTranspose2d(4, 2, 1, no bias) + BN + ReLU per step."""
    layers: list[nn.Module] = []
    for i in range(len(channels) - 1):
        layers += [
            nn.ConvTranspose2d(channels[i], channels[i + 1], 4, 2, 1, output_padding=0, bias=False),
            nn.BatchNorm2d(channels[i + 1]),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class PositionNet(nn.Module):
    """1x1 conv to J*D channels, 3D soft-argmax. Returns (heatmap (N,J,D,H,W), coords (N,J,3))."""

    def __init__(self, joint_num: int, depth: int):
        super().__init__()
        self.joint_num = joint_num
        self.depth = depth
        self.conv = conv_stack([2048, joint_num * depth])

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = feature.shape
        logits = self.conv(feature).reshape(n, self.joint_num, self.depth, h, w)
        coords, heatmap = soft_argmax_3d(logits)
        return heatmap, coords


def _joint_features(conv: nn.Module, feature: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
    """conv(feature) sampled at joints (x, y), with the joint's (x, y, z) appended: (N, J, 515)."""
    sampled = sample_joint_features(conv(feature), joints[:, :, :2])
    return torch.cat((sampled, joints), dim=2)


class BodyRotationNet(nn.Module):
    """Body 6D rotations from joint features (25 body + 4+4 hand MCP joints), betas and camera."""

    def __init__(self, body_joints: int = 25, mcp_joints: int = 4):
        super().__init__()
        joint_num = body_joints + 2 * mcp_joints
        self.body_conv = conv_stack([2048, 512], bnrelu_final=True)
        self.lhand_conv = conv_stack([2048, 512], bnrelu_final=True)
        self.rhand_conv = conv_stack([2048, 512], bnrelu_final=True)
        self.root_pose_out = linear_stack([joint_num * 515, 6])
        self.body_pose_out = linear_stack([joint_num * 515, 21 * 6])
        self.shape_out = linear_stack([2048, constants.NUM_BETAS])
        self.cam_out = linear_stack([2048, 3])

    def forward(
        self,
        body_feat: torch.Tensor,
        body_joints: torch.Tensor,
        lhand_feat: torch.Tensor,
        lhand_mcp: torch.Tensor,
        rhand_feat: torch.Tensor,
        rhand_mcp: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        n = body_feat.shape[0]
        pooled = body_feat.mean((2, 3))
        betas = self.shape_out(pooled)
        cam_param = self.cam_out(pooled)
        feat = torch.cat(
            (
                _joint_features(self.body_conv, body_feat, body_joints),
                _joint_features(self.lhand_conv, lhand_feat, lhand_mcp),
                _joint_features(self.rhand_conv, rhand_feat, rhand_mcp),
            ),
            dim=1,
        ).reshape(n, -1)
        return self.root_pose_out(feat), self.body_pose_out(feat), betas, cam_param


class HandRotationNet(nn.Module):
    """15 finger-joint 6D rotations of one (right-looking) hand from its 20 joints' features."""

    def __init__(self, joint_num: int = 20):
        super().__init__()
        self.hand_conv = conv_stack([2048, 512], bnrelu_final=True)
        self.hand_pose_out = linear_stack([joint_num * 515, 15 * 6])

    def forward(self, hand_feat: torch.Tensor, hand_joints: torch.Tensor) -> torch.Tensor:
        feat = _joint_features(self.hand_conv, hand_feat, hand_joints)
        return self.hand_pose_out(feat.reshape(feat.shape[0], -1))


class FaceRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.expr_out = linear_stack([512, constants.NUM_EXPRESSION])
        self.jaw_pose_out = linear_stack([512, 6])

    def forward(self, face_feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = face_feat.mean((2, 3))
        return self.expr_out(pooled), self.jaw_pose_out(pooled)


class BoxNet(nn.Module):
    """Hand and face box centres (soft-argmax at 64x48) and sizes, in output-heatmap units."""

    def __init__(self, joint_num: int = 25, depth: int = constants.OUTPUT_HM_SHAPE[0]):
        super().__init__()
        self.deconv = deconv_stack([2048 + joint_num * depth, 256, 256, 256])
        self.bbox_center = conv_stack([256, 3])
        self.lhand_size = linear_stack([256, 256, 2])
        self.rhand_size = linear_stack([256, 256, 2])
        self.face_size = linear_stack([256, 256, 2])

    def forward(self, body_feat: torch.Tensor, heatmap: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n, j, d, h, w = heatmap.shape
        feat = self.deconv(torch.cat((body_feat, heatmap.reshape(n, j * d, h, w)), dim=1))
        centers = soft_argmax_2d(self.bbox_center(feat))  # (N, 3, 2) in 64x48 units
        sizes = []
        for k, head in enumerate((self.lhand_size, self.rhand_size, self.face_size)):
            sizes.append(head(sample_joint_features(feat, centers[:, k : k + 1, :])[:, 0, :]))
        upsample = feat.shape[2] / h
        c = centers / upsample
        return c[:, 0], sizes[0], c[:, 1], sizes[1], c[:, 2], sizes[2]


def _body_to_crop(boxes: torch.Tensor) -> torch.Tensor:
    """x1 y1 x2 y2 in 192x256 body-input pixels -> 384x512 crop pixels (Python-float scales: no
    tensor is created per call, so CUDA graphs can capture it)."""
    sx = constants.INPUT_IMG_SHAPE[1] / constants.INPUT_BODY_SHAPE[1]
    sy = constants.INPUT_IMG_SHAPE[0] / constants.INPUT_BODY_SHAPE[0]
    return torch.stack((boxes[:, 0] * sx, boxes[:, 1] * sy, boxes[:, 2] * sx, boxes[:, 3] * sy), dim=1)


class HandRoI(nn.Module):
    """Crop both hands from the 512x384 crop (left one mirrored) and run one shared ResNet-50."""

    def __init__(self):
        super().__init__()
        self.backbone = ResNetBackbone(50)

    def forward(self, img: torch.Tensor, lhand_box: torch.Tensor, rhand_box: torch.Tensor) -> torch.Tensor:
        lhand = roi_align(img, _body_to_crop(lhand_box), constants.INPUT_HAND_SHAPE)
        rhand = roi_align(img, _body_to_crop(rhand_box), constants.INPUT_HAND_SHAPE)
        return self.backbone(torch.cat((torch.flip(lhand, [3]), rhand)))


class FaceRoI(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = ResNetBackbone(18)

    def forward(self, img: torch.Tensor, face_box: torch.Tensor) -> torch.Tensor:
        return self.backbone(roi_align(img, _body_to_crop(face_box), constants.INPUT_FACE_SHAPE))
