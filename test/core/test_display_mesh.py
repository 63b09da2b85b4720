"""coarse_faces: a small display mesh over the original SMPL-X vertices (stand-in SMPL-X topology)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial import cKDTree

import h4w_core.data
from h4w_core.io.display_mesh import coarse_faces


@pytest.fixture(scope="module")
def topology(standin_estimator):
    template = standin_estimator.body_model.layer.v_template.detach().cpu().numpy()
    return template, np.asarray(standin_estimator.faces)


@pytest.fixture(scope="module")
def coarse(topology):
    return coarse_faces(*topology)


@pytest.fixture(scope="module")
def posed(standin_estimator):
    image = cv2.imread(str(h4w_core.data.SAMPLE_PHOTO))
    (result,) = standin_estimator.predict(image, [(20, 10, 360, 490)], "bgr")
    return np.asarray(result.vertices, dtype=np.float64)


def _assert_valid(faces: np.ndarray, vertex_count: int, max_triangles: int) -> None:
    assert faces.ndim == 2 and faces.shape[1] == 3 and np.issubdtype(faces.dtype, np.integer)
    assert 0 < len(faces) <= max_triangles
    assert faces.min() >= 0 and faces.max() < vertex_count  # indices of the ORIGINAL vertices
    a, b, c = faces.T
    assert np.all((a != b) & (b != c) & (c != a)), "collapsed triangle"
    assert len(np.unique(np.sort(faces, axis=1), axis=0)) == len(faces), "repeated triangle"


@pytest.mark.parametrize("max_triangles", [3000, 1000])
def test_at_most_max_triangles_valid_and_not_far_below(topology, max_triangles):
    template, faces = topology
    assert len(faces) > 3000  # the full mesh needs reducing
    out = coarse_faces(template, faces, max_triangles)
    _assert_valid(out, len(template), max_triangles)
    assert len(out) >= max_triangles // 2, f"only {len(out)} of {max_triangles} triangles used"


def test_default_is_3000(topology, coarse):
    assert np.array_equal(coarse, coarse_faces(*topology, max_triangles=3000))
    _assert_valid(coarse, len(topology[0]), 3000)


def test_deterministic(topology, coarse):
    template, faces = topology
    again = coarse_faces(template.copy(), faces.copy())
    assert again.dtype == coarse.dtype and np.array_equal(again, coarse)
    # the input's dtypes do not change the result
    assert np.array_equal(coarse_faces(template.astype(np.float64), faces.astype(np.int32)), coarse)


@pytest.mark.parametrize("which", ["template", "posed"])
def test_coarse_surface_stays_close_to_the_full_one(topology, coarse, posed, which):
    """Sampled full-mesh vertices lie near a coarse vertex, coarse triangles near the full surface,
    both on the template the mesh was derived from and on a posed mesh taking the same indices."""
    vertices = topology[0].astype(np.float64) if which == "template" else posed
    used = np.unique(coarse)
    assert len(used) <= len(vertices)
    samples = vertices[::7]
    to_coarse, _ = cKDTree(vertices[used]).query(samples)
    assert to_coarse.max() < 0.06 and to_coarse.mean() < 0.02, (to_coarse.max(), to_coarse.mean())
    centres = vertices[coarse].mean(axis=1)
    to_full, _ = cKDTree(vertices).query(centres)
    assert to_full.max() < 0.04 and to_full.mean() < 0.015, (to_full.max(), to_full.mean())


def test_windings_follow_the_original_faces(topology, coarse):
    """A coarse triangle faces the way the original surface around its corners faces."""
    template, faces = topology
    v = template.astype(np.float64)
    face_normals = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    vertex_normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(vertex_normals, faces[:, k], face_normals)
    coarse_normals = np.cross(v[coarse[:, 1]] - v[coarse[:, 0]], v[coarse[:, 2]] - v[coarse[:, 0]])
    agree = np.einsum("ij,ij->i", coarse_normals, vertex_normals[coarse].sum(axis=1)) > 0
    assert agree.mean() > 0.9, agree.mean()


def test_small_meshes_and_tiny_budgets(topology):
    template, faces = topology
    few = faces[:50]
    assert np.array_equal(coarse_faces(template, few, 3000), few)  # already small: kept as it is
    doubled = np.concatenate([few, few[:, ::-1], few[:, [0, 0, 1]]])  # repeats, reversed repeats, collapsed
    assert np.array_equal(coarse_faces(template, doubled, 3000), few)
    for budget in (1, 10):
        out = coarse_faces(template, faces, budget)
        assert out.shape[1] == 3 and len(out) <= budget


@pytest.mark.parametrize(
    "vertices, faces, max_triangles",
    [
        (np.zeros((4, 2)), np.array([[0, 1, 2]]), 10),
        (np.full((4, 3), np.nan), np.array([[0, 1, 2]]), 10),
        (np.zeros((4, 3)), np.array([[0, 1, 4]]), 10),
        (np.zeros((4, 3)), np.array([[0.0, 1.0, 2.0]]), 10),
        (np.zeros((4, 3)), np.array([[0, 1, 2]]), 0),
    ],
)
def test_bad_input_is_refused(vertices, faces, max_triangles):
    with pytest.raises(ValueError):
        coarse_faces(vertices, faces, max_triangles)
