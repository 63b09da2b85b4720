"""Image + person boxes -> whole-body SMPL-X results, in two steps with a seam between them.

``estimate`` runs the network on a batch of crops and returns per-person SMPL-X parameters
(``PersonEstimate``); ``pose`` runs the body model on parameters and places the posed body in the
real camera (``PersonResult``). Temporal smoothing sits in the seam (h4w_core.people), so the mesh,
joints and joint orientations of a result are always posed from the parameters it carries.
``predict`` is both steps at once.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from h4w_core.inference.camera import Intrinsics
from h4w_core.inference.placement import crop_box_to_image, placement_camera
from h4w_core.inference.posing import PackedPosing, unpack_placed
from h4w_core.inference.preprocess import Crop, InvalidBoxError, crop_person, to_rgb
from h4w_core.inference.results import PersonResult, SmplxParams, TrackInfo, frozen_array, vouch_read_only
from h4w_core.model import constants
from h4w_core.model.body_model import BodyModel, BodyModelOutput
from h4w_core.model.checkpoint import load_network_weights
from h4w_core.model.network import Hand4WholeNet, NetworkOutput
from h4w_core.model.tracing import TracedByBatch

LOG = logging.getLogger(__name__)

NetworkRunner = Callable[[torch.Tensor], NetworkOutput]
PART_BOXES = ("lhand_bbox", "rhand_bbox", "face_bbox")
PARAM_FIELDS = tuple(f.name for f in fields(SmplxParams))  # SMPLX_PARAM_FIELDS + cam_trans


@dataclass(frozen=True)
class PersonEstimate:
    """One person's network outputs before posing."""

    params: SmplxParams
    track: TrackInfo
    bbox_xywh: np.ndarray  # (4,) placement box: processed person box, original pixels
    lhand_bbox: np.ndarray  # (4,) x1 y1 x2 y2, original pixels
    rhand_bbox: np.ndarray
    face_bbox: np.ndarray

    def __post_init__(self):
        for name in ("bbox_xywh", *PART_BOXES):
            object.__setattr__(self, name, frozen_array(getattr(self, name)))


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
        self.posing = TracedByBatch(PackedPosing(self.body_model).eval(), _as_tuple)
        if network is None:
            net = Hand4WholeNet()
            load_network_weights(net, checkpoint)
            network = net.to(self.device).eval()
        self.network = network
        self.faces = self.body_model.faces.cpu().numpy()
        self.skeleton_parents = self.body_model.layer.parents.cpu().numpy()

    def crops(self, image: np.ndarray, boxes_xywh: Sequence, channel_order: str = "rgb", skip_invalid: bool = False) -> tuple[list[Crop], list[int]]:
        """Reference crops for each box and the indices of the boxes kept; invalid boxes raise, or
        are skipped (the caller reports them: it knows how often to say so)."""
        rgb = to_rgb(image, channel_order)
        crops, kept = [], []
        for i, box in enumerate(np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)):
            try:
                crops.append(crop_person(rgb, box))
                kept.append(i)
            except InvalidBoxError:
                if not skip_invalid:
                    raise
        return crops, kept

    @torch.no_grad()
    def forward(self, patches: torch.Tensor) -> tuple[NetworkOutput, BodyModelOutput]:
        """Batched network + SMPL-X on crops (N, 3, 512, 384)."""
        out = self.network(patches.to(self.device))
        body = self.body_model(*(getattr(out, name).float() for name in constants.SMPLX_PARAM_FIELDS))
        return out, body

    @torch.no_grad()
    def estimate(self, crops: Sequence[Crop], tracks: Sequence[TrackInfo]) -> list[PersonEstimate]:
        """The network on all crops in one batch -> one PersonEstimate per crop."""
        if not crops:
            return []
        patches = torch.from_numpy(np.stack([c.patch for c in crops])).to(self.device)
        return self.split(self.network(patches), crops, tracks)

    def split(self, out: NetworkOutput, crops: Sequence[Crop], tracks: Sequence[TrackInfo]) -> list[PersonEstimate]:
        """Batched network outputs -> per-person estimates (part boxes mapped to original pixels)."""
        bbox = np.stack([c.bbox_xywh for c in crops])
        arrays = {name: _numpy(getattr(out, name)) for name in PARAM_FIELDS}
        parts = {name: crop_box_to_image(_numpy(getattr(out, name)), bbox) for name in PART_BOXES}
        return [
            PersonEstimate(params=SmplxParams(**{k: v[i] for k, v in arrays.items()}), track=track,
                           bbox_xywh=crop.bbox_xywh, **{k: v[i] for k, v in parts.items()})
            for i, (crop, track) in enumerate(zip(crops, tracks))
        ]

    def pose(self, people: Sequence[PersonEstimate], intrinsics: Intrinsics) -> list[PersonResult]:
        """SMPL-X posing and placement in the real camera for every person, in one traced call
        (empty in, empty out): virtual-camera mesh, real-camera geometry, projected joints."""
        return [result for result, _ in self.pose_checked(people, intrinsics)]

    @torch.no_grad()
    def pose_checked(self, people: Sequence[PersonEstimate], intrinsics: Intrinsics) -> list[tuple[PersonResult, bool]]:
        """``pose`` with each result's finiteness (PersonResult.is_finite), its posed arrays checked
        inside the traced graph rather than scanned again in Python."""
        if not people:
            return []
        camera = placement_camera(intrinsics)
        rows = np.stack([np.concatenate((*p.params.body_model_args(), p.params.cam_trans, p.bbox_xywh, camera))
                         for p in people]).astype(np.float32, copy=False)
        (packed,) = self.posing(torch.from_numpy(rows).to(self.device))
        # the graph's tensor is dropped here: the results share this buffer
        arrays, finite = unpack_placed(vouch_read_only(_numpy(packed)))
        results = [
            PersonResult(params=p.params, track=p.track, bbox_xywh=p.bbox_xywh,
                         **{name: getattr(p, name) for name in PART_BOXES}, **{k: v[i] for k, v in arrays.items()})
            for i, p in enumerate(people)
        ]
        return [(r, r.is_finite(posed_finite=bool(ok))) for r, ok in zip(results, finite)]

    def warm_up_posing(self, max_persons: int) -> None:
        """Trace posing for every batch size up to ``max_persons`` now (about 0.2 s each on a CPU),
        so a new person count never stalls a running stream."""
        params = SmplxParams(**{name: np.zeros(size, np.float32) for name, size in constants.SMPLX_PARAM_SIZES.items()},
                             cam_trans=np.array([0.0, 0.0, 5.0], np.float32))
        box = np.array([0.0, 0.0, 192.0, 256.0], np.float32)
        person = PersonEstimate(params=params, track=TrackInfo(input_box=box), bbox_xywh=box,
                                lhand_bbox=np.zeros(4), rhand_bbox=np.zeros(4), face_bbox=np.zeros(4))
        for count in range(1, max_persons + 1):
            self.pose([person] * count, Intrinsics.default_for(640, 480))

    def predict(
        self,
        image: np.ndarray,
        boxes_xywh: Sequence,
        channel_order: str = "rgb",
        intrinsics: Intrinsics | None = None,
        scores: Sequence[float] | None = None,
        skip_invalid: bool = False,
    ) -> list[PersonResult]:
        """uint8 HxWx3 image in `channel_order`, boxes (P, 4) x y w h pixels -> one result per kept box."""
        boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
        crops, kept = self.crops(image, boxes, channel_order, skip_invalid)
        height, width = image.shape[:2]
        intrinsics = intrinsics or Intrinsics.default_for(width, height)
        tracks = [TrackInfo(input_box=boxes[i], score=1.0 if scores is None else float(scores[i])) for i in kept]
        return self.pose(self.estimate(crops, tracks), intrinsics)


def _as_tuple(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tensors


def _numpy(t: torch.Tensor) -> np.ndarray:
    """float32 numpy of a tensor: for a float32 CPU tensor outside autograd one torch call, without
    copying (each torch call gives up the GIL and must take it back: h4w_core.inference.posing)."""
    if t.dtype == torch.float32 and t.device.type == "cpu" and not t.requires_grad:
        return t.numpy()
    return t.detach().float().cpu().numpy()


RESULT_KEYS = (
    "mesh_cam", "vertices", "joints", "cam_trans", "global_orient", "body_pose", "left_hand_pose",
    "right_hand_pose", "jaw_pose", "betas", "expression", "lhand_bbox", "rhand_bbox", "face_bbox",
    "skeleton_joints", "joints_img", "bbox_xywh",
)


def results_to_arrays(results: list[PersonResult]) -> dict[str, np.ndarray]:
    """Stack per-person results into arrays with a leading person axis (the h4w-infer npz layout)."""
    if not results:
        return {}
    return {k: np.stack([getattr(r, k) for r in results]).astype(np.float32) for k in RESULT_KEYS}
