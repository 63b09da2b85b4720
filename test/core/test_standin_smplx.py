"""The human-shaped stand-in SMPL-X file: loads in the real smplx package and looks like a person."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from h4w_core.testing.standin_smplx import (
    JOINT_INDEX as J,
)
from h4w_core.testing.standin_smplx import (
    KEYPOINT_VERTEX_IDS,
    build_standin_arrays,
    joint_positions,
    write_standin_smplx,
)

smplx = pytest.importorskip("smplx")

V, F, NJ = 10475, 20908, 55
# SMPL-X kinematic tree written out independently of the generator
EXPECTED_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15]
for _wrist in (20, 21):
    for _ in range(5):
        _b = len(EXPECTED_PARENTS)
        EXPECTED_PARENTS += [_wrist, _b, _b + 1]

# layer joint index of each smplx vertex keypoint (joints 55..75)
KP = {name: 55 + i for i, name in enumerate(KEYPOINT_VERTEX_IDS)}
STATIC_LMK = 76  # 51 face landmarks, then 17 contour landmarks


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return write_standin_smplx(tmp_path_factory.mktemp("standin") / "new" / "smplx" / "SMPLX_NEUTRAL.npz")


@pytest.fixture(scope="module")
def arrays(model_file) -> dict[str, np.ndarray]:
    with np.load(model_file) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def layer(model_file):
    return smplx.create(str(model_file.parent.parent), "smplx", gender="NEUTRAL", use_pca=False,
                        use_face_contour=True, flat_hand_mean=False, num_betas=10, num_expression_coeffs=10,
                        ext="npz")


def run(layer, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and joints (144, 3) for one body; unspecified inputs are zero."""
    with torch.no_grad():
        out = layer(**{k: torch.as_tensor(np.asarray(v, np.float32))[None] for k, v in kw.items()})
    return out.vertices[0].numpy().astype(np.float64), out.joints[0].numpy().astype(np.float64)


def test_keys_shapes_and_dtypes(arrays):
    expected = {
        "v_template": (V, 3), "f": (F, 3), "shapedirs": (V, 3, 400), "posedirs": (V, 3, 486),
        "J_regressor": (NJ, V), "kintree_table": (2, NJ), "weights": (V, NJ),
        "hands_componentsl": (45, 45), "hands_componentsr": (45, 45), "hands_meanl": (45,), "hands_meanr": (45,),
        "lmk_faces_idx": (51,), "lmk_bary_coords": (51, 3), "dynamic_lmk_faces_idx": (79, 17),
        "dynamic_lmk_bary_coords": (79, 17, 3),
    }
    assert {k: v.shape for k, v in arrays.items()} == expected
    assert arrays["v_template"].dtype == np.float32
    assert arrays["f"].dtype == np.int32
    for key in ("lmk_faces_idx", "dynamic_lmk_faces_idx", "kintree_table"):
        assert np.issubdtype(arrays[key].dtype, np.integer)
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    assert parents.tolist() == EXPECTED_PARENTS
    assert arrays["kintree_table"][1].tolist() == list(range(NJ))


def test_write_creates_folders_and_is_deterministic(tmp_path, arrays):
    target = tmp_path / "a" / "b" / "SMPLX_NEUTRAL.tmp.npz"
    assert write_standin_smplx(target) == target
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
    with np.load(target) as again:
        for key, value in arrays.items():
            np.testing.assert_array_equal(again[key], value, err_msg=key)


def test_build_is_fast():
    start = time.perf_counter()
    build_standin_arrays()
    assert time.perf_counter() - start < 10.0  # about 0.3 s; generous for loaded CI machines


def test_zero_pose_is_a_standing_person(layer):
    verts, joints = run(layer)
    height = np.ptp(verts[:, 1])
    assert 1.55 < height < 1.9
    assert np.ptp(verts[:, 0]) > 0.9 * height  # T-pose: arm span close to height
    assert abs(joints[0, 0]) < 0.01 and -0.45 < joints[0, 1] < -0.25  # pelvis as in SMPL-X
    assert verts[:, 1].min() > joints[J["left_ankle"], 1] - 0.15  # feet end just below the ankles


