"""Model files can never run code: SMPL-X files are read without pickles, checkpoints weights-only.

Each malicious file would create a marker file when unpickled; every test asserts it is refused
with a one-line message and that the marker was never created.
"""
from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from h4w_core.cli.infer import main as infer_main
from h4w_core.data import SAMPLE_PHOTO
from h4w_core.model.body_model import SMPLX_ARRAYS, BodyModel, UnsafeModelFileError, load_smplx_arrays


class _Payload:
    """Unpickling this opens (creates) the marker file: stands for any code a pickle can run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_named_npz(folder, marker):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "SMPLX_NEUTRAL.npz"
    path.write_bytes(pickle.dumps({"v_template": _Payload(marker)}))
    return path


def _npz_with_object_array(folder, marker, standin_assets):
    folder.mkdir(parents=True, exist_ok=True)
    with np.load(standin_assets.smplx_dir / "SMPLX_NEUTRAL.npz") as good:
        arrays = {k: good[k] for k in good.files}
    arrays["f"] = np.array([_Payload(marker)], dtype=object)
    path = folder / "SMPLX_NEUTRAL.npz"
    np.savez(path, **arrays)
    return path


def _pkl_model(folder, marker):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "SMPLX_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    return path


VARIANTS = {
    "pickle_named_npz": lambda folder, marker, assets: _pickle_named_npz(folder, marker),
    "npz_with_object_array": _npz_with_object_array,
    "pkl_model": lambda folder, marker, assets: _pkl_model(folder, marker),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_malicious_smplx_file_is_refused_and_runs_nothing(variant, tmp_path, standin_assets):
    marker = tmp_path / "code_ran"
    folder = tmp_path / "smplx"
    VARIANTS[variant](folder, marker, standin_assets)
    with pytest.raises(UnsafeModelFileError) as err:
        BodyModel(folder)
    assert "\n" not in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_h4w_infer_refuses_malicious_smplx_in_one_line(variant, tmp_path, standin_assets, capsys):
    marker = tmp_path / "code_ran"
    folder = tmp_path / "smplx"
    VARIANTS[variant](folder, marker, standin_assets)
    out = tmp_path / "out.npz"
    code = infer_main(["--image", str(SAMPLE_PHOTO), "--bbox", "20,10,360,490", "--checkpoint", str(standin_assets.checkpoint),
                       "--smplx-dir", str(folder), "--output", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and not out.exists() and not marker.exists()
    assert len([line for line in err if line.startswith("h4w-infer: error")]) == 1, err
    assert "Traceback" not in "\n".join(err)


def test_plain_npz_loads_and_unread_members_stay_unread(tmp_path, standin_assets):
    """An extra member smplx never reads is never unpickled, even if it holds an object."""
    marker = tmp_path / "code_ran"
    with np.load(standin_assets.smplx_dir / "SMPLX_NEUTRAL.npz") as good:
        arrays = {k: good[k] for k in good.files}
    arrays["joint2num"] = np.array([_Payload(marker)], dtype=object)
    folder = tmp_path / "smplx"
    folder.mkdir()
    np.savez(folder / "SMPLX_NEUTRAL.npz", **arrays)
    loaded = load_smplx_arrays(folder / "SMPLX_NEUTRAL.npz")
    assert set(loaded) == set(SMPLX_ARRAYS)
    assert BodyModel(folder).layer.get_num_verts() == 10475
    assert not marker.exists()


def test_npz_missing_arrays_is_a_clear_error(tmp_path, standin_assets):
    folder = tmp_path / "smplx"
    folder.mkdir()
    shutil.copy(standin_assets.smplx_dir / "SMPLX_NEUTRAL.npz", folder / "full.npz")
    with np.load(folder / "full.npz") as good:
        np.savez(folder / "SMPLX_NEUTRAL.npz", **{k: good[k] for k in good.files if k != "posedirs"})
    with pytest.raises(ValueError, match="posedirs"):
        BodyModel(folder)


@pytest.mark.parametrize("count", [1, 3])
def test_body_model_poses_as_plain_smplx_does(standin_assets, count):
    """BodyModel's forward (smplx's parts, its own product order) gives what smplx's own forward gives:
    vertices, every joint and landmark, and global rotations that compose the local ones down the tree."""
    import smplx
    import torch
    from scipy.spatial.transform import Rotation

    model = BodyModel(standin_assets.smplx_dir)
    assert model.layer.posedirs.T.is_contiguous() and model.posedirs_rows.is_contiguous()
    plain = smplx.create(str(model.model_path), model_type="smplx", use_pca=False, flat_hand_mean=False,
                         use_face_contour=True, ext="npz")
    generator = torch.Generator().manual_seed(count)
    poses = {name: 0.3 * torch.randn(count, size, generator=generator)
             for name, size in (("global_orient", 3), ("body_pose", 63), ("left_hand_pose", 45),
                                ("right_hand_pose", 45), ("jaw_pose", 3), ("betas", 10), ("expression", 10))}
    with torch.no_grad():
        ours = model(**poses)
        theirs = plain(**poses, leye_pose=torch.zeros(count, 3), reye_pose=torch.zeros(count, 3), return_full_pose=True)
    torch.testing.assert_close(ours.vertices, theirs.vertices, rtol=0.0, atol=1e-5)
    torch.testing.assert_close(ours.joints, theirs.joints[:, model.joint_index], rtol=0.0, atol=1e-5)
    torch.testing.assert_close(ours.skeleton_joints, theirs.joints[:, :55], rtol=0.0, atol=1e-5)

    parents = plain.parents.tolist()
    for person in range(count):
        local = Rotation.from_rotvec(theirs.full_pose[person].reshape(-1, 3).double().numpy())
        chain = [local[0]]
        for joint in range(1, 55):
            chain.append(chain[parents[joint]] * local[joint])
        expected = np.stack([r.as_matrix() for r in chain])
        np.testing.assert_allclose(ours.skeleton_rotations[person].double().numpy(), expected, rtol=0.0, atol=1e-5)


@pytest.mark.parametrize("count", [2, 5])
def test_body_model_parts_are_smplx_parts_bit_for_bit(standin_assets, count):
    """The kinematic chain by tree levels, skinning in columns and the face contour from the pose's
    own neck rotations give exactly smplx's values (torch.equal), the contour over every entry of
    its lookup table (neck turns sweeping -100..100 degrees)."""
    import torch
    from smplx import lbs

    from h4w_core.model.body_model import dynamic_landmarks, rigid_transforms, skin, tree_levels

    model = BodyModel(standin_assets.smplx_dir)
    layer = model.layer
    generator = torch.Generator().manual_seed(count)
    steps = 401
    turns = torch.linspace(-1.75, 1.75, steps)
    pose = 0.3 * torch.randn(steps, count, 55, 3, generator=generator)
    pose[:, 0, layer.neck_kin_chain] = 0.0  # one person's chain from the neck down at rest (each table row), but for
    pose[:, :, 12, 1] += turns[:, None]  # the neck turning about the vertical axis
    pose = (pose.reshape(-1, 55 * 3) + layer.pose_mean).reshape(steps * count, 55, 3)
    local = lbs.batch_rodrigues(pose.reshape(-1, 3)).reshape(-1, 55, 3, 3)
    rest = torch.randn(steps * count, 55, 3, generator=generator)

    levels = tree_levels(layer.parents.tolist())
    buffers = dict(model.named_buffers())
    assert model.levels()[0][0] is buffers["level0_joints"]  # moved with the model by .to(device)
    assert all(torch.equal(a, b) for level, mine in zip(levels, model.levels()) for a, b in zip(level, mine))
    assert sorted(torch.cat([joints for joints, _ in levels]).tolist()) == list(range(1, 55))
    ours = rigid_transforms(local, rest, layer.parents, levels)
    theirs = lbs.batch_rigid_transform(local, rest, layer.parents)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))

    per_vertex = torch.randn(count, 300, 4, 4, generator=generator)
    points = torch.randn(count, 300, 3, generator=generator)
    assert torch.equal(skin(per_vertex, points), (per_vertex[..., :3, :3] @ points[..., None])[..., 0] + per_vertex[..., :3, 3])

    ours = dynamic_landmarks(local[:, layer.neck_kin_chain], layer.dynamic_lmk_faces_idx, layer.dynamic_lmk_bary_coords)
    theirs = lbs.find_dynamic_lmk_idx_and_bcoords(torch.zeros(steps * count, 1, 3), pose.reshape(steps * count, -1),
                                                  layer.dynamic_lmk_faces_idx, layer.dynamic_lmk_bary_coords,
                                                  layer.neck_kin_chain)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    table = layer.dynamic_lmk_faces_idx
    hit = {int(row) for row in (ours[0][:, None] == table[None]).all(-1).float().argmax(-1)}
    assert len(hit) == len(torch.unique(table, dim=0))  # the sweep reaches every row of smplx's table

    with pytest.raises(ValueError, match="parent"):
        tree_levels([-1, 2, 0])


@pytest.mark.parametrize("count", [1, 2, 4])
def test_pose_corrective_offsets_is_the_plain_product(count):
    """Both memory orders give smplx's product on a dense matrix (the stand-in's pose correctives are sparse)."""
    import torch

    from h4w_core.model.body_model import pose_corrective_offsets

    generator = torch.Generator().manual_seed(count)
    rows = torch.randn(486, 3 * 50, generator=generator)
    feature = torch.randn(count, 486, generator=generator)
    offsets = pose_corrective_offsets(feature, rows.T.contiguous().T, rows)
    expected = (feature.double() @ rows.double()).reshape(count, 50, 3)
    torch.testing.assert_close(offsets.double(), expected, rtol=0.0, atol=1e-4)  # sums of 486 products near 20


def test_smplx_arrays_of_the_wrong_shape_are_named(tmp_path, standin_assets):
    with np.load(standin_assets.smplx_dir / "SMPLX_NEUTRAL.npz") as good:
        arrays = {k: good[k] for k in good.files}
    folder = tmp_path / "smplx"
    folder.mkdir()
    np.savez(folder / "SMPLX_NEUTRAL.npz", **{**arrays, "J_regressor": arrays["J_regressor"][:3]})
    with pytest.raises(ValueError, match=r"SMPLX_NEUTRAL.npz is not an SMPL-X model file: J_regressor \(3, 10475\)"):
        BodyModel(folder)
