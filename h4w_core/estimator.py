"""Image + person boxes -> whole-body SMPL-X results: preprocessing, one batched forward, placement."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from h4w_core import config
from h4w_core.body_model import BodyModel, BodyModelOutput
from h4w_core.checkpoint import load_network_weights
from h4w_core.model import Hand4WholeNet, NetworkOutput
from h4w_core.preprocess import Crop, InvalidBoxError, crop_person, to_rgb
from h4w_core.results import Intrinsics, PersonResult

LOG = logging.getLogger(__name__)

NetworkRunner = Callable[[torch.Tensor], NetworkOutput]


@dataclass(frozen=True)
class Placement:
    """Per-person geometry in original-image and real-camera terms (torch, batched)."""

    joints_img: torch.Tensor  # (N, 137, 2)
    vertices: torch.Tensor  # (N, V, 3)
    joints: torch.Tensor  # (N, 137, 3)
    skeleton_joints: torch.Tensor  # (N, 55, 3)


def project_to_image(points_cam: torch.Tensor, bbox_xywh: torch.Tensor) -> torch.Tensor:
    """Virtual-camera points (N, K, 3) -> original-image pixels, exactly the reference's projection
    (focal 5000, princpt (96, 128) in 192x256 body-input pixels, mapped through the processed box)."""
    z = points_cam[..., 2] + 1e-4
    x = points_cam[..., 0] / z * config.FOCAL[0] + config.PRINCPT[0]
    y = points_cam[..., 1] / z * config.FOCAL[1] + config.PRINCPT[1]
    body_h, body_w = config.INPUT_BODY_SHAPE
    u = x / body_w * bbox_xywh[:, None, 2] + bbox_xywh[:, None, 0]
    v = y / body_h * bbox_xywh[:, None, 3] + bbox_xywh[:, None, 1]
    return torch.stack((u, v), dim=-1)


def lift_to_camera(
    points_cam: torch.Tensor, cam_trans: torch.Tensor, bbox_xywh: torch.Tensor, intrinsics: Intrinsics
) -> torch.Tensor:
    """Place virtual-camera points in the real camera so they project where the reference draws them.

    The person's distance is rescaled from the virtual camera (focal 5000/192 * box width on the
    original image) to the real focal; each point keeps its metric depth offset from the body
    and is put on the real camera ray through its reference pixel. Projection with the given
    intrinsics is exact by construction, and the shape stays metric to first order.
    """
    uv = project_to_image(points_cam, bbox_xywh)
    virtual_focal = config.FOCAL[0] / config.INPUT_BODY_SHAPE[1] * bbox_xywh[:, 2]  # (N,)
    scale = float(np.sqrt(intrinsics.fx * intrinsics.fy)) / virtual_focal
    depth = points_cam[..., 2] - cam_trans[:, None, 2] + (scale * cam_trans[:, 2])[:, None]
    x = (uv[..., 0] - intrinsics.cx) / intrinsics.fx * depth
    y = (uv[..., 1] - intrinsics.cy) / intrinsics.fy * depth
    return torch.stack((x, y, depth), dim=-1)


def crop_box_to_image(boxes: torch.Tensor, bbox_xywh: torch.Tensor) -> torch.Tensor:
    """x1 y1 x2 y2 in 384x512 crop pixels -> original pixels (the crop is an axis-aligned scaling)."""
    out_h, out_w = config.INPUT_IMG_SHAPE
    sx = bbox_xywh[:, 2:3] / out_w
    sy = bbox_xywh[:, 3:4] / out_h
    scale = torch.cat((sx, sy, sx, sy), dim=1)
    offset = torch.cat((bbox_xywh[:, 0:2], bbox_xywh[:, 0:2]), dim=1)
    return boxes * scale + offset


class WholeBodyEstimator:
    """Hand4Whole + SMPL-X for every person of an image, in one batch."""

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        smplx_dir: str | os.PathLike,
        device: str = "cpu",
        network: NetworkRunner | None = None,
    ):
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but torch sees no CUDA GPU; use device 'cpu'")
        self.body_model = BodyModel(smplx_dir).to(self.device).eval()
        if network is None:
            net = Hand4WholeNet()
            load_network_weights(net, checkpoint)
            network = net.to(self.device).eval()
        self.network = network
        self.faces = self.body_model.faces.cpu().numpy()

    def crops(self, image: np.ndarray, boxes_xywh: Sequence, channel_order: str = "rgb", skip_invalid: bool = False) -> tuple[list[Crop], list[int]]:
        """Reference crops for each box; invalid boxes raise, or are skipped (with a warning)."""
        rgb = to_rgb(image, channel_order)
        crops, kept = [], []
        for i, box in enumerate(np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)):
            try:
                crops.append(crop_person(rgb, box))
                kept.append(i)
            except InvalidBoxError as exc:
                if not skip_invalid:
                    raise
                LOG.warning("skipping person box %d: %s", i, exc)
        return crops, kept

    @torch.no_grad()
    def forward(self, patches: torch.Tensor) -> tuple[NetworkOutput, BodyModelOutput]:
        """Batched network + SMPL-X on crops (N, 3, 512, 384)."""
        out = self.network(patches.to(self.device))
        body = self.body_model(*(getattr(out, name).float() for name in config.SMPLX_PARAM_FIELDS))
        return out, body

    @torch.no_grad()
    def predict(
        self,
        image: np.ndarray,
        boxes_xywh: Sequence,
        channel_order: str = "rgb",
        intrinsics: Intrinsics | None = None,
        scores: Sequence[float] | None = None,
        skip_invalid: bool = False,
    ) -> list[PersonResult]:
        """uint8 HxWx3 image in `channel_order`, boxes (P, 4) x y w h pixels -> one result per person."""
        crops, kept = self.crops(image, boxes_xywh, channel_order, skip_invalid)
        if not crops:
            return []
        height, width = image.shape[:2]
        intrinsics = intrinsics or Intrinsics.default_for(width, height)
        patches = torch.from_numpy(np.stack([c.patch for c in crops]))
        out, body = self.forward(patches)
        return self.assemble(out, body, crops, kept, intrinsics, scores)

    def assemble(
        self,
        out: NetworkOutput,
        body: BodyModelOutput,
        crops: list[Crop],
        kept: list[int],
        intrinsics: Intrinsics,
        scores: Sequence[float] | None = None,
    ) -> list[PersonResult]:
        """Post-processing: virtual-camera mesh, real-camera placement, boxes in original pixels."""
        bbox = torch.from_numpy(np.stack([c.bbox_xywh for c in crops])).to(self.device)
        cam_trans = out.cam_trans.float()
        shift = cam_trans[:, None, :]
        mesh_cam = body.vertices + shift
        joints_cam = body.joints + shift
        skeleton_cam = body.skeleton_joints + shift
        vertices = lift_to_camera(mesh_cam, cam_trans, bbox, intrinsics)
        joints = lift_to_camera(joints_cam, cam_trans, bbox, intrinsics)
        skeleton = lift_to_camera(skeleton_cam, cam_trans, bbox, intrinsics)
        joints_img = project_to_image(joints_cam, bbox)
        boxes = {name: crop_box_to_image(getattr(out, name).float(), bbox) for name in ("lhand_bbox", "rhand_bbox", "face_bbox")}

        def np_(t: torch.Tensor) -> np.ndarray:
            return t.detach().float().cpu().numpy()

        arrays = {
            "global_orient": np_(out.global_orient), "body_pose": np_(out.body_pose),
            "left_hand_pose": np_(out.left_hand_pose), "right_hand_pose": np_(out.right_hand_pose),
            "jaw_pose": np_(out.jaw_pose), "betas": np_(out.betas), "expression": np_(out.expression),
            "cam_trans": np_(cam_trans), "mesh_cam": np_(mesh_cam), "vertices": np_(vertices),
            "joints": np_(joints), "skeleton_joints": np_(skeleton),
            "skeleton_rotations": np_(body.skeleton_rotations), "joints_img": np_(joints_img),
            **{k: np_(v) for k, v in boxes.items()},
        }
        results = []
        for i, (crop, index) in enumerate(zip(crops, kept)):
            score = 1.0 if scores is None else float(scores[index])
            fields = {k: v[i] for k, v in arrays.items()}
            results.append(PersonResult(bbox_xywh=crop.bbox_xywh, score=score, extras={"box_index": index}, **fields))
        return results


def results_to_arrays(results: list[PersonResult]) -> dict[str, np.ndarray]:
    """Stack per-person results into arrays with a leading person axis (the h4w-infer npz layout)."""
    keys = (
        "mesh_cam", "vertices", "joints", "cam_trans", "global_orient", "body_pose", "left_hand_pose",
        "right_hand_pose", "jaw_pose", "betas", "expression", "lhand_bbox", "rhand_bbox", "face_bbox",
        "skeleton_joints", "joints_img", "bbox_xywh",
    )
    if not results:
        return {}
    return {k: np.stack([getattr(r, k) for r in results]).astype(np.float32) for k in keys}
