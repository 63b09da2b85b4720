"""Preprocessing rules, real-camera placement and the estimator's handling of bad input."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from h4w_core.inference.camera import Intrinsics
from h4w_core.inference.preprocess import InvalidBoxError, InvalidImageError, process_bbox, to_rgb


def test_process_bbox_clips_widens_and_scales():
    box = process_bbox((20, 10, 360, 502), 512, 512)
    np.testing.assert_allclose(box, [-35.34375, -52.625, 469.6875, 626.25])
    wide = process_bbox((0, 0, 400, 100), 640, 480)
    assert wide[2] / wide[3] == pytest.approx(0.75)


@pytest.mark.parametrize("box", [(0, 0, 0, 10), (10, 10, -5, 20), (700, 10, 50, 50), (np.nan, 0, 10, 10), (5, 5, 1, 1)])
def test_process_bbox_rejects_empty_or_outside_boxes(box):
    with pytest.raises(InvalidBoxError):
        process_bbox(box, 640, 480)


def test_channel_order_and_image_checks():
    img = np.zeros((4, 5, 3), np.uint8)
    img[..., 0] = 10
    assert to_rgb(img, "bgr")[0, 0, 2] == 10
    assert to_rgb(img[..., 0], "rgb").shape == (4, 5, 3)
    with pytest.raises(InvalidImageError):
        to_rgb(np.zeros((4, 5, 3), np.float32), "rgb")
    with pytest.raises(InvalidImageError):
        to_rgb(np.zeros((0, 5, 3), np.uint8), "rgb")
    with pytest.raises(ValueError):
        to_rgb(img, "rgba")


@pytest.mark.parametrize("intrinsics", [Intrinsics(600.0, 600.0, 320.0, 240.0), Intrinsics(900.0, 870.0, 300.0, 260.0)])
def test_real_camera_vertices_project_onto_the_reference_pixels(parity_assets, parity_estimator, intrinsics):
    image = cv2.imread(str(parity_assets["image"]), cv2.IMREAD_COLOR)
    (p,) = parity_estimator.predict(image, [parity_assets["bbox"]], channel_order="bgr", intrinsics=intrinsics)
    import torch

    from h4w_core.inference.placement import project_to_image

    ref_uv = project_to_image(torch.from_numpy(p.mesh_cam)[None], torch.from_numpy(p.bbox_xywh)[None])[0].numpy()
    uv = np.stack([p.vertices[:, 0] / p.vertices[:, 2] * intrinsics.fx + intrinsics.cx,
                   p.vertices[:, 1] / p.vertices[:, 2] * intrinsics.fy + intrinsics.cy], axis=1)
    assert np.abs(uv - ref_uv).max() < 0.5
    juv = np.stack([p.joints[:, 0] / p.joints[:, 2] * intrinsics.fx + intrinsics.cx,
                    p.joints[:, 1] / p.joints[:, 2] * intrinsics.fy + intrinsics.cy], axis=1)
    assert np.abs(juv - p.joints_img).max() < 0.5
    # the body keeps its metric depth extent, and sits at the rescaled distance
    np.testing.assert_allclose(np.ptp(p.vertices[:, 2]), np.ptp(p.mesh_cam[:, 2]), rtol=1e-4)
    virtual_focal = 5000 / 192 * p.bbox_xywh[2]
    expected = p.cam_trans[2] * np.sqrt(intrinsics.fx * intrinsics.fy) / virtual_focal
    assert np.median(p.vertices[:, 2] - (p.mesh_cam[:, 2] - p.cam_trans[2])) == pytest.approx(expected, rel=1e-4)


def test_skip_invalid_boxes_keeps_the_valid_ones(parity_assets, parity_estimator):
    image = cv2.imread(str(parity_assets["image"]), cv2.IMREAD_COLOR)
    results = parity_estimator.predict(image, [(0, 0, 0, 0), parity_assets["bbox"]], channel_order="bgr", skip_invalid=True)
    assert len(results) == 1 and results[0].track.input_box.tolist() == list(parity_assets["bbox"])
    with pytest.raises(InvalidBoxError):
        parity_estimator.predict(image, [(1e6, 1e6, 10, 10)], channel_order="bgr")