def test_skeleton_is_anatomical():
    j = joint_positions()
    up = [J[n] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
    assert np.all(np.diff(j[up, 1]) > 0)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        leg = [J[f"{side}_{n}"] for n in ("hip", "knee", "ankle")]
        assert np.all(np.diff(j[leg, 1]) < -0.3)  # long bones point down
        assert j[J[f"{side}_foot"], 2] > j[J[f"{side}_ankle"], 2] + 0.08  # foot points forward
        arm = [J[f"{side}_{n}"] for n in ("collar", "shoulder", "elbow", "wrist")]
        assert np.all(np.diff(sign * j[arm, 0]) > 0.05)  # T-pose arm reaches sideways
        assert np.all(np.abs(j[arm[1:], 1] - j[J["spine3"], 1]) < 0.15)
        for finger in ("index", "middle", "pinky", "ring"):
            chain = [J[f"{side}_wrist"]] + [J[f"{side}_{finger}{k}"] for k in (1, 2, 3)]
            assert np.all(np.diff(sign * j[chain, 0]) > 0.015)
        knuckles_z = [j[J[f"{side}_{f}1"], 2] for f in ("index", "middle", "ring", "pinky")]
        assert np.all(np.diff(knuckles_z) < 0)  # index on the thumb side (front), pinky behind
        assert j[J[f"{side}_thumb3"], 2] > j[J[f"{side}_index1"], 2] + 0.02  # thumbs forward
        assert sign * j[J[f"{side}_eye"], 0] > 0.02
    assert j[J["head"], 1] < j[J["left_eye"], 1] and j[J["left_eye"], 2] > j[J["head"], 2] + 0.05
    np.testing.assert_allclose(j[[J["right_hip"], J["right_wrist"]]], j[[J["left_hip"], J["left_wrist"]]] * [-1, 1, 1])


def test_joint_regressor_reproduces_joints(arrays, layer):
    reg = arrays["J_regressor"].astype(np.float64)
    assert reg.min() >= 0.0
    np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-5)
    assert np.all((reg > 0).sum(1) >= 8)  # a spread of vertices, not one
    expected = joint_positions()
    assert np.abs(reg @ arrays["v_template"].astype(np.float64) - expected).max() < 0.01
    _, joints = run(layer)  # hand joints are curled by hands_mean (flat_hand_mean=False); the rest is rest pose
    assert np.abs(joints[:25] - expected[:25]).max() < 0.01


def test_keypoint_vertices_are_where_they_belong(layer):
    _, j = run(layer)
    kp = {name: j[i] for name, i in KP.items()}
    head, neck = j[J["head"]], j[J["neck"]]
    shoulders_y = max(j[J["left_shoulder"], 1], j[J["right_shoulder"], 1])
    assert kp["nose"][2] > head[2] + 0.08 and kp["nose"][1] > shoulders_y + 0.1 and abs(kp["nose"][0]) < 0.005
    for side, sign in (("l", 1.0), ("r", -1.0)):
        eye, ear = kp[f"{side}eye"], kp[f"{side}ear"]
        assert sign * eye[0] > 0.015 and eye[1] > kp["nose"][1] + 0.01 and eye[2] > head[2] + 0.05
        assert sign * ear[0] > sign * eye[0] + 0.03 and ear[2] < eye[2] - 0.05 and ear[1] > neck[1] + 0.1
        big, small, heel = (kp[f"{side.upper()}{n}"] for n in ("BigToe", "SmallToe", "Heel"))
        ankle = j[J["left_ankle" if side == "l" else "right_ankle"]]
        assert sign * big[0] > 0 and sign * small[0] > sign * big[0] + 0.02  # big toe medial
        assert big[2] > heel[2] + 0.2 and small[2] > heel[2] + 0.15  # toes forward of heel
        assert max(big[1], small[1], heel[1]) < ankle[1] - 0.05
        wrist = j[J["left_wrist" if side == "l" else "right_wrist"]]
        tips = {f: kp[f"{side}{f}"] for f in ("thumb", "index", "middle", "ring", "pinky")}
        for name, tip in tips.items():
            assert sign * tip[0] > sign * wrist[0] + 0.05, name
            dip = j[J[f"{'left' if side == 'l' else 'right'}_{name}3"]]
            assert sign * (tip[0] - dip[0]) > 0.0 and np.linalg.norm(tip - dip) < 0.04, name
        assert tips["thumb"][2] > tips["index"][2] > tips["middle"][2] > tips["ring"][2] > tips["pinky"][2]


