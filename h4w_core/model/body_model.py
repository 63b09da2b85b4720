"""SMPL-X through the `smplx` package, configured exactly as the reference uses it."""
from __future__ import annotations

import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from h4w_core.model import constants
from h4w_core.model.joint_tables import JOINT_LAYER_INDEX

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
        contiguous_buffers(self.layer)
        if self.layer.get_num_verts() != constants.NUM_VERTICES:
            raise ValueError(f"{path} has {self.layer.get_num_verts()} vertices, SMPL-X has {constants.NUM_VERTICES}")
        self.model_path = path
        self.register_buffer("joint_index", torch.tensor(JOINT_LAYER_INDEX, dtype=torch.long), persistent=False)
        self.register_buffer("faces", torch.as_tensor(self.layer.faces.astype("int64")), persistent=False)

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
        """Axis-angle poses (N, 3|63|45|45|3), betas (N, 10), expression (N, 10)."""
        zeros = torch.zeros_like(global_orient)
        out = self.layer(
            betas=betas,
            body_pose=body_pose,
            global_orient=global_orient,
            left_hand_pose=left_hand_pose,
            right_hand_pose=right_hand_pose,
            jaw_pose=jaw_pose,
            leye_pose=zeros,
            reye_pose=zeros,
            expression=expression,
            return_full_pose=True,
        )
        rotations = global_rotations(out.full_pose.reshape(out.full_pose.shape[0], -1, 3), self.layer.parents)
        return BodyModelOutput(
            vertices=out.vertices,
            joints=out.joints[:, self.joint_index],
            skeleton_joints=out.joints[:, :55],
            skeleton_rotations=rotations,
        )


def contiguous_buffers(module: nn.Module) -> None:
    """Store every buffer of ``module`` in row-major order (same values, same products).

    smplx keeps posedirs and J_regressor as transposed views of the file's arrays, and a matrix
    product over a transposed view reads memory out of order: on a 2-core CPU the pose-corrective
    product (a 61 MB matrix) took 5.9 ms per person that way and 2.2 ms contiguous.
    """
    for name, buffer in list(module.named_buffers(recurse=False)):
        if not buffer.is_contiguous():
            setattr(module, name, buffer.contiguous())


def axis_angle_to_rotmat(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3), Rodrigues."""
    angle = aa.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    axis = aa / angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack((zero, -z, y, z, zero, -x, -y, x, zero), dim=-1).reshape(*aa.shape[:-1], 3, 3)
    s = torch.sin(angle)[..., None]
    c = torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(k)
    return eye + s * k + (1 - c) * (k @ k)


def global_rotations(full_pose: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
    """Local axis-angle (N, J, 3) with the kinematic tree -> global rotations (N, J, 3, 3).

    full_pose is what smplx posed (hand means included), so these are the frames it skinned with.
    """
    local = axis_angle_to_rotmat(full_pose)
    chain = [local[:, 0]]
    for j in range(1, local.shape[1]):
        chain.append(chain[int(parents[j])] @ local[:, j])
    return torch.stack(chain, dim=1)
