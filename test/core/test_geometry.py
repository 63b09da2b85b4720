"""Tensor functions against independent references (scipy, a direct RoIAlign loop)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from h4w_core.model.geometry import camera_translation, restore_bbox, roi_align, rot6d_to_rotmat, rotmat_to_axis_angle


def roi_align_loop(img: np.ndarray, box, out_h: int, out_w: int) -> np.ndarray:
    """torchvision roi_align(aligned=False, sampling_ratio=-1) written out sample by sample."""
    c, height, width = img.shape
    x1, y1, x2, y2 = box
    roi_w, roi_h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    bin_w, bin_h = roi_w / out_w, roi_h / out_h
    grid_h, grid_w = math.ceil(roi_h / out_h), math.ceil(roi_w / out_w)
    out = np.zeros((c, out_h, out_w))
    for ph in range(out_h):
        for pw in range(out_w):
            acc = np.zeros(c)
            for iy in range(grid_h):
                y = y1 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                for ix in range(grid_w):
                    x = x1 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                    if y < -1.0 or y > height or x < -1.0 or x > width:
                        continue
                    y, x = max(y, 0.0), max(x, 0.0)
                    yl, xl = int(y), int(x)
                    if yl >= height - 1:
                        yl = yh = height - 1
                        y = float(yl)
                    else:
                        yh = yl + 1
                    if xl >= width - 1:
                        xl = xh = width - 1
                        x = float(xl)
                    else:
                        xh = xl + 1
                    ly, lx = y - yl, x - xl
                    acc += (1 - ly) * (1 - lx) * img[:, yl, xl] + (1 - ly) * lx * img[:, yl, xh]
                    acc += ly * (1 - lx) * img[:, yh, xl] + ly * lx * img[:, yh, xh]
            out[:, ph, pw] = acc / max(grid_h * grid_w, 1)
    return out


@pytest.mark.parametrize(
    "box",
    [
        (3.2, 4.7, 17.9, 15.1),  # inside, one sample per bin
        (-6.0, -3.5, 9.0, 12.0),  # partly outside top-left (edge clamp and zero zones)
        (10.0, 8.0, 40.0, 33.0),  # partly outside bottom-right, several samples per bin
        (-20.0, -20.0, 60.0, 50.0),  # larger than the image
        (5.0, 5.0, 5.2, 5.1),  # degenerate: widened to 1 px
    ],
)
def test_roi_align_matches_torchvision_algorithm(box):
    rng = np.random.default_rng(0)
    img = rng.random((2, 20, 30))
    ours = roi_align(torch.tensor(img[None], dtype=torch.float32), torch.tensor([box], dtype=torch.float32), (7, 5), max_grid=16)
    ref = roi_align_loop(img, box, 7, 5)
    np.testing.assert_allclose(ours[0].numpy(), ref, atol=1e-5)


def test_rotmat_to_axis_angle_matches_scipy_including_near_pi():
    rots = Rotation.random(500, random_state=1)
    extra = Rotation.from_rotvec(np.array([[math.pi - 1e-4, 0, 0], [0, 0, math.pi], [1e-9, 0, 0], [0, 0, 0]]))
    mats = np.concatenate([rots.as_matrix(), extra.as_matrix()])
    ours = rotmat_to_axis_angle(torch.tensor(mats, dtype=torch.float64)).numpy()
    ref = Rotation.from_matrix(mats).as_rotvec()
    # at exactly pi the sign of the axis is arbitrary: compare rotations, not vectors
    same = np.linalg.norm(Rotation.from_rotvec(ours).inv().__mul__(Rotation.from_rotvec(ref)).as_rotvec(), axis=1)
    assert same.max() < 1e-6
    assert np.abs(ours[:500] - ref[:500]).max() < 1e-6


def test_rot6d_uses_interleaved_columns():
    r = Rotation.random(10, random_state=2).as_matrix()
    sixd = np.stack([r[:, 0, 0], r[:, 0, 1], r[:, 1, 0], r[:, 1, 1], r[:, 2, 0], r[:, 2, 1]], axis=1)
    np.testing.assert_allclose(rot6d_to_rotmat(torch.tensor(sixd)).numpy(), r, atol=1e-12)


def test_camera_translation_depth_range():
    t = camera_translation(torch.tensor([[0.1, -0.2, 0.0], [0.0, 0.0, 50.0]]))
    assert t[0, 0] == pytest.approx(0.1) and t[0, 1] == pytest.approx(-0.2)
    assert t[0, 2].item() == pytest.approx(56.3819 / 2, abs=1e-3)
    assert t[1, 2].item() == pytest.approx(56.3819, abs=1e-3)


def test_restore_bbox_square_and_extended():
    box = restore_bbox(torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.5]]), 1.0, 2.0)[0]
    w, h = box[2] - box[0], box[3] - box[1]
    assert w.item() == pytest.approx(64.0) and h.item() == pytest.approx(64.0)  # 1 unit = 32 px, x2
    assert ((box[0] + box[2]) / 2).item() == pytest.approx(96.0) and ((box[1] + box[3]) / 2).item() == pytest.approx(128.0)