def test_faces_are_valid_triangles_of_a_nearly_closed_surface(arrays):
    faces = arrays["f"].astype(np.int64)
    verts = arrays["v_template"].astype(np.float64)
    assert faces.min() == 0 and faces.max() == V - 1
    assert np.unique(faces).size == V  # every vertex is used
    assert np.all((faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2]))
    tri = verts[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert area.min() > 1e-7
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)  # consistent winding, manifold
    undirected = Counter(map(tuple, np.sort(directed, axis=1).tolist()))
    assert max(undirected.values()) == 2
    assert sum(n == 1 for n in undirected.values()) <= 16  # only the mouth opening is open
    # outward normals: the surface encloses a positive volume of roughly a person (~0.06-0.08 m^3)
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert 0.04 < volume < 0.12


def test_skinning_weights(arrays):
    w = arrays["weights"].astype(np.float64)
    assert w.min() >= 0.0
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    blended = (w > 0.05).sum(1) > 1
    assert 0.05 < blended.mean() < 0.9  # blends near joints, rigid elsewhere
    owner = w.argmax(1)
    verts = arrays["v_template"]
    assert np.all(verts[owner == J["left_wrist"], 0] > 0.6) and np.all(verts[owner == J["right_wrist"], 0] < -0.6)
    assert np.all(verts[owner == J["head"], 1] > 0.1) and np.all(verts[owner == J["left_ankle"], 1] < -1.1)


def test_bending_left_elbow_moves_only_the_left_forearm_and_hand(layer, arrays):
    rest, _ = run(layer)
    pose = np.zeros(63)
    pose[(J["left_elbow"] - 1) * 3 + 1] = -np.pi / 2  # forearm swings forward
    bent, joints = run(layer, body_pose=pose)
    owner = arrays["weights"].argmax(1)
    hand = {side: [J[f"{side}_wrist"]] + [J[f"{side}_{f}{k}"] for f in ("index", "pinky", "thumb") for k in (1, 2, 3)]
            for side in ("left", "right")}
    left_hand, right_hand = np.isin(owner, hand["left"]), np.isin(owner, hand["right"])
    moved = np.linalg.norm(bent - rest, axis=1)
    assert moved[left_hand].min() > 0.1
    assert moved[right_hand].max() < 1e-6
    assert moved[owner == J["head"]].max() < 1e-6
    assert joints[J["left_wrist"], 2] > joints[J["left_elbow"], 2] + 0.2  # the hand went forward


def test_betas_change_height_and_girth(layer):
    rest, _ = run(layer)
    height = np.ptp(rest[:, 1])
    for b0, sign in ((2.0, 1.0), (-2.0, -1.0)):
        taller, _ = run(layer, betas=[b0] + [0.0] * 9)
        delta = np.ptp(taller[:, 1]) - height
        assert 0.05 < sign * delta < 0.2  # about 5 cm per unit
    waist = np.abs(rest[:, 1] + 0.22) < 0.02
    wider, _ = run(layer, betas=[0.0, 2.0] + [0.0] * 8)
    assert np.ptp(wider[waist, 0]) > np.ptp(rest[waist, 0]) + 0.01
    for k in range(2, 10):
        other, _ = run(layer, betas=np.eye(10)[k])
        assert 0.0005 < np.abs(other - rest).max() < 0.02


