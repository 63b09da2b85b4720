"""Metric placement of a whole estimated person from a synthetic registered depth image."""
from __future__ import annotations

import cv2
import numpy as np

from h4w_core.data import SAMPLE_PHOTO
from h4w_core.inference.camera import Intrinsics
from h4w_core.inference.depth import place_person_with_depth

PHOTO = str(SAMPLE_PHOTO)


def render_depth(vertices: np.ndarray, faces: np.ndarray, k: Intrinsics, shape) -> np.ndarray:
    """A z-buffer of the mesh (metres, 0 where empty): a depth camera looking at this person."""
    depth = np.zeros(shape, np.float32)
    uv = np.stack((vertices[:, 0] / vertices[:, 2] * k.fx + k.cx, vertices[:, 1] / vertices[:, 2] * k.fy + k.cy), 1)
    z = vertices[faces].mean(axis=1)[:, 2]
    for f in np.argsort(-z):  # painter's order: the nearest surface is drawn last
        cv2.fillConvexPoly(depth, np.round(uv[faces[f]]).astype(np.int32), float(z[f]))
    return depth


def test_person_moves_to_the_measured_depth_and_keeps_its_pixels(standin_estimator):
    k = Intrinsics(500.0, 500.0, 256.0, 256.0)
    image = cv2.imread(PHOTO)
    (person,) = standin_estimator.predict(image, [(20, 10, 360, 490)], "bgr", intrinsics=k)
    truth = person.vertices * 0.6  # the real person is nearer than the network's 2.5 m prior says
    depth = render_depth(truth.astype(np.float64), standin_estimator.faces, k, image.shape[:2])
    depth[::7, ::5] = 0  # holes
    before_uv = person.vertices[:, :2] / person.vertices[:, 2:]
    original = person.vertices.copy()
    placed = place_person_with_depth(person, depth, k)
    scale = placed.track.depth_scale
    assert scale is not None and abs(scale - 0.6) < 0.03
    np.testing.assert_allclose(placed.vertices, truth, rtol=0.05)
    np.testing.assert_allclose(placed.vertices[:, :2] / placed.vertices[:, 2:], before_uv, atol=1e-5)
    assert person.track.depth_scale is None and np.array_equal(person.vertices, original)  # the input is left as it was


def test_no_valid_depth_leaves_the_person_unchanged(standin_estimator):
    k = Intrinsics(500.0, 500.0, 256.0, 256.0)
    (person,) = standin_estimator.predict(cv2.imread(PHOTO), [(20, 10, 360, 490)], "bgr", intrinsics=k)
    placed = place_person_with_depth(person, np.zeros((512, 512), np.uint16), k)
    assert placed.track.depth_scale is None
    np.testing.assert_array_equal(placed.vertices, person.vertices)
