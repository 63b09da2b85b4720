"""SMPL-X through the `smplx` package, configured exactly as the reference uses it."""
from __future__ import annotations

import logging
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from h4w_core.model import constants
from h4w_core.model.joint_tables import JOINT_LAYER_INDEX, SKELETON_JOINT_NAMES

LOG = logging.getLogger(__name__)

SMPLX_DOWNLOAD_HINT = (
    "Register and download 'SMPL-X v1.1 (NPZ+PKL)' from https://smpl-x.is.tue.mpg.de, "
    "then put SMPLX_NEUTRAL.npz in that folder (or in a 'smplx' subfolder of it)."
)


# The arrays smplx reads from an SMPL-X npz (body_models.SMPL / SMPLH / SMPLX); other members are never read.
SMPLX_ARRAYS = (
    "v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights",
    "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
    "lmk_faces_idx", "lmk_bary_coords", "dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords",
)


class AssetNotFoundError(FileNotFoundError):
    """A licence-restricted asset the user must supply is missing."""


class UnsafeModelFileError(ValueError):
    """A model file that is not plain numeric arrays (a pickle, or an npz with objects): never loaded."""


def load_smplx_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays smplx needs from an SMPL-X npz, read with pickles disallowed.

    A .pkl model, a pickle renamed .npz and an npz whose needed arrays hold Python objects are
    refused (UnsafeModelFileError): unpickling them could run code. Members smplx does not read
    are left unread.
    """
    path = Path(path)
    if path.suffix == ".pkl":
        raise UnsafeModelFileError(f"{path}: .pkl SMPL-X models are not loaded (a pickle can run code); use SMPLX_NEUTRAL.npz. {SMPLX_DOWNLOAD_HINT}")
    if not zipfile.is_zipfile(path):
        raise UnsafeModelFileError(f"{path} is not an npz archive (a pickle or another format); refusing to load it. {SMPLX_DOWNLOAD_HINT}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in SMPLX_ARRAYS if k not in data.files]
            if missing:
                raise ValueError(f"{path} is not an SMPL-X model file: arrays {missing} are missing")
            arrays = {k: data[k] for k in SMPLX_ARRAYS}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise UnsafeModelFileError(f"{path} holds Python objects where SMPL-X has numeric arrays; refusing to unpickle them") from None
        raise
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path} is not a readable npz archive: {exc}") from None
    bad = [k for k, v in arrays.items() if not (np.issubdtype(v.dtype, np.number) or v.dtype == np.bool_)]
    if bad:
        raise UnsafeModelFileError(f"{path}: arrays {bad} are not numeric")
    return arrays


def find_smplx_file(smplx_dir: str | os.PathLike) -> Path:
    """Locate SMPLX_NEUTRAL.npz in smplx_dir or smplx_dir/smplx; raise naming both places."""
    root = Path(smplx_dir).expanduser()
    candidates = [root / "SMPLX_NEUTRAL.npz", root / "smplx" / "SMPLX_NEUTRAL.npz"]
    if root.is_file() and root.name.endswith(".npz"):
        candidates.insert(0, root)
    for path in candidates:
        if path.is_file():
            return path
    pickles = [p for p in (root, *[c.with_suffix(".pkl") for c in candidates]) if p.is_file() and p.suffix == ".pkl"]
    if pickles:
        raise UnsafeModelFileError(f"{pickles[0]}: .pkl SMPL-X models are not loaded (a pickle can run code); "
                                   f"use SMPLX_NEUTRAL.npz instead. {SMPLX_DOWNLOAD_HINT}")
    searched = ", ".join(str(p) for p in candidates)
    raise AssetNotFoundError(f"SMPL-X model file SMPLX_NEUTRAL.npz not found (searched: {searched}). {SMPLX_DOWNLOAD_HINT}")


def check_layer_shapes(layer: nn.Module, path: Path) -> None:
    """Raise ValueError naming ``path`` when an SMPL-X array smplx loaded has the wrong shape (a
    damaged or foreign file), before a product over it fails with a bare tensor error."""
    vertices, joints = constants.NUM_VERTICES, len(SKELETON_JOINT_NAMES)
    expected = {
        "v_template": (vertices, 3), "shapedirs": (vertices, 3, constants.NUM_BETAS),
        "expr_dirs": (vertices, 3, constants.NUM_EXPRESSION), "posedirs": (9 * (joints - 1), 3 * vertices),
        "J_regressor": (joints, vertices), "lbs_weights": (vertices, joints),
    }
    wrong = [f"{name} {tuple(getattr(layer, name).shape)} (SMPL-X: {shape})"
             for name, shape in expected.items() if tuple(getattr(layer, name).shape) != shape]
    if wrong:
        raise ValueError(f"{path} is not an SMPL-X model file: {', '.join(wrong)}")


class BodyModelOutput(NamedTuple):
    vertices: torch.Tensor  # (N, 10475, 3), no translation applied
    joints: torch.Tensor  # (N, 137, 3) named joint set (JOINT_NAMES)
    skeleton_joints: torch.Tensor  # (N, 55, 3)
    skeleton_rotations: torch.Tensor  # (N, 55, 3, 3) global joint orientations


class BodyModel(nn.Module):
    """Neutral SMPL-X, use_pca=False, flat_hand_mean=False, face contour, 10 betas / 10 expressions."""

    def __init__(self, smplx_dir: str | os.PathLike):
        super().__init__()
        import smplx  # heavy import kept local

        path = find_smplx_file(smplx_dir)
        arrays = load_smplx_arrays(path)
        # smplx opens its file with pickles allowed: hand it a copy holding only the checked arrays
        with tempfile.TemporaryDirectory(prefix="h4w_smplx_") as tmp:
            clean = Path(tmp) / "SMPLX_NEUTRAL.npz"
            np.savez(clean, **arrays)
            self.layer = self._create_layer(smplx, clean, path)
        check_layer_shapes(self.layer, path)
        # the pose-corrective matrix twice, in the two memory orders pose_corrective_offsets reads
        self.layer.posedirs = self.layer.posedirs.T.contiguous().T
        self.register_buffer("posedirs_rows", self.layer.posedirs.contiguous(), persistent=False)
        self.model_path = path
        self.register_buffer("joint_index", torch.tensor(JOINT_LAYER_INDEX, dtype=torch.long), persistent=False)
        self.register_buffer("faces", torch.as_tensor(self.layer.faces.astype("int64")), persistent=False)
        # smplx concatenates these two on every call and regresses the joints from all 10,475 shaped
        # vertices; the regressor is linear, so it is applied to the template and directions once here
        dirs = torch.cat((self.layer.shapedirs, self.layer.expr_dirs), dim=-1)
        self.register_buffer("shape_and_expression_dirs", dirs, persistent=False)
        self.register_buffer("joint_template", self.layer.J_regressor @ self.layer.v_template, persistent=False)
        self.register_buffer("joint_shape_dirs", torch.einsum("jv,vcd->jcd", self.layer.J_regressor, dirs),
                             persistent=False)
        # the kinematic tree by depth, as buffers so that .to(device) moves them with the model
        self.tree_depth = 0
        for joints, parents in tree_levels(self.layer.parents.tolist()):
            self.register_buffer(f"level{self.tree_depth}_joints", joints, persistent=False)
            self.register_buffer(f"level{self.tree_depth}_parents", parents, persistent=False)
            self.tree_depth += 1

    @staticmethod
    def _create_layer(smplx, clean: Path, path: Path):
        try:
            return smplx.create(
                str(clean),
                model_type="smplx",
                gender="NEUTRAL",
                use_pca=False,
                flat_hand_mean=False,
                use_face_contour=True,
                num_betas=constants.NUM_BETAS,
                num_expression_coeffs=constants.NUM_EXPRESSION,
                ext="npz",
                create_global_orient=False,
                create_body_pose=False,
                create_left_hand_pose=False,
                create_right_hand_pose=False,
                create_jaw_pose=False,
                create_leye_pose=False,
                create_reye_pose=False,
                create_betas=False,
                create_expression=False,
                create_transl=False,
            )
        except (KeyError, ValueError, RuntimeError, OSError, IndexError) as exc:
            raise ValueError(f"{path} is not a usable SMPL-X model file: {type(exc).__name__}: {exc}") from None

    def levels(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """tree_levels of the SMPL-X skeleton, on the model's device."""
        return [(getattr(self, f"level{i}_joints"), getattr(self, f"level{i}_parents")) for i in range(self.tree_depth)]

    def forward(
        self,
        global_orient: torch.Tensor,
        body_pose: torch.Tensor,
        left_hand_pose: torch.Tensor,
        right_hand_pose: torch.Tensor,
        jaw_pose: torch.Tensor,
        betas: torch.Tensor,
        expression: torch.Tensor,
    ) -> BodyModelOutput:
        """Axis-angle poses (N, 3|63|45|45|3), betas (N, 10), expression (N, 10).

        smplx's own forward (SMPLX.forward with its lbs) composed from smplx's parts, eyes at rest,
        with changes that keep its values bit for bit: the joint regressor applied once to the template
        and shape directions, the pose-corrective product run in the memory order MKL reads fastest
        (pose_corrective_offsets), the kinematic chain one tree level at a time (rigid_transforms),
        skinning in columns (skin), the neck's rotations for the dynamic face contour taken from
        this call's (dynamic_landmarks), and the global joint rotations from the same rigid transforms.
        """
        from smplx import lbs

        layer = self.layer
        count = global_orient.shape[0]
        eyes = torch.zeros_like(global_orient).repeat(1, 2)
        full_pose = torch.cat((global_orient, body_pose, jaw_pose, eyes, left_hand_pose, right_hand_pose), dim=1)
        full_pose = full_pose + layer.pose_mean
        shape = torch.cat((betas, expression), dim=1)
        v_shaped = layer.v_template + lbs.blend_shapes(shape, self.shape_and_expression_dirs)
        rest_joints = self.joint_template + lbs.blend_shapes(shape, self.joint_shape_dirs)
        local = lbs.batch_rodrigues(full_pose.reshape(-1, 3)).reshape(count, -1, 3, 3)
        eye = torch.eye(3, dtype=local.dtype, device=local.device)
        pose_feature = (local[:, 1:] - eye).reshape(count, -1)
        v_posed = v_shaped + pose_corrective_offsets(pose_feature, layer.posedirs, self.posedirs_rows)
        posed_joints, transforms = rigid_transforms(local, rest_joints, layer.parents, self.levels())
        num_joints = transforms.shape[1]
        per_vertex = (layer.lbs_weights @ transforms.reshape(count, num_joints, 16)).reshape(count, -1, 4, 4)
        vertices = skin(per_vertex, v_posed)

        dynamic_faces, dynamic_coords = dynamic_landmarks(
            local[:, layer.neck_kin_chain], layer.dynamic_lmk_faces_idx, layer.dynamic_lmk_bary_coords)
        landmark_faces = torch.cat((layer.lmk_faces_idx.expand(count, -1), dynamic_faces), dim=1)
        landmark_coords = torch.cat((layer.lmk_bary_coords.expand(count, -1, -1), dynamic_coords), dim=1)
        landmarks = lbs.vertices2landmarks(vertices, layer.faces_tensor, landmark_faces, landmark_coords)
        joints = torch.cat((layer.vertex_joint_selector(vertices, posed_joints), landmarks), dim=1)
        return BodyModelOutput(
            vertices=vertices,
            joints=joints[:, self.joint_index],
            skeleton_joints=joints[:, :num_joints],
            skeleton_rotations=transforms[..., :3, :3],
        )