def test_expression_moves_only_face_vertices(layer):
    rest, joints = run(layer)
    for k in range(10):
        expr, _ = run(layer, expression=np.eye(10)[k] * 2.0)
        moved = np.linalg.norm(expr - rest, axis=1)
        assert 0.001 < moved.max() < 0.03, k
        changed = rest[moved > 1e-7]
        assert changed[:, 1].min() > joints[J["neck"], 1] + 0.02, k
        assert changed[:, 2].min() > joints[J["head"], 2], k  # front of the head only


def test_face_landmarks_on_the_face(arrays, layer):
    for bary in (arrays["lmk_bary_coords"], arrays["dynamic_lmk_bary_coords"].reshape(-1, 3)):
        assert bary.min() >= 0.0
        np.testing.assert_allclose(bary.sum(-1), 1.0, atol=1e-5)
    _, j = run(layer)
    head, nose = j[J["head"]], j[KP["nose"]]
    static = j[STATIC_LMK:STATIC_LMK + 51]
    contour = j[STATIC_LMK + 51:]
    assert np.all(static[:, 2] > head[2] + 0.05)  # on the front of the face
    assert np.all((static[:, 1] > head[1] - 0.06) & (static[:, 1] < head[1] + 0.1))
    assert np.all(static[:10, 1] > j[KP["leye"], 1])  # brows above the eyes
    assert np.all(static[31:, 1] < nose[1])  # mouth below the nose
    for a, b in ((19, 28), (22, 25), (31, 37), (14, 18), (0, 9)):  # mirror pairs of the 68-point layout
        assert static[a, 0] < 0 < static[b, 0]
        np.testing.assert_allclose(static[a] * [-1, 1, 1], static[b], atol=0.004)
    assert np.abs(contour[8, 0]) < 0.002 and contour[8, 1] < static[31:, 1].min()  # chin below the mouth
    assert contour[0, 0] < -0.04 and contour[16, 0] > 0.04
    np.testing.assert_allclose(contour[::-1] * [-1, 1, 1], contour, atol=0.002)
    # turning the neck left or right picks mirrored look-up-table rows; the chin point lags the turn
    turned = {}
    for sign in (1.0, -1.0):
        pose = np.zeros(63)
        pose[(J["neck"] - 1) * 3 + 1] = sign * 0.5
        _, jt = run(layer, body_pose=pose)
        turned[sign] = jt
        chin, nose_x = jt[STATIC_LMK + 51 + 8, 0], jt[KP["nose"], 0]
        assert 0.005 < sign * chin < sign * nose_x - 0.01
    np.testing.assert_allclose(turned[1.0][STATIC_LMK + 51:] * [-1, 1, 1], turned[-1.0][STATIC_LMK + 51:][::-1],
                               atol=0.003)
    # every look-up-table entry lands on the lower head
    faces = arrays["f"][arrays["dynamic_lmk_faces_idx"].reshape(-1)]
    pts = arrays["v_template"][faces].mean(1)
    assert np.all((pts[:, 1] > 0.13) & (pts[:, 1] < head[1] + 0.02) & (pts[:, 2] > head[2] - 0.03))


def test_hand_mean_and_components(arrays):
    left, right = arrays["hands_meanl"], arrays["hands_meanr"]
    np.testing.assert_allclose(left.reshape(15, 3), right.reshape(15, 3) * [1, -1, -1])
    assert 0.05 < np.abs(right).max() < 0.5
    assert np.all(right.reshape(15, 3)[:12, 2] > 0)  # right fingers flex about +z (tips toward the palm, -y)
    for comps in (arrays["hands_componentsl"], arrays["hands_componentsr"]):
        np.testing.assert_allclose(comps @ comps.T, np.eye(45), atol=1e-6)


def test_pose_blend_shapes_are_small(arrays):
    posedirs = arrays["posedirs"]
    assert 0.0 < np.abs(posedirs).max() < 0.01
