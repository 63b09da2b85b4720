"""Typed, immutable per-person results: what crosses module boundaries after the network.

A result is built once per person and frame; steps that change it (tracking, smoothing, depth
placement) return a new value with ``dataclasses.replace`` and never modify their input.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, fields, replace

import numpy as np

from h4w_core.model.constants import SMPLX_PARAM_FIELDS


def frozen_array(array) -> np.ndarray:
    """A read-only float32 array of ``array``: the array itself when it is a read-only float32 view
    of an array its creator vouched for (vouch_read_only: shared, not copied; copying 10,475
    vertices gives up the GIL, h4w_core.inference.posing), else a read-only copy."""
    if isinstance(array, np.ndarray) and array.dtype == np.float32 and _vouched(array):
        return array
    out = np.array(array, dtype=np.float32, copy=True)
    out.flags.writeable = False
    return out


_VOUCHED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> array, while it lives


def vouch_read_only(array: np.ndarray) -> np.ndarray:
    """Make ``array`` read-only and declare that nothing else can write its memory (its creator
    keeps no other handle on it, such as the torch tensor it came from), so that results share its
    read-only views instead of copying them. Returns ``array``."""
    array.flags.writeable = False
    _VOUCHED[id(array)] = array
    return array


def _vouched(array: np.ndarray) -> bool:
    while isinstance(array, np.ndarray) and not array.flags.writeable:
        if _VOUCHED.get(id(array)) is array:
            return True
        array = array.base
    return False


@dataclass(frozen=True)
class SmplxParams:
    """One person's SMPL-X parameters and its translation in the crop's virtual camera.

    Pose parameters are axis-angle (radians) under smplx's argument names; hand poses are
    relative to the model's hand mean (flat_hand_mean=False), as the reference returns them.
    """

    global_orient: np.ndarray  # (3,)
    body_pose: np.ndarray  # (63,)
    left_hand_pose: np.ndarray  # (45,)
    right_hand_pose: np.ndarray  # (45,)
    jaw_pose: np.ndarray  # (3,)
    betas: np.ndarray  # (10,)
    expression: np.ndarray  # (10,)
    cam_trans: np.ndarray  # (3,) metres, crop's virtual camera

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, frozen_array(getattr(self, f.name)))

    def body_model_args(self) -> tuple[np.ndarray, ...]:
        """The arrays in BodyModel's argument order (SMPLX_PARAM_FIELDS)."""
        return tuple(getattr(self, name) for name in SMPLX_PARAM_FIELDS)

    def is_finite(self) -> bool:
        return all(bool(np.all(np.isfinite(getattr(self, f.name)))) for f in fields(self))


@dataclass(frozen=True)
class TrackInfo:
    """Where a person came from and who it is: the box given to the network and its identity."""

    input_box: np.ndarray  # (4,) x y w h, original pixels, as detected or given
    score: float = 1.0  # detector score of the box (1.0 when the box was given)
    track_id: int = -1  # -1 when untracked
    depth_scale: float | None = None  # factor applied to the placement by a depth image, None when not measured

    def __post_init__(self):
        object.__setattr__(self, "input_box", np.array(self.input_box, dtype=np.float64).reshape(4))
        self.input_box.flags.writeable = False


# PersonResult fields posed and placed from the parameters (PlacedBodies, in its order)
PLACED_FIELDS = ("mesh_cam", "vertices", "joints", "skeleton_joints", "skeleton_rotations", "joints_img")


@dataclass(frozen=True)
class PersonResult:
    """Whole-body estimate for one person; geometry is metres in the camera optical frame
    (x right, y down, z forward), posed from ``params`` and placed with ``bbox_xywh``."""

    params: SmplxParams
    track: TrackInfo
    bbox_xywh: np.ndarray  # (4,) placement box: processed person box (aspect 0.75, x1.25), original pixels
    mesh_cam: np.ndarray  # (10475, 3) vertices in the crop's virtual camera (reference smplx_mesh_cam)
    vertices: np.ndarray  # (10475, 3) vertices in the real camera frame
    joints: np.ndarray  # (137, 3) named joints (joint_tables.JOINT_NAMES) in the real camera frame
    skeleton_joints: np.ndarray  # (55, 3) SMPL-X skeleton joints in the real camera frame
    skeleton_rotations: np.ndarray  # (55, 3, 3) global joint orientations in the camera frame
    joints_img: np.ndarray  # (137, 2) projected named joints, original image pixels
    lhand_bbox: np.ndarray  # (4,) x1 y1 x2 y2, original pixels
    rhand_bbox: np.ndarray  # (4,)
    face_bbox: np.ndarray  # (4,)

    def __post_init__(self):
        for f in fields(self):
            if f.name not in ("params", "track"):
                object.__setattr__(self, f.name, frozen_array(getattr(self, f.name)))

    # the parameters and the identity, read as attributes of the person
    global_orient = property(lambda self: self.params.global_orient)
    body_pose = property(lambda self: self.params.body_pose)
    left_hand_pose = property(lambda self: self.params.left_hand_pose)
    right_hand_pose = property(lambda self: self.params.right_hand_pose)
    jaw_pose = property(lambda self: self.params.jaw_pose)
    betas = property(lambda self: self.params.betas)
    expression = property(lambda self: self.params.expression)
    cam_trans = property(lambda self: self.params.cam_trans)
    score = property(lambda self: self.track.score)
    track_id = property(lambda self: self.track.track_id)

    def with_track(self, **changes) -> PersonResult:
        """A copy with the tracking information changed (track_id=..., depth_scale=...)."""
        return replace(self, track=replace(self.track, **changes))

    def is_finite(self, posed_finite: bool | None = None) -> bool:
        """True when every number of the result is finite (a broken input can make them NaN).
        posed_finite: the posing graph's own verdict on the posed arrays (WholeBodyEstimator.pose_checked),
        so that they are not scanned again."""
        skip = ("params", "track") + (PLACED_FIELDS if posed_finite is not None else ())
        arrays = [getattr(self, f.name) for f in fields(self) if f.name not in skip]
        return ((posed_finite is None or posed_finite) and self.params.is_finite()
                and all(bool(np.all(np.isfinite(a))) for a in arrays))
