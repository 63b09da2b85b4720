"""Metric placement: robust torso depth from synthetic depth images with holes and outliers, ray-preserving rescale."""
from __future__ import annotations

import numpy as np
import pytest

from h4w_core.inference.depth import (
    DepthConfig,
    InvalidDepthImageError,
    box_pixels,
    depth_scale,
    polygon_pixels,
    rescale_to_depth,
    torso_depth,
)

H, W = 240, 320
TORSO = np.array([[140.0, 80.0], [190.0, 82.0], [186.0, 160.0], [144.0, 158.0]])  # shoulders, hips (x, y)


def _scene(person_m=2.4, wall_m=5.0, seed=0):
    """A wall with a person-shaped slab in front of it: the torso is a curved surface (±4 cm)
    with 1 cm sensor noise; 30 % of the torso pixels are holes, a forearm at 1.9 m covers a
    fifth of it,
    and a few flying pixels read absurd depths."""
    rng = np.random.default_rng(seed)
    depth = np.full((H, W), wall_m) + rng.normal(0.0, 0.01, (H, W))
    ys, xs = np.mgrid[0:H, 0:W]
    body = (xs >= 130) & (xs < 200) & (ys >= 60) & (ys < 230)
    depth[body] = person_m + 0.04 * ((xs[body] - 165) / 35.0) ** 2 + rng.normal(0.0, 0.01, body.sum())
    arm = (ys >= 100) & (ys < 125) & (xs >= 120) & (xs < 180)
    depth[arm] = person_m - 0.5
    holes = body & (rng.random((H, W)) < 0.3)
    depth[holes] = 0.0
    flying = body & (rng.random((H, W)) < 0.01)
    depth[flying] = rng.uniform(0.2, 12.0, flying.sum())
    return depth


def test_torso_depth_is_robust_to_holes_arm_and_flying_pixels():
    depth = _scene(person_m=2.4)
    pixels = polygon_pixels(TORSO, depth.shape)
    assert len(pixels) > 2000
    # the torso's front surface sits at 2.4-2.44 m; the arm, holes and flying pixels must not pull it
    est = torso_depth(depth.astype(np.float32), pixels)
    assert est == pytest.approx(2.41, abs=0.02)
    naive = np.nanmean(np.where(depth > 0, depth, np.nan)[pixels[:, 1], pixels[:, 0]])
    assert abs(naive - 2.41) > 0.05  # a plain mean would be off


def test_uint16_millimetres_and_float_nan_agree():
    depth = _scene(person_m=3.1, seed=1)
    mm = np.round(depth * 1000.0).astype(np.uint16)
    metres = depth.astype(np.float32)
    metres[metres == 0] = np.nan
    pixels = polygon_pixels(TORSO, depth.shape)
    a, b = torso_depth(mm, pixels), torso_depth(metres, pixels)
    assert a == pytest.approx(b, abs=2e-3) and a == pytest.approx(3.11, abs=0.02)
    # the same through the box helper, shrunk to stay on the torso
    box = torso_depth(mm, box_pixels((140, 80, 50, 80), mm.shape, shrink=0.1))
    assert box == pytest.approx(a, abs=0.02)


def test_too_few_valid_pixels_gives_none():
    depth = np.zeros((H, W), np.uint16)  # nothing measured (out of range, or a black shirt)
    pixels = polygon_pixels(TORSO, depth.shape)
    assert torso_depth(depth, pixels) is None
    depth[100:103, 160:163] = 2500  # 9 valid pixels
    assert torso_depth(depth, pixels) is None
    assert torso_depth(depth, pixels, DepthConfig(min_valid_pixels=5)) == pytest.approx(2.5)
    # torso off the image, or no points at all
    assert torso_depth(depth, np.array([[-50.0, -50.0], [-10.0, -40.0]])) is None
    assert torso_depth(depth, polygon_pixels(np.zeros((0, 2)), depth.shape)) is None
    # readings beyond the configured range are not depth
    far = np.full((H, W), 30.0, np.float32)
    assert torso_depth(far, pixels) is None


def test_bad_depth_images_are_rejected():
    pixels = np.array([[1, 1]])
    with pytest.raises(InvalidDepthImageError):
        torso_depth(np.zeros((H, W), np.int32), pixels)
    with pytest.raises(InvalidDepthImageError):
        torso_depth(np.zeros((H, W, 3), np.uint16), pixels)
    with pytest.raises(ValueError):
        DepthConfig(min_depth_m=5.0, max_depth_m=1.0)


def test_rescale_moves_the_person_along_camera_rays():
    """The network put the person at 4.0 m (pelvis z); the sensor says 2.4 m. After rescaling the
    pelvis is at 2.4 m and every vertex projects onto the same pixel as before."""
    rng = np.random.default_rng(5)
    fx, fy, cx, cy = 500.0, 500.0, 160.0, 120.0
    pelvis = np.array([0.3, 0.2, 4.0])
    verts = pelvis + rng.normal(0.0, 0.3, (500, 3))

    def project(p):
        return np.stack([fx * p[:, 0] / p[:, 2] + cx, fy * p[:, 1] / p[:, 2] + cy], axis=1)

    measured = torso_depth(_scene(person_m=2.4), polygon_pixels(TORSO, (H, W)))
    moved = rescale_to_depth(verts, estimated_depth=pelvis[2], measured_depth=measured)
    moved_pelvis = rescale_to_depth(pelvis, pelvis[2], measured)
    assert moved_pelvis[2] == pytest.approx(measured)
    np.testing.assert_allclose(project(moved), project(verts), atol=1e-9)
    assert depth_scale(4.0, 2.4) == pytest.approx(0.6)
    # metric size scales with the distance: a 2.5 m-assumed extent seen nearer is smaller
    assert np.ptp(moved[:, 1]) == pytest.approx(0.6 * np.ptp(verts[:, 1]), rel=0.01)
    with pytest.raises(ValueError):
        depth_scale(0.0, 2.0)
    with pytest.raises(ValueError):
        depth_scale(2.0, float("nan"))
