"""A coarse display mesh for viewers (RViz markers): fewer triangles over the original vertices.

``coarse_faces`` is computed once from the SMPL-X topology (template vertices and faces). Its
triangles index the ORIGINAL mesh's vertices, so each frame the coarse mesh simply takes its
corners from the full posed mesh: no second posing, no extra vertex arrays.

Method: vertex clustering. The template's bounding box is cut into cubic cells; inside a cell,
vertices joined by mesh edges within that cell form one cluster (so two surfaces that merely pass
through the same cell, neighbouring fingers say, stay apart). Each cluster is represented by its
original vertex nearest the cluster's centroid; every face's corners are replaced by their
representatives, and faces that collapse (two equal corners) or repeat another face's corners are
dropped. The cell size is searched (bisection on a log scale) for the finest grid whose mesh has
at most ``max_triangles`` triangles. Everything is deterministic: no random starts, ties broken by
vertex index, faces kept in the order of their first original face.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["coarse_faces"]

_SEARCH_STEPS = 40  # at most, bisecting log(cell size)
_SEARCH_RATIO = 1.0 + 1e-4  # stop once the finest cell that fits and the coarsest that does not are this close


def _check(vertices: np.ndarray, faces: np.ndarray, max_triangles: int) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.all(np.isfinite(vertices)):
        raise ValueError(f"vertices must be a finite (V, 3) array, got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and not np.issubdtype(faces.dtype, np.integer)):
        raise ValueError(f"faces must be an integer (F, 3) array, got {faces.dtype}{faces.shape}")
    faces = faces.astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"face indices must lie in [0, {len(vertices)})")
    if int(max_triangles) < 1:
        raise ValueError(f"max_triangles must be at least 1, got {max_triangles}")
    return vertices, faces


def _clean(faces: np.ndarray) -> np.ndarray:
    """Faces without collapsed triangles and without repeats of the same three corners (either
    winding), in the order of their first occurrence, each with its own winding."""
    a, b, c = faces.T
    faces = faces[(a != b) & (b != c) & (c != a)]
    if not len(faces):
        return faces.reshape(0, 3)
    _, first = np.unique(np.sort(faces, axis=1), axis=0, return_index=True)
    return faces[np.sort(first)]


def _clusters(vertices: np.ndarray, edges: np.ndarray, origin: np.ndarray, cell: float) -> np.ndarray:
    """Cluster label per vertex: (grid cell, connected piece of the mesh inside that cell)."""
    cells = np.floor((vertices - origin) / cell).astype(np.int64)
    dims = cells.max(axis=0) + 1
    if float(np.prod(dims.astype(np.float64))) < 2.0**62:  # one integer per cell: a 1-D unique
        cell_of = np.unique((cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2], return_inverse=True)[1]
    else:
        cell_of = np.unique(cells, axis=0, return_inverse=True)[1]
    cell_of = cell_of.reshape(-1)
    inside = edges[cell_of[edges[:, 0]] == cell_of[edges[:, 1]]]
    n = len(vertices)
    graph = coo_matrix((np.ones(len(inside), dtype=np.int8), (inside[:, 0], inside[:, 1])), shape=(n, n))
    # components never span two cells (only same-cell edges), so a component is a (cell, piece) pair
    _, labels = connected_components(graph, directed=False)
    return labels


def _representatives(vertices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per vertex, the original vertex of its cluster nearest the cluster centroid (lowest index on ties)."""
    count = np.bincount(labels).astype(np.float64)
    centroid = np.stack([np.bincount(labels, weights=vertices[:, k]) for k in range(3)], axis=1) / count[:, None]
    distance = np.einsum("ij,ij->i", vertices - centroid[labels], vertices - centroid[labels])
    order = np.lexsort((np.arange(len(vertices)), distance, labels))  # by cluster, then distance, then index
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order[1:]] != labels[order[:-1]]
    best = np.empty(count.size, dtype=np.int64)
    best[labels[order[first]]] = order[first]
    return best[labels]


def _collapse(vertices: np.ndarray, faces: np.ndarray, edges: np.ndarray, origin: np.ndarray, cell: float) -> np.ndarray:
    return _clean(_representatives(vertices, _clusters(vertices, edges, origin, cell))[faces])


def coarse_faces(vertices_template: np.ndarray, faces: np.ndarray, max_triangles: int = 3000) -> np.ndarray:
    """A display mesh of at most `max_triangles` triangles over the original mesh's vertices.

    vertices_template (V, 3): the mesh at rest (SMPL-X ``v_template``), any unit; faces (F, 3): its
    triangles. Returns (F', 3) int64 indices into the same V vertices, F' <= max_triangles, with no
    collapsed or repeated triangles, windings as in the original faces. Deterministic.
    """
    vertices, faces = _check(vertices_template, faces, max_triangles)
    max_triangles = int(max_triangles)
    full = _clean(faces)
    if len(full) <= max_triangles:
        return full
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    origin = vertices.min(axis=0)
    extent = float(np.max(vertices.max(axis=0) - origin))
    lengths = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    positive = lengths[lengths > 0]
    # fine end: a cell below the shortest edge keeps (nearly) every vertex apart, too many triangles;
    # coarse end: one cell over everything leaves one cluster per connected piece, no triangle at all
    lo = float(positive.min()) / 2.0 if positive.size else extent / 2.0**20
    hi = 2.0 * extent if extent > 0 else 1.0
    best = _collapse(vertices, faces, edges, origin, hi)
    for _ in range(_SEARCH_STEPS):
        mid = float(np.sqrt(lo * hi))
        if hi <= lo * _SEARCH_RATIO or not lo < mid < hi:
            break
        candidate = _collapse(vertices, faces, edges, origin, mid)
        if len(candidate) <= max_triangles:
            hi, best = mid, candidate
        else:
            lo = mid
    return best
