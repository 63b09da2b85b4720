"""The implementation reproduces the reference's outputs on the shared parity fixture."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from h4w_core.inference.preprocess import crop_person, to_rgb
from h4w_core.model import constants

POSE_TOL = 1e-3  # rad
METRE_TOL = 1e-3
BOX_TOL = 0.5  # px
PIXEL_TOL = 1e-4


@pytest.fixture(scope="module")
def parity_run(parity_assets, parity_estimator):
    image = cv2.imread(str(parity_assets["image"]), cv2.IMREAD_COLOR)
    crop = crop_person(to_rgb(image, "bgr"), parity_assets["bbox"])
    out, body = parity_estimator.forward(torch.from_numpy(crop.patch)[None])
    ref = dict(np.load(parity_assets["reference"]))
    return image, crop, out, body, ref


def test_crop_matches_reference(parity_run):
    _, crop, _, _, ref = parity_run
    np.testing.assert_allclose(crop.bbox_xywh, ref["processed_bbox"], atol=1e-4)
    assert np.abs(crop.patch - ref["input_patch"]).max() <= PIXEL_TOL


@pytest.mark.parametrize(
    "ours, theirs, tol",
    [
        ("global_orient", "smplx_root_pose", POSE_TOL),
        ("body_pose", "smplx_body_pose", POSE_TOL),
        ("left_hand_pose", "smplx_lhand_pose", POSE_TOL),
        ("right_hand_pose", "smplx_rhand_pose", POSE_TOL),
        ("jaw_pose", "smplx_jaw_pose", POSE_TOL),
        ("betas", "smplx_shape", 1e-4),
        ("expression", "smplx_expr", 1e-4),
        ("cam_trans", "cam_trans", METRE_TOL),
        ("lhand_bbox", "lhand_bbox", BOX_TOL),
        ("rhand_bbox", "rhand_bbox", BOX_TOL),
        ("face_bbox", "face_bbox", BOX_TOL),
        ("joint_img", "joint_img", 1e-3),
    ],
)
def test_network_outputs_match_reference(parity_run, ours, theirs, tol):
    _, _, out, _, ref = parity_run
    err = np.abs(getattr(out, ours)[0].numpy() - ref[theirs]).max()
    assert err <= tol, f"{ours}: max abs error {err:.3g} > {tol}"


def test_mesh_and_projection_match_reference(parity_run):
    _, _, out, body, ref = parity_run
    mesh_cam = (body.vertices + out.cam_trans[:, None])[0].numpy()
    assert np.abs(mesh_cam - ref["smplx_mesh_cam"]).max() <= METRE_TOL
    joints = body.joints[0] + out.cam_trans[0]
    x = joints[:, 0] / (joints[:, 2] + 1e-4) * constants.FOCAL[0] + constants.PRINCPT[0]
    y = joints[:, 1] / (joints[:, 2] + 1e-4) * constants.FOCAL[1] + constants.PRINCPT[1]
    proj = torch.stack((x / 192 * 6, y / 256 * 8), 1).numpy()
    # 0.5 px of the 384-wide crop, in heatmap units (1 unit = 64 px)
    assert np.abs(proj - ref["smplx_joint_proj"]).max() <= BOX_TOL / 64


def test_predict_reports_reference_mesh_and_boxes_in_original_pixels(parity_assets, parity_estimator):
    image = cv2.imread(str(parity_assets["image"]), cv2.IMREAD_COLOR)
    ref = np.load(parity_assets["reference"])
    (person,) = parity_estimator.predict(image, [parity_assets["bbox"]], channel_order="bgr")
    assert np.abs(person.mesh_cam - ref["smplx_mesh_cam"]).max() <= METRE_TOL
    x, y, w, h = ref["processed_bbox"]
    expected = ref["lhand_bbox"] * np.array([w / 384, h / 512, w / 384, h / 512]) + np.array([x, y, x, y])
    assert np.abs(person.lhand_bbox - expected).max() <= BOX_TOL
    # the reference's projection on the original image (demo render camera)
    proj = ref["smplx_joint_proj"] / np.array([6, 8]) * np.array([w, h]) + np.array([x, y])
    assert np.abs(person.joints_img - proj).max() <= BOX_TOL


def test_batch_equals_one_at_a_time(parity_assets, parity_estimator):
    image = cv2.imread(str(parity_assets["image"]), cv2.IMREAD_COLOR)
    boxes = [parity_assets["bbox"], (250.0, 120.0, 200.0, 300.0), (0.0, 0.0, 512.0, 512.0)]
    batch = parity_estimator.predict(image, boxes, channel_order="bgr")
    for box, together in zip(boxes, batch):
        (alone,) = parity_estimator.predict(image, [box], channel_order="bgr")
        for key in ("body_pose", "left_hand_pose", "right_hand_pose", "cam_trans", "vertices", "lhand_bbox"):
            np.testing.assert_allclose(getattr(together, key), getattr(alone, key), atol=1e-4, err_msg=key)