def pose_corrective_offsets(pose_feature: torch.Tensor, posedirs: torch.Tensor, posedirs_rows: torch.Tensor) -> torch.Tensor:
    """smplx's ``pose_feature @ posedirs`` (N, 486) x (486, 3V) -> (N, V, 3), in the memory order MKL reads fastest.

    A CPU choice (the values are the same either way): the 61 MB matrix is kept twice because MKL
    on a 2-core AMD EPYC (one thread) was fastest so. Several rows run as posedirs^T @
    pose_feature^T over ``posedirs`` (smplx's transposed view of row-major (3V, 486) memory): 4 rows
    4.5 ms, against 9 ms for the plain product, which took time in proportion to the rows. One row
    runs the plain product over the row-major copy ``posedirs_rows``: 2.4 ms, against 5.7 ms over
    ``posedirs`` (MKL's matrix-vector kernel reading it that way).
    """
    count = pose_feature.shape[0]
    if count == 1:
        return (pose_feature @ posedirs_rows).reshape(1, -1, 3)
    return (posedirs.T @ pose_feature.T).T.reshape(count, -1, 3)


def tree_levels(parents: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(joints, their parents) per depth below the root, shallowest first: each level's joints
    depend only on joints of the levels before it (SMPL-X: 54 joints in 10 levels)."""
    depth = [0] * len(parents)
    for joint in range(1, len(parents)):
        if not 0 <= parents[joint] < joint:
            raise ValueError(f"joint {joint} has parent {parents[joint]}: a kinematic tree lists parents first")
        depth[joint] = depth[parents[joint]] + 1
    levels = []
    for level in range(1, max(depth, default=0) + 1):
        joints = [j for j, d in enumerate(depth) if d == level]
        levels.append((torch.tensor(joints), torch.tensor([parents[j] for j in joints])))
    return levels


def rigid_transforms(rotations: torch.Tensor, joints: torch.Tensor, parents: torch.Tensor,
                     levels: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """smplx's ``lbs.batch_rigid_transform`` with the chain composed a tree level at a time: 10
    batched 4x4 products instead of 54 single ones, each joint's the same product of the same
    operands (0.24 -> 0.16 ms traced for one person). (N, J, 3, 3), (N, J, 3) -> posed joints
    (N, J, 3) and transforms relative to the rest pose (N, J, 4, 4)."""
    from smplx import lbs

    joints = joints[..., None]
    relative = joints.clone()
    relative[:, 1:] -= joints[:, parents[1:]]
    local = lbs.transform_mat(rotations.reshape(-1, 3, 3), relative.reshape(-1, 3, 1)).reshape(-1, joints.shape[1], 4, 4)
    chain = local.clone()
    for level, level_parents in levels:
        chain[:, level] = chain[:, level_parents] @ local[:, level]
    rest = chain @ F.pad(joints, [0, 0, 0, 1])
    return chain[:, :, :3, 3], chain - F.pad(rest, [3, 0, 0, 0, 0, 0, 0, 0])


def skin(per_vertex: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Each point moved by its blended transform, ``R @ p + t`` written as three column products
    (the same sums as smplx's batched 3x3 @ 3x1 products, in fewer and larger kernels).
    (N, V, 4, 4), (N, V, 3) -> (N, V, 3)."""
    rows = per_vertex[..., :3, :]
    return (rows[..., 0] * points[..., 0:1] + rows[..., 1] * points[..., 1:2] + rows[..., 2] * points[..., 2:3]
            + rows[..., 3])


def dynamic_landmarks(neck_rotations: torch.Tensor, faces_by_angle: torch.Tensor,
                      coords_by_angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """smplx's ``lbs.find_dynamic_lmk_idx_and_bcoords`` from the neck chain's local rotations
    (N, K, 3, 3) already made for the pose, instead of converting those joints again: the face
    contour's faces and barycentric coordinates for the head's rotation about the vertical axis."""
    from smplx import lbs

    count = neck_rotations.shape[0]
    relative = torch.eye(3, dtype=neck_rotations.dtype, device=neck_rotations.device).expand(count, 3, 3)
    for index in range(neck_rotations.shape[1]):
        relative = torch.bmm(neck_rotations[:, index], relative)
    degrees = torch.round(torch.clamp(-lbs.rot_mat_to_euler(relative) * 180.0 / math.pi, max=39)).to(torch.long)
    # smplx's table: 0..39 for turns one way, 40..78 for the other, 78 beyond -39 degrees
    negative = degrees.lt(0).to(torch.long)
    beyond = degrees.lt(-39).to(torch.long)
    angle_index = negative * (beyond * 78 + (1 - beyond) * (39 - degrees)) + (1 - negative) * degrees
    return torch.index_select(faces_by_angle, 0, angle_index), torch.index_select(coords_by_angle, 0, angle_index)
