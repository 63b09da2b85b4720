"""Human-shaped stand-in for the licence-restricted SMPL-X model file (SMPLX_NEUTRAL.npz).

The real model file may not be redistributed, so it is never in the repository or in CI. Tests and
the demo still need a body model that ``smplx.create(..., ext='npz')`` loads and whose outputs look
like a person. This module builds one deterministically from simple primitives (numpy only, no
files read): a trunk/neck/head surface of revolution with a face, arm tubes ending in a palm with
four fingers, separate thumbs, leg tubes and feet. Every array smplx reads has the real SMPL-X
shape; the 55 joints, the 21 keypoint vertex ids smplx uses (nose, eyes, ears, toes, heels,
fingertips) and the face landmarks sit at anatomically sensible places in the SMPL-X rest frame
(metres, y up, x toward the body's left, z forward). It is NOT the SMPL-X body: vertex ids other
than the keypoints mean nothing, and shape/expression/pose blend shapes are simple hand-made fields.
"""
from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)

NUM_VERTICES = 10475
NUM_FACES = 20908
NUM_JOINTS = 55
NUM_SHAPE_DIRS = 400  # 300 shape + 100 expression columns (SMPL-X v1.1 layout)
EXPRESSION_OFFSET = 300  # smplx takes expression directions from shapedirs[..., 300:310]
NUM_POSE_BASIS = (NUM_JOINTS - 1) * 9
NUM_STATIC_LANDMARKS = 51
NUM_CONTOUR_LANDMARKS = 17
NUM_CONTOUR_BINS = 79

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "jaw", "left_eye", "right_eye",
    *(f"left_{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)),
    *(f"right_{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)),
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}
_J = JOINT_INDEX

# Vertex ids smplx turns into the extra joints 55..75 (its VERTEX_IDS['smplx'] table).
KEYPOINT_VERTEX_IDS: dict[str, int] = {
    "nose": 9120, "reye": 9929, "leye": 9448, "rear": 616, "lear": 6,
    "LBigToe": 5770, "LSmallToe": 5780, "LHeel": 8846,
    "RBigToe": 8463, "RSmallToe": 8474, "RHeel": 8635,
    "lthumb": 5361, "lindex": 4933, "lmiddle": 5058, "lring": 5169, "lpinky": 5286,
    "rthumb": 8079, "rindex": 7669, "rmiddle": 7794, "rring": 7905, "rpinky": 8022,
}

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")  # SMPL-X joint order inside a hand
_PALM_FINGERS = ("index", "middle", "ring", "pinky")  # order across the palm, thumb side first
_FLOOR_Y = -1.325
_TOP_Y = 0.38
_HEAD_CENTRE = np.array([0.0, 0.262, 0.012])
_HEAD_RADII = np.array([0.077, 0.118, 0.098])
_EYE_Y, _EYE_X = 0.283, 0.032
_NOSE_Y = 0.249
_MOUTH_Y = 0.197
_TRUNK_AROUND = 64


def parents() -> list[int]:
    """SMPL-X kinematic tree: parent of each of the 55 joints (-1 for the pelvis)."""
    par = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15]
    for wrist in (_J["left_wrist"], _J["right_wrist"]):
        for _ in range(5):
            base = len(par)
            par += [wrist, base, base + 1]
    return par


def _mirror_joint_index() -> np.ndarray:
    """Index map swapping each left joint with its right twin (identity on the midline)."""
    out = np.arange(NUM_JOINTS)
    for i, name in enumerate(JOINT_NAMES):
        for a, b in (("left_", "right_"), ("right_", "left_")):
            if name.startswith(a):
                out[i] = _J[b + name[len(a):]]
    return out


MIRROR_JOINTS = _mirror_joint_index()


# ----------------------------------------------------------------------------------------------
# small numeric helpers


def _smoothstep(x: np.ndarray | float) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _pchip(x: np.ndarray, y: np.ndarray, xq: np.ndarray) -> np.ndarray:
    """Monotone piecewise-cubic (Fritsch-Carlson) interpolation of y (K, D) at xq (N,) -> (N, D)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float).reshape(len(x), -1)
    h = np.diff(x)
    delta = np.diff(y, axis=0) / h[:, None]
    d = np.zeros_like(y)
    d[0], d[-1] = delta[0], delta[-1]
    if len(x) > 2:
        w1 = (2 * h[1:] + h[:-1])[:, None]
        w2 = (h[1:] + 2 * h[:-1])[:, None]
        same = delta[:-1] * delta[1:] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            harm = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
        d[1:-1] = np.where(same, harm, 0.0)
    idx = np.clip(np.searchsorted(x, xq, side="right") - 1, 0, len(x) - 2)
    hh = h[idx][:, None]
    t = ((np.asarray(xq, float) - x[idx]) / h[idx])[:, None]
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    return h00 * y[idx] + h10 * hh * d[idx] + h01 * y[idx + 1] + h11 * hh * d[idx + 1]


def _place(metric: np.ndarray, count: int, include_end: bool) -> np.ndarray:
    """Fractions along a densely sampled curve: count samples evenly spaced in cumulative metric.

    The start (fraction 0) is excluded; the end is included only when include_end.
    """
    cum = np.concatenate([[0.0], np.cumsum(metric)])
    denom = count if include_end else count + 1
    targets = cum[-1] * np.arange(1, count + 1) / denom
    return np.interp(targets, cum, np.linspace(0.0, 1.0, len(cum)))


def _chain_weights(s: np.ndarray, breaks: list[tuple[float, float]], bones: list[int]) -> np.ndarray:
    """LBS weights along a chain: bones[i] owns s between breaks i-1 and i, blended over +-half width."""
    alpha = [_smoothstep((s - (b - h)) / (2 * h)) for b, h in breaks]
    w = np.zeros((len(s), NUM_JOINTS))
    prev = np.ones_like(s)
    for bone, a in zip(bones, alpha + [np.zeros_like(s)]):
        w[:, bone] += np.clip(prev - a, 0.0, None)
        prev = a
    return w / w.sum(1, keepdims=True)


def _blend(w: np.ndarray, amount: np.ndarray, joint: np.ndarray | int) -> np.ndarray:
    """Move a fraction `amount` of each row's weight to `joint` (per-row joint ids allowed)."""
    out = w * (1.0 - amount)[:, None]
    out[np.arange(len(w)), joint] += amount
    return out


def _band(ring_a: np.ndarray, ring_b: np.ndarray) -> np.ndarray:
    """Two triangles per quad between two rings of equal size (ring a -> ring b along the tube)."""
    a0, a1 = ring_a, np.roll(ring_a, -1)
    b0, b1 = ring_b, np.roll(ring_b, -1)
    return np.stack([np.stack([a0, a1, b1], 1), np.stack([a0, b1, b0], 1)], 1).reshape(-1, 3)


def _fan(pole: int, ring: np.ndarray, at_start: bool) -> np.ndarray:
    r1 = np.roll(ring, -1)
    p = np.full_like(ring, pole)
    return np.stack([p, r1, ring], 1) if at_start else np.stack([p, ring, r1], 1)


@dataclass
class _Tube:
    """Centre line, frames and radii of a swept tube (R rings)."""

    centres: np.ndarray  # (R, 3)
    u: np.ndarray  # (R, 3) unit, toward `ref`
    v: np.ndarray  # (R, 3) unit, tangent x u
    radii: np.ndarray  # (R, 2) along u, along v
    s: np.ndarray  # (R,) arc length from the start
    start: np.ndarray  # (3,) pole / start point
    end: np.ndarray  # (3,) pole / end point
    knot_s: np.ndarray  # (K,) arc length at each knot


def _sweep(knots, radii, count: int, ref, spacing=None, round_start=True, round_end=True) -> _Tube:
    """Sample `count` rings along a smooth curve through knots (K,3) with radii (K,2).

    Ring density follows 1/spacing (K,) and the curve length in (position, radius) space, so rounded
    ends (radius shrinking to 0 over one end radius) get their share of rings.
    """
    knots = np.asarray(knots, float)
    radii = np.asarray(radii, float)
    spacing = np.ones(len(knots)) if spacing is None else np.asarray(spacing, float)
    tau = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(knots, axis=0), axis=1))])
    dense = np.linspace(0.0, tau[-1], 1200)
    pts = _pchip(tau, knots, dense)
    rad = _pchip(tau, radii, dense)
    sp = _pchip(tau, spacing, dense)[:, 0]
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    mult = np.ones_like(arc)
    for flag, dist, r_end in ((round_start, arc, radii[0].max()), (round_end, arc[-1] - arc, radii[-1].max())):
        if flag:
            x = np.clip(dist / r_end, 0.0, 1.0)
            mult *= np.sqrt(np.clip(1.0 - (1.0 - x) ** 2, 0.0, 1.0))
    rad = rad * mult[:, None]
    metric = np.sqrt(seg**2 + np.max(np.diff(rad, axis=0) ** 2, axis=1)) / (0.5 * (sp[1:] + sp[:-1]))
    frac = _place(metric, count, include_end=not round_end)
    pos = frac * tau[-1]
    centres = _pchip(tau, knots, pos)
    eps = 1e-4 * tau[-1]
    ahead = _pchip(tau, knots, np.minimum(pos + eps, tau[-1]))
    tangent = _normalize(ahead - _pchip(tau, knots, np.maximum(pos - eps, 0.0)))
    ref = np.asarray(ref, float)
    u = _normalize(ref - (tangent @ ref)[:, None] * tangent)
    v = np.cross(tangent, u)
    ring_r = np.stack([np.interp(pos, dense, rad[:, 0]), np.interp(pos, dense, rad[:, 1])], 1)
    s = np.interp(pos, dense, arc)
    knot_s = np.interp(tau, dense, arc)
    return _Tube(centres, u, v, ring_r, s, knots[0], knots[-1], knot_s)


@dataclass
class _Part:
    """One connected surface: vertices, triangles (local ids), skinning weights and bookkeeping."""

    verts: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    axis: np.ndarray  # (n, 3) centre-line point each vertex was swept around (for girth)
    girth: np.ndarray  # (n,) relative girth change per unit of betas[1]
    named: dict[str, int] = field(default_factory=dict)  # local ids of keypoint vertices

    def orient_outward(self) -> bool:
        """Flip the winding when the signed volume is negative; True if flipped."""
        v = self.verts[self.faces]
        vol = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum()
        if vol < 0:
            self.faces = self.faces[:, [0, 2, 1]]
            return True
        return False

    def mirrored(self) -> _Part:
        """The right-side twin of a left-side part (x negated, winding and joint ids swapped)."""
        flip = np.array([-1.0, 1.0, 1.0])
        named = {("R" if k[0] == "L" else "r") + k[1:]: i for k, i in self.named.items()}
        return _Part(self.verts * flip, self.faces[:, [0, 2, 1]].copy(), self.weights[:, MIRROR_JOINTS],
                     self.axis * flip, self.girth.copy(), named)


# ----------------------------------------------------------------------------------------------
# skeleton


def _hand_layout() -> dict[str, dict[str, np.ndarray]]:
    """Left-hand geometry relative to the left wrist: finger base centre, joints, tip, direction."""
    palm_z = 0.002  # palm centre line, relative to the wrist
    width = 0.045  # half width of the palm at the knuckles
    base_x = {"index": 0.090, "middle": 0.092, "ring": 0.088, "pinky": 0.080}
    spread = {"index": 0.08, "middle": 0.0, "ring": -0.06, "pinky": -0.14}
    lengths = {"index": (0.040, 0.024, 0.022), "middle": (0.044, 0.028, 0.024),
               "ring": (0.041, 0.027, 0.023), "pinky": (0.032, 0.021, 0.020)}
    out: dict[str, dict[str, np.ndarray]] = {}
    for i, name in enumerate(_PALM_FINGERS):
        v_centre = 1.0 - 2.0 * (4 * i + 1.5) / 15.0
        base = np.array([base_x[name], -0.002, palm_z + width * v_centre])
        direction = _normalize(np.array([1.0, -0.02, spread[name]]))
        mcp = base - np.array([0.005, 0.0, 0.0])
        pip = mcp + lengths[name][0] * direction
        dip = pip + lengths[name][1] * direction
        tip = dip + lengths[name][2] * direction
        out[name] = {"base": base, "joints": np.stack([mcp, pip, dip]), "tip": tip, "dir": direction}
    d1 = _normalize(np.array([0.55, -0.22, 0.80]))
    d2 = _normalize(np.array([0.70, -0.12, 0.70]))
    t1 = np.array([0.025, -0.012, 0.018])
    t2 = t1 + 0.042 * d1
    t3 = t2 + 0.032 * d2
    out["thumb"] = {"base": t1 - 0.018 * d1, "joints": np.stack([t1, t2, t3]), "tip": t3 + 0.027 * d2, "dir": d2,
                    "dir1": d1}
    out["palm"] = {"z": np.array(palm_z), "width": np.array(width)}
    return out


_LEFT_BODY_JOINTS: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, -0.352, 0.008),
    "left_hip": (0.065, -0.445, -0.005),
    "spine1": (0.0, -0.235, -0.012),
    "left_knee": (0.090, -0.820, 0.005),
    "spine2": (0.0, -0.100, -0.015),
    "left_ankle": (0.085, -1.225, -0.045),
    "spine3": (0.0, -0.045, -0.012),
    "left_foot": (0.090, -1.298, 0.095),
    "neck": (0.0, 0.110, -0.025),
    "left_collar": (0.070, 0.045, -0.015),
    "head": (0.0, 0.228, -0.005),
    "left_shoulder": (0.180, 0.066, -0.025),
    "left_elbow": (0.440, 0.045, -0.040),
    "left_wrist": (0.690, 0.035, -0.035),
    "jaw": (0.0, 0.232, 0.020),
    "left_eye": (_EYE_X, _EYE_Y, 0.083),
}


def joint_positions() -> np.ndarray:
    """The 55 rest-pose joint positions (metres) the stand-in's J_regressor reproduces."""
    joints = np.full((NUM_JOINTS, 3), np.nan)
    for name, pos in _LEFT_BODY_JOINTS.items():
        joints[_J[name]] = pos
    hand = _hand_layout()
    wrist = joints[_J["left_wrist"]]
    for finger in _FINGERS:
        for k in range(3):
            joints[_J[f"left_{finger}{k + 1}"]] = wrist + hand[finger]["joints"][k]
    for i in range(NUM_JOINTS):
        if np.isnan(joints[i, 0]):
            joints[i] = joints[MIRROR_JOINTS[i]] * np.array([-1.0, 1.0, 1.0])
    return joints


# ----------------------------------------------------------------------------------------------
# trunk: torso, neck and head as one surface of revolution-like sweep along y

# y, half width (x), front z, back z
_TORSO_TABLE = np.array([
    [-0.535, 0.000, 0.000, 0.000],
    [-0.525, 0.060, 0.045, -0.050],
    [-0.505, 0.115, 0.070, -0.085],
    [-0.475, 0.150, 0.085, -0.105],
    [-0.440, 0.166, 0.088, -0.115],
    [-0.400, 0.170, 0.092, -0.112],
    [-0.350, 0.165, 0.095, -0.100],
    [-0.280, 0.150, 0.095, -0.080],
    [-0.220, 0.140, 0.095, -0.070],
    [-0.150, 0.145, 0.095, -0.080],
    [-0.080, 0.155, 0.105, -0.085],
    [0.000, 0.165, 0.105, -0.095],
    [0.050, 0.170, 0.090, -0.100],
    [0.085, 0.160, 0.065, -0.095],
    [0.105, 0.120, 0.050, -0.090],
    [0.120, 0.075, 0.040, -0.082],
    [0.140, 0.058, 0.036, -0.075],
    [0.170, 0.055, 0.040, -0.068],
    [0.200, 0.056, 0.045, -0.066],
    [0.240, 0.056, 0.045, -0.062],
    [0.280, 0.040, 0.030, -0.040],
    [0.320, 0.000, 0.012, 0.012],
    [_TOP_Y, 0.000, 0.012, 0.012],
])


def _trunk_profile(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Half width, front z, back z and superellipse exponent of the trunk cross-section at heights y."""
    tab = _pchip(_TORSO_TABLE[:, 0], _TORSO_TABLE[:, 1:], np.clip(y, _TORSO_TABLE[0, 0], _TORSO_TABLE[-1, 0]))
    a, front, back = np.clip(tab[:, 0], 0.0, None), tab[:, 1], tab[:, 2]
    cx, cy, cz = _HEAD_CENTRE
    rx, ry, rz = _HEAD_RADII
    s = np.sqrt(np.clip(1.0 - ((y - cy) / ry) ** 2, 0.0, None))
    jaw_taper = 1.0 - 0.25 * np.clip((cy - y) / ry, 0.0, 1.0) ** 2
    ha, hf, hb = rx * s * jaw_taper, rz * s, rz * s
    head = y >= 0.14
    p = 6.0
    a = np.where(head, (a**p + ha**p) ** (1 / p), a)
    front = np.where(head, cz + (np.clip(front - cz, 0.0, None) ** p + hf**p) ** (1 / p), front)
    back = np.where(head, cz - (np.clip(cz - back, 0.0, None) ** p + hb**p) ** (1 / p), back)
    n = 2.4 - 0.4 * _smoothstep((y - 0.10) / 0.04)
    return a, front, back, n


def _trunk_spacing(y: np.ndarray) -> np.ndarray:
    return 0.024 - 0.012 * _smoothstep((y - 0.0) / 0.07) - 0.0035 * _smoothstep((y - 0.13) / 0.03)


def _face_displacement(p: np.ndarray) -> np.ndarray:
    """Nose, eye sockets, brows, lips, chin and ears, as offsets of trunk points (n, 3)."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax = np.abs(x)
    head = _smoothstep((y - 0.15) / 0.01)
    front = _smoothstep((z - 0.03) / 0.03) * head
    g = np.where(y < _NOSE_Y, np.exp(-(((y - _NOSE_Y) / 0.007) ** 2)), np.exp(-(((y - _NOSE_Y) / 0.03) ** 2)))
    dz = 0.017 * np.exp(-((x / 0.009) ** 2)) * g
    dz += 0.006 * np.exp(-((x / 0.016) ** 2) - ((y - 0.240) / 0.008) ** 2)
    dz -= 0.004 * np.exp(-(((ax - _EYE_X) / 0.012) ** 2) - ((y - _EYE_Y) / 0.009) ** 2)
    dz += 0.004 * np.exp(-(((y - 0.303) / 0.008) ** 2) - (x / 0.06) ** 4)
    dz += 0.004 * np.exp(-((x / 0.022) ** 2) - ((y - _MOUTH_Y) / 0.012) ** 2)
    dz += 0.004 * np.exp(-((x / 0.02) ** 2) - ((y - 0.165) / 0.012) ** 2)
    ear = 0.014 * np.exp(-(((y - 0.258) / 0.022) ** 2) - ((z + 0.005) / 0.014) ** 2) * _smoothstep((ax - 0.04) / 0.02)
    out = np.zeros_like(p)
    out[:, 0] = np.sign(x) * ear * head
    out[:, 2] = dz * front
    return out


@dataclass
class _TrunkGrid:
    """What landmark placement needs to know about the trunk grid."""

    ring_y: np.ndarray  # (R,)
    quads: dict[tuple[int, int], list[tuple[int, tuple[int, int, int], np.ndarray]]]
    removed: set[tuple[int, int]]


def _build_trunk(n_rings: int, n_pad: int) -> tuple[_Part, _TrunkGrid]:
    A = _TRUNK_AROUND
    dense_y = np.linspace(_TORSO_TABLE[0, 0], _TOP_Y, 3000)
    a, f, b, _ = _trunk_profile(dense_y)
    d = lambda arr: np.diff(arr) ** 2  # noqa: E731
    metric = np.sqrt(d(dense_y) + np.maximum(d(a), 0.5 * (d(f) + d(b))))
    metric /= _trunk_spacing(0.5 * (dense_y[1:] + dense_y[:-1]))
    ring_y = _TORSO_TABLE[0, 0] + _place(metric, n_rings, include_end=False) * (_TOP_Y - _TORSO_TABLE[0, 0])
    a, f, b, n = _trunk_profile(ring_y)
    zc, depth = 0.5 * (f + b), 0.5 * (f - b)
    theta = 2 * np.pi * (np.arange(A) + 0.5) / A
    st, ct = np.sin(theta), np.cos(theta)
    e = (2.0 / n)[:, None]
    x = a[:, None] * np.sign(st) * np.abs(st) ** e
    z = zc[:, None] + depth[:, None] * np.sign(ct) * np.abs(ct) ** e
    ring_pts = np.stack([x, np.broadcast_to(ring_y[:, None], x.shape), z], -1)
    verts = [ring_pts.reshape(-1, 3)]
    axis = [np.repeat(np.stack([np.zeros_like(ring_y), ring_y, zc], 1), A, axis=0)]
    bottom, top = n_rings * A, n_rings * A + 1
    bot_y, top_y = _TORSO_TABLE[0, 0], _TOP_Y
    _, fb, bb, _ = _trunk_profile(np.array([bot_y, top_y]))
    verts.append(np.array([[0.0, bot_y, 0.5 * (fb[0] + bb[0])], [0.0, top_y, 0.5 * (fb[1] + bb[1])]]))
    axis.append(np.array([axis[0][0], axis[0][-1]]))
    ring = lambda i: np.arange(A) + i * A  # noqa: E731

    quad_param = {"a": (0.0, 0.0), "b": (1.0, 0.0), "c": (1.0, 1.0), "d": (0.0, 1.0), "n": (0.5, 0.5)}
    nose_ring = int(np.searchsorted(ring_y, _NOSE_Y) - 1)
    mouth_ring = int(np.searchsorted(ring_y, _MOUTH_Y) - 1)
    mouth = {(mouth_ring, A - 2), (mouth_ring, A - 1), (mouth_ring, 0)}
    pad_rings = np.unique(np.searchsorted(ring_y, np.linspace(-0.30, 0.0, max(n_pad, 1))) - 1)[:n_pad]
    if len(pad_rings) < n_pad:
        raise ValueError(f"cannot place {n_pad} padding vertices on the trunk")
    split = {(nose_ring, A - 1): "nose", **{(int(r), A // 2 - 1): f"pad{i}" for i, r in enumerate(pad_rings)}}

    faces: list[tuple[int, int, int]] = []
    quads: dict[tuple[int, int], list[tuple[int, tuple[int, int, int], np.ndarray]]] = {}
    named: dict[str, int] = {}
    next_vertex = n_rings * A + 2
    extra: list[np.ndarray] = []
    for i in range(n_rings - 1):
        for k in range(A):
            ids = {"a": i * A + k, "b": i * A + (k + 1) % A, "c": (i + 1) * A + (k + 1) % A, "d": (i + 1) * A + k}
            if (i, k) in mouth:
                continue
            if (i, k) in split:
                ids["n"] = next_vertex
                named[split[(i, k)]] = next_vertex
                extra.append(ring_pts.reshape(-1, 3)[[ids["a"], ids["b"], ids["c"], ids["d"]]].mean(0))
                axis.append(axis[0][ids["a"]][None])
                next_vertex += 1
                tris = (("a", "b", "n"), ("b", "c", "n"), ("c", "d", "n"), ("d", "a", "n"))
            else:
                tris = (("a", "b", "c"), ("a", "c", "d"))
            quads[(i, k)] = []
            for tri in tris:
                quads[(i, k)].append((len(faces), tuple(ids[t] for t in tri), np.array([quad_param[t] for t in tri])))
                faces.append(tuple(ids[t] for t in tri))
    caps = [_fan(bottom, ring(0), at_start=True), _fan(top, ring(n_rings - 1), at_start=False)]
    faces_arr = np.concatenate([np.array(faces, dtype=np.int64)] + caps)
    verts.append(np.array(extra).reshape(-1, 3))
    verts_arr = np.concatenate(verts)
    verts_arr = verts_arr + _face_displacement(verts_arr)
    verts_arr[named["nose"], 2] += 0.004  # the tip is the most forward point of the nose
    axis_arr = np.concatenate(axis)

    # keypoint vertices: eyes and ears are the grid vertices closest to where they belong
    for side, sgn in (("l", 1.0), ("r", -1.0)):
        eye = np.array([sgn * _EYE_X, _EYE_Y, 0.2])
        cand = np.where((verts_arr[:, 2] > 0.05) & (np.abs(verts_arr[:, 1] - _EYE_Y) < 0.02))[0]
        named[f"{side}eye"] = int(cand[np.argmin(np.linalg.norm(verts_arr[cand, :2] - eye[:2], axis=1))])
        ear_y = 0.258
        cand = np.where(np.abs(verts_arr[:, 1] - ear_y) < 0.012)[0]
        named[f"{side}ear"] = int(cand[np.argmax(sgn * verts_arr[cand, 0] - 2.0 * np.abs(verts_arr[cand, 2] + 0.005))])

    weights = _trunk_weights(verts_arr, verts_arr[[named["leye"], named["reye"]]])
    girth = 0.07 * (1.0 - _smoothstep((verts_arr[:, 1] - 0.10) / 0.05)) + 0.015
    part = _Part(verts_arr, faces_arr, weights, axis_arr, girth, named)
    part.orient_outward()
    return part, _TrunkGrid(ring_y, quads, mouth)


def _trunk_weights(p: np.ndarray, eye_points: np.ndarray) -> np.ndarray:
    joints = joint_positions()
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ax = np.abs(x)
    # neck -> head boundary runs under the chin in front and at the skull base behind
    head_break = 0.225 - 0.08 * _smoothstep((z + 0.02) / 0.06)
    y_eff = y + (joints[_J["head"], 1] - head_break)
    y_eff = np.where(y > 0.12, y_eff, y)
    chain = ["pelvis", "spine1", "spine2", "spine3", "neck", "head"]
    half = [0.04, 0.035, 0.025, 0.025, 0.015]
    breaks = [(joints[_J[c], 1], h) for c, h in zip(chain[1:], half)]
    w = _chain_weights(y_eff, breaks, [_J[c] for c in chain])
    left = x >= 0
    collar = 0.8 * _smoothstep((ax - 0.07) / 0.07) * _smoothstep((y + 0.04) / 0.08)
    collar *= 1.0 - _smoothstep((y - 0.12) / 0.02)
    w = _blend(w, collar, np.where(left, _J["left_collar"], _J["right_collar"]))
    hip = 0.6 * _smoothstep((ax - 0.03) / 0.08) * _smoothstep((-0.40 - y) / 0.08)
    w = _blend(w, hip, np.where(left, _J["left_hip"], _J["right_hip"]))
    jaw = (_smoothstep((_MOUTH_Y + 0.002 - y) / 0.01) * _smoothstep(z / 0.04) * _smoothstep((y - 0.135) / 0.02))
    w = _blend(w, jaw, _J["jaw"])
    for eye_pt, name in zip(eye_points, ("left_eye", "right_eye")):
        dist = np.linalg.norm(p - eye_pt, axis=1)
        w = _blend(w, 1.0 - _smoothstep((dist - 0.005) / 0.007), _J[name])
    return w


# ----------------------------------------------------------------------------------------------
# limbs (left side; the right side is the mirror image)


def _ellipse_rings(tube: _Tube, around: int, profile_uv: np.ndarray | None = None) -> np.ndarray:
    """Ring points (R, A, 3): centre + ru*pu*u + rv*pv*v; default profile (sin, cos) of (k+0.5)/A turns."""
    if profile_uv is None:
        theta = 2 * np.pi * (np.arange(around) + 0.5) / around
        profile_uv = np.broadcast_to(np.stack([np.sin(theta), np.cos(theta)], -1), (len(tube.s), around, 2))
    pu = profile_uv[..., 0] * tube.radii[:, :1]
    pv = profile_uv[..., 1] * tube.radii[:, 1:]
    return tube.centres[:, None] + pu[..., None] * tube.u[:, None] + pv[..., None] * tube.v[:, None]


def _closed_tube(tube: _Tube, rings: np.ndarray, weights_per_ring: np.ndarray, girth: float) -> _Part:
    """A tube closed by a pole at each end; weights_per_ring (R + 2, 55) rows: rings, start, end."""
    R, A = rings.shape[:2]
    verts = np.concatenate([rings.reshape(-1, 3), tube.start[None], tube.end[None]])
    ids = np.arange(R * A).reshape(R, A)
    faces = [_band(ids[i], ids[i + 1]) for i in range(R - 1)]
    faces += [_fan(R * A, ids[0], at_start=True), _fan(R * A + 1, ids[-1], at_start=False)]
    weights = np.concatenate([np.repeat(weights_per_ring[:R], A, axis=0), weights_per_ring[R:]])
    axis = np.concatenate([np.repeat(tube.centres, A, axis=0), tube.centres[[0, -1]]])
    part = _Part(verts, np.concatenate(faces), weights, axis, np.full(len(verts), girth))
    part.orient_outward()
    return part


def _build_leg(n_rings: int, around: int) -> _Part:
    joints = joint_positions()
    knots = [(0.085, -0.36, -0.005), (0.085, -0.42, -0.005), (0.086, -0.52, 0.0), (0.088, -0.66, 0.005),
             tuple(joints[_J["left_knee"]]), (0.090, -0.93, -0.012), (0.088, -1.08, -0.030),
             tuple(joints[_J["left_ankle"]]), (0.085, -1.28, -0.045)]
    r = [0.060, 0.085, 0.080, 0.066, 0.050, 0.055, 0.042, 0.033, 0.030]
    tube = _sweep(knots, np.stack([r, r], 1), n_rings, ref=(0.0, 0.0, 1.0))
    rings = _ellipse_rings(tube, around)
    s = np.concatenate([tube.s, [0.0, tube.s[-1] + 0.03]])
    w = _chain_weights(s, [(tube.knot_s[4], 0.05), (tube.knot_s[7], 0.03)],
                       [_J["left_hip"], _J["left_knee"], _J["left_ankle"]])
    y = np.concatenate([tube.centres[:, 1], [tube.start[1], tube.end[1]]])
    w = _blend(w, 0.6 * _smoothstep((y + 0.48) / 0.10), _J["pelvis"])
    return _closed_tube(tube, rings, w, girth=0.06)


def _build_foot(n_rings: int, around: int) -> _Part:
    # z, centre x, top y, half width
    table = np.array([
        [-0.095, 0.078, -1.262, 0.030],
        [-0.065, 0.078, -1.235, 0.034],
        [-0.030, 0.080, -1.200, 0.037],
        [0.020, 0.084, -1.228, 0.042],
        [0.070, 0.088, -1.262, 0.048],
        [0.110, 0.090, -1.280, 0.050],
        [0.145, 0.087, -1.290, 0.047],
        [0.180, 0.080, -1.298, 0.042],
    ])
    knots = np.stack([table[:, 1], 0.5 * (table[:, 2] + _FLOOR_Y), table[:, 0]], 1)
    radii = np.stack([0.5 * (table[:, 2] - _FLOOR_Y), table[:, 3]], 1)
    tube = _sweep(knots, radii, n_rings, ref=(0.0, 1.0, 0.0))
    theta = 2 * np.pi * (np.arange(around) + 0.5) / around
    su, cv = np.sin(theta), np.cos(theta)
    # flat sole: the lower half is a squarer superellipse
    pu = np.where(su < 0, -np.abs(su) ** 0.45, su)
    pv = np.sign(cv) * np.abs(cv) ** np.where(su < 0, 0.6, 1.0)
    rings = _ellipse_rings(tube, around, np.broadcast_to(np.stack([pu, pv], -1), (n_rings, around, 2)))
    # toes: the lateral (+x) side recedes so the big toe leads
    xc = np.interp(rings[..., 2], table[:, 0], table[:, 1])
    wid = np.interp(rings[..., 2], table[:, 0], table[:, 3])
    lateral = np.clip((rings[..., 0] - xc) / wid, 0.0, 1.0)
    rings[..., 2] -= 0.022 * lateral * _smoothstep((rings[..., 2] - 0.11) / 0.06)
    s_z = np.concatenate([tube.centres[:, 2], [tube.start[2], tube.end[2]]])
    foot_z = joint_positions()[_J["left_foot"], 2]
    w = _chain_weights(s_z, [(foot_z - 0.005, 0.03)], [_J["left_ankle"], _J["left_foot"]])
    part = _closed_tube(tube, rings, w, girth=0.02)
    v = part.verts
    part.named["LBigToe"] = len(v) - 1  # toe-end pole: front-most point, on the medial side
    small = np.array([0.123, _FLOOR_Y + 0.015, 0.128])
    heel = np.array([0.078, _FLOOR_Y + 0.006, -0.090])
    part.named["LSmallToe"] = int(np.argmin(np.linalg.norm(v - small, axis=1)))
    part.named["LHeel"] = int(np.argmin(np.linalg.norm(v - heel, axis=1)))
    return part


def _build_thumb(n_rings: int, around: int) -> _Part:
    joints = joint_positions()
    wrist = joints[_J["left_wrist"]]
    th = _hand_layout()["thumb"]
    t1, t2, t3 = th["joints"]
    knots = wrist + np.stack([th["base"], t1, t1 + 0.021 * th["dir1"], t2, t3, th["tip"]])
    r = np.array([[0.012, 0.012], [0.016, 0.017], [0.0135, 0.014], [0.011, 0.0115], [0.0095, 0.010], [0.008, 0.0085]])
    spacing = [0.01, 0.008, 0.007, 0.006, 0.006, 0.005]
    tube = _sweep(knots, r, n_rings, ref=(0.0, 1.0, 0.0), spacing=spacing)
    rings = _ellipse_rings(tube, around)
    s = np.concatenate([tube.s, [0.0, tube.s[-1] + 0.01]])
    w = _chain_weights(s, [(tube.knot_s[1], 0.008), (tube.knot_s[3], 0.007), (tube.knot_s[4], 0.006)],
                       [_J["left_wrist"], _J["left_thumb1"], _J["left_thumb2"], _J["left_thumb3"]])
    part = _closed_tube(tube, rings, w, girth=0.015)
    part.named["lthumb"] = len(part.verts) - 1
    return part


def _build_arm(n_rings: int, finger_rings: int) -> _Part:
    """Arm, palm and the four long fingers as one closed surface (32 around the arm, 8 per finger)."""
    A, FA = 32, 8
    joints = joint_positions()
    wrist = joints[_J["left_wrist"]]
    hand = _hand_layout()
    palm_z, width = float(hand["palm"]["z"]), float(hand["palm"]["width"])
    palm_end = wrist + np.array([0.090, -0.002, palm_z])
    knots = np.array([(0.070, 0.058, -0.020), (0.120, 0.066, -0.022), tuple(joints[_J["left_shoulder"]]),
                      (0.250, 0.060, -0.030), (0.330, 0.052, -0.035), tuple(joints[_J["left_elbow"]]),
                      (0.520, 0.042, -0.040), (0.610, 0.038, -0.037), tuple(wrist),
                      tuple(wrist + (0.045, -0.001, palm_z)), tuple(palm_end)])
    radii = [[0.045, 0.045], [0.055, 0.055], [0.056, 0.054], [0.048, 0.048], [0.044, 0.044], [0.037, 0.040],
             [0.038, 0.043], [0.030, 0.036], [0.020, 0.029], [0.016, 0.041], [0.012, width]]
    spacing = [0.02, 0.02, 0.02, 0.022, 0.022, 0.018, 0.02, 0.018, 0.010, 0.008, 0.008]
    tube = _sweep(knots, radii, n_rings, ref=(0.0, 1.0, 0.0), spacing=spacing, round_end=False)
    s_wrist, s_end = tube.knot_s[8], tube.knot_s[-1]
    theta = 2 * np.pi * (np.arange(A) + 0.5) / A
    circle = np.stack([np.sin(theta), np.cos(theta)], -1)
    j = np.where(np.arange(A) < A // 2, np.arange(A), A - 1 - np.arange(A))  # column across the palm
    v_line = 1.0 - 2.0 * j / (A // 2 - 1)
    rect = np.stack([np.sign(np.sin(theta)), v_line], -1)
    beta = _smoothstep((tube.s - s_wrist) / (s_end - s_wrist))[:, None, None]
    rings = _ellipse_rings(tube, A, (1 - beta) * circle + beta * rect)
    # knuckle line: the little-finger side ends further back
    knuckle_x = np.interp(v_line, [-1.0, -0.8, -0.267, 0.267, 0.8, 1.0],
                          [0.077, 0.080, 0.088, 0.092, 0.090, 0.089]) - 0.090
    ramp = np.clip((tube.s - s_wrist) / (s_end - s_wrist), 0.0, 1.0) ** 2
    rings[..., 0] += ramp[:, None] * knuckle_x[None]

    verts = [rings.reshape(-1, 3), tube.start[None]]
    start_pole = n_rings * A
    ids = np.arange(n_rings * A).reshape(n_rings, A)
    faces = [_band(ids[i], ids[i + 1]) for i in range(n_rings - 1)] + [_fan(start_pole, ids[0], at_start=True)]
    s_arm = np.concatenate([tube.s, [0.0]])
    w_arm = _chain_weights(s_arm, [(tube.knot_s[2], 0.045), (tube.knot_s[5], 0.035), (s_wrist, 0.02)],
                           [_J["left_collar"], _J["left_shoulder"], _J["left_elbow"], _J["left_wrist"]])
    weights = [np.concatenate([np.repeat(w_arm[:-1], A, axis=0), w_arm[-1:]])]
    finger_of_col = j // 4
    to_finger = 0.5 * _smoothstep((tube.s - (s_end - 0.015)) / 0.015)
    amount = np.repeat(to_finger, A)
    col_joint = np.array([_J[f"left_{_PALM_FINGERS[c]}1"] for c in finger_of_col])
    weights[0][: n_rings * A] = _blend(weights[0][: n_rings * A], amount, np.tile(col_joint, n_rings))
    axis = [np.repeat(tube.centres, A, axis=0), tube.start[None]]
    named: dict[str, int] = {}
    next_id = n_rings * A + 1
    last = ids[-1]
    # distal cap: each finger is a tube on 4 dorsal + 4 palmar knuckle vertices; webs close the gaps
    for gap in (3, 7, 11):
        d0, d1, p0, p1 = last[gap], last[gap + 1], last[A - 1 - gap], last[A - 2 - gap]
        faces.append(np.array([[d0, d1, p1], [d0, p1, p0]]))
    for fi, name in enumerate(_PALM_FINGERS):
        cols = np.arange(4 * fi, 4 * fi + 4)
        base_ring = np.concatenate([last[cols], last[A - 1 - cols[::-1]]])
        geo = hand[name]
        base = rings[-1][np.concatenate([cols, A - 1 - cols[::-1]])].mean(0)
        mcp, pip, dip = wrist + geo["joints"]
        tip = wrist + geo["tip"]
        fknots = np.stack([base, mcp + 0.013 * geo["dir"], pip, dip, tip])
        fr = np.array([[0.0088, 0.0088], [0.0082, 0.0085], [0.0076, 0.008], [0.0066, 0.007], [0.0062, 0.0065]])
        if name == "pinky":
            fr *= 0.88
        ftube = _sweep(fknots, fr, finger_rings, ref=(0.0, 1.0, 0.0), spacing=[0.007, 0.007, 0.007, 0.006, 0.005],
                       round_start=False)
        theta_f = 2 * np.pi * (np.arange(FA) + 0.5) / FA
        frings = _ellipse_rings(ftube, FA, np.broadcast_to(np.stack([np.sin(theta_f), np.cos(theta_f)], -1),
                                                          (finger_rings, FA, 2)))
        fids = next_id + np.arange(finger_rings * FA).reshape(finger_rings, FA)
        pole = next_id + finger_rings * FA
        next_id = pole + 1
        verts += [frings.reshape(-1, 3), tip[None]]
        axis += [np.repeat(ftube.centres, FA, axis=0), ftube.centres[-1:]]
        faces.append(_band(base_ring, fids[0]))
        faces += [_band(fids[i], fids[i + 1]) for i in range(finger_rings - 1)]
        faces.append(_fan(pole, fids[-1], at_start=False))
        s_f = np.concatenate([ftube.s, [ftube.s[-1] + 0.005]])
        wf = _chain_weights(s_f, [(ftube.knot_s[2], 0.006), (ftube.knot_s[3], 0.005)],
                            [_J[f"left_{name}{k}"] for k in (1, 2, 3)])
        wf = _blend(wf, 0.5 * (1.0 - _smoothstep(s_f / 0.012)), _J["left_wrist"])
        weights.append(np.concatenate([np.repeat(wf[:-1], FA, axis=0), wf[-1:]]))
        named[f"l{name}"] = pole
    verts_arr = np.concatenate(verts)
    girth = 0.05 - 0.035 * _smoothstep((verts_arr[:, 0] - wrist[0]) / 0.03)  # hands stay slim
    part = _Part(verts_arr, np.concatenate(faces), np.concatenate(weights), np.concatenate(axis), girth, named)
    part.orient_outward()
    return part


# ----------------------------------------------------------------------------------------------
# regressor, landmarks, blend shapes


def _convex_weights(points: np.ndarray, target: np.ndarray, sigma: float) -> np.ndarray | None:
    """Positive weights near a Gaussian prior whose weighted mean of points is target (max-entropy tilt)."""
    diff = points - target
    logp0 = -np.sum(diff**2, axis=1) / (2 * sigma**2)
    lam = np.zeros(3)

    def objective(lam_: np.ndarray) -> tuple[float, np.ndarray]:
        z = logp0 + diff @ lam_
        m = z.max()
        p = np.exp(z - m)
        return m + np.log(p.sum()), p / p.sum()

    f, p = objective(lam)
    for _ in range(40):  # Newton; a target outside the hull sends lambda to infinity
        g = p @ diff
        if np.linalg.norm(g) < 1e-7:
            return p
        H = (diff * p[:, None]).T @ diff - np.outer(g, g) + 1e-12 * np.eye(3)
        step = np.linalg.solve(H, g)
        t = 1.0
        while t > 1e-8:
            f_new, p_new = objective(lam - t * step)
            if f_new <= f - 1e-4 * t * (g @ step):
                break
            t *= 0.5
        else:
            return None
        lam, f, p = lam - t * step, f_new, p_new
    return p if np.linalg.norm(p @ diff) < 1e-6 else None


def _joint_regressor(verts: np.ndarray, joints: np.ndarray) -> np.ndarray:
    reg = np.zeros((NUM_JOINTS, len(verts)))
    for j, target in enumerate(joints):
        radius = 0.015 if j >= 25 else 0.045
        for _ in range(12):
            cand = np.where(np.linalg.norm(verts - target, axis=1) < radius)[0]
            w = _convex_weights(verts[cand], target, radius / 2) if len(cand) >= 8 else None
            if w is not None:
                reg[j, cand] = w
                break
            radius *= 1.4
        else:
            raise RuntimeError(f"joint {JOINT_NAMES[j]} is outside the stand-in mesh")
    return reg


def _landmark_targets() -> tuple[np.ndarray, np.ndarray]:
    """51 static face landmarks (68-point order without the jaw line) as (x, y) on the face front."""
    brow_r = [(-0.055, 0.298), (-0.045, 0.304), (-0.034, 0.306), (-0.022, 0.305), (-0.011, 0.302)]
    brow_l = [(-x, y) for x, y in brow_r[::-1]]
    bridge = [(0.0, 0.283), (0.0, 0.272), (0.0, 0.261), (0.0, _NOSE_Y)]
    nostrils = [(-0.014, 0.236), (-0.007, 0.234), (0.0, 0.233), (0.007, 0.234), (0.014, 0.236)]
    eye_r = [(-0.046, 0.283), (-0.038, 0.287), (-0.027, 0.287), (-0.019, 0.282), (-0.027, 0.279), (-0.038, 0.279)]
    eye_l = [(0.019, 0.282), (0.027, 0.287), (0.038, 0.287), (0.046, 0.283), (0.038, 0.279), (0.027, 0.279)]
    m = _MOUTH_Y
    mouth_outer = [(-0.024, m), (-0.015, m + 0.005), (-0.006, m + 0.008), (0.0, m + 0.007), (0.006, m + 0.008),
                   (0.015, m + 0.005), (0.024, m), (0.015, m - 0.007), (0.006, m - 0.010), (0.0, m - 0.011),
                   (-0.006, m - 0.010), (-0.015, m - 0.007)]
    mouth_inner = [(-0.019, m), (-0.007, m + 0.002), (0.0, m + 0.002), (0.007, m + 0.002), (0.019, m),
                   (0.007, m - 0.002), (0.0, m - 0.002), (-0.007, m - 0.002)]
    pts = np.array(brow_r + brow_l + bridge + nostrils + eye_r + eye_l + mouth_outer + mouth_inner)
    a, _, _, _ = _trunk_profile(pts[:, 1])
    theta = np.arcsin(np.clip(pts[:, 0] / a, -0.99, 0.99))
    return pts[:, 1], theta


def _surface_point(grid: _TrunkGrid, y: float, theta: float, face_offset: int,
                   faces: np.ndarray) -> tuple[int, np.ndarray]:
    """Face index and barycentric coordinates of the trunk surface point at height y, angle theta."""
    A = _TRUNK_AROUND
    fi = float(np.interp(y, grid.ring_y, np.arange(len(grid.ring_y))))
    i = int(min(max(np.floor(fi), 0), len(grid.ring_y) - 2))
    t = fi - i
    kf = (theta / (2 * np.pi) * A - 0.5) % A
    k = int(np.floor(kf)) % A
    s = kf - np.floor(kf)
    if (i, k) in grid.removed:  # the mouth opening: use the lip above or below it
        i, t = (i + 1, 0.05) if t >= 0.5 else (i - 1, 0.95)
    q = np.array([s, t])
    for face, ids, params in grid.quads[(i, k)]:
        m = np.stack([params[1] - params[0], params[2] - params[0]], 1)
        l1, l2 = np.linalg.solve(m, q - params[0])
        bary = np.array([1 - l1 - l2, l1, l2])
        if bary.min() >= -1e-9:
            bary = np.clip(bary, 0.0, None)
            order = [list(ids).index(vid) for vid in faces[face]]
            return face + face_offset, bary[order] / bary.sum()
    raise RuntimeError("landmark outside its quad")


def _landmarks(grid: _TrunkGrid, trunk_faces: np.ndarray,
               face_offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """lmk_faces_idx (51,), lmk_bary_coords (51, 3), dynamic_lmk_faces_idx (79, 17), its bary (79, 17, 3)."""
    ys, thetas = _landmark_targets()
    if len(ys) != NUM_STATIC_LANDMARKS:
        raise RuntimeError(f"{len(ys)} static face landmarks, expected {NUM_STATIC_LANDMARKS}")
    static = [_surface_point(grid, y, th, face_offset, trunk_faces) for y, th in zip(ys, thetas)]
    lmk_faces = np.array([f for f, _ in static], dtype=np.int64)
    lmk_bary = np.stack([b for _, b in static]).astype(np.float32)
    phi_max = np.deg2rad(80.0)
    phi = np.linspace(-phi_max, phi_max, NUM_CONTOUR_LANDMARKS)
    y_contour = 0.158 + 0.075 * (np.abs(phi) / phi_max) ** 1.6
    dyn_faces = np.zeros((NUM_CONTOUR_BINS, NUM_CONTOUR_LANDMARKS), dtype=np.int64)
    dyn_bary = np.zeros((NUM_CONTOUR_BINS, NUM_CONTOUR_LANDMARKS, 3), dtype=np.float32)
    half = (NUM_CONTOUR_BINS - 1) // 2
    for b in range(NUM_CONTOUR_BINS):
        # smplx's bin of a head yaw of `a` degrees is a for a in 0..39 and 39 - a for a in -39..-1;
        # the contour follows the silhouette: it slides toward the side that turned to the camera
        yaw = b if b <= half else half - b
        shift = 0.5 * np.deg2rad(yaw)
        for c in range(NUM_CONTOUR_LANDMARKS):
            dyn_faces[b, c], dyn_bary[b, c] = _surface_point(grid, y_contour[c], phi[c] + shift, face_offset,
                                                             trunk_faces)
    return lmk_faces, lmk_bary, dyn_faces, dyn_bary


def _shape_dirs(verts: np.ndarray, axis: np.ndarray, girth: np.ndarray, trunk: np.ndarray) -> np.ndarray:
    """(V, 3, 400): betas 0 height, 1 girth, 2..9 smooth fields; expressions 300..309 on the face."""
    dirs = np.zeros((len(verts), 3, NUM_SHAPE_DIRS))
    pelvis_y = _LEFT_BODY_JOINTS["pelvis"][1]
    dirs[:, 0, 0] = 0.004 * verts[:, 0]
    dirs[:, 1, 0] = 0.0295 * (verts[:, 1] - pelvis_y)  # about 5 cm of height per unit
    dirs[:, 2, 0] = 0.004 * verts[:, 2]
    dirs[:, :, 1] = (verts - axis) * girth[:, None]
    rng = np.random.default_rng(20240611)
    for b in range(2, 10):
        for m in range(3):
            k = rng.normal(size=3) * (3.0 + 2.0 * m)
            dirs[:, :, b] += rng.normal(size=3) * 0.0015 * np.sin(verts @ k + rng.uniform(0, 2 * np.pi))[:, None]
    x, y, z = verts[:, 0], verts[:, 1], verts[:, 2]
    ax, m = np.abs(x), _MOUTH_Y
    mask = _smoothstep((y - 0.15) / 0.02) * _smoothstep((z - 0.03) / 0.03) * trunk
    g = lambda cx, cy, sx, sy: np.exp(-(((cx) / sx) ** 2) - ((cy) / sy) ** 2)  # noqa: E731
    e = np.zeros((len(verts), 3, 10))
    e[:, 1, 0] = -0.005 * _smoothstep((m + 0.002 - y) / 0.01)  # jaw drop
    corner = g(ax - 0.024, y - m, 0.01, 0.01)
    e[:, 0, 1], e[:, 1, 1] = 0.003 * np.sign(x) * corner, 0.003 * corner  # smile
    e[:, 1, 2] = 0.003 * np.exp(-(((y - 0.303) / 0.012) ** 2))  # brows up
    e[:, 2, 3] = 0.004 * g(x, y - m, 0.02, 0.012)  # pucker
    cheek = 0.003 * g(ax - 0.04, y - 0.22, 0.02, 0.02)
    e[:, 0, 4], e[:, 2, 4] = np.sign(x) * cheek, cheek  # cheeks out
    e[:, 1, 5] = -0.002 * g(ax - _EYE_X, y - 0.288, 0.012, 0.005)  # lids down
    e[:, 1, 6] = 0.002 * g(x, y - 0.26, 0.015, 0.015)  # nose wrinkle
    e[:, 0, 7] = -0.002 * np.sign(x) * g(ax - 0.02, y - 0.303, 0.012, 0.01)  # frown
    e[:, 0, 8] = 0.003 * g(x, y - m, 0.03, 0.015)  # mouth sideways
    e[:, 0, 9] = 0.003 * np.clip(x / 0.024, -1.5, 1.5) * g(x, y - m, 0.03, 0.012)  # lips stretch
    dirs[:, :, EXPRESSION_OFFSET:EXPRESSION_OFFSET + 10] = e * mask[:, None, None]
    return dirs


def _pose_dirs(verts: np.ndarray, axis: np.ndarray, weights: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(V, 3, 486): a few millimetres of bulge around bent elbows and knees, zero elsewhere."""
    dirs = np.zeros((len(verts), 3, NUM_POSE_BASIS))
    for name in ("left_elbow", "right_elbow", "left_knee", "right_knee"):
        j = _J[name]
        near = np.linalg.norm(verts - joints[j], axis=1)
        owner = weights[:, [j, parents()[j]]].sum(1) > 0.5
        c = 0.003 * np.clip(1.0 - near / 0.07, 0.0, None) ** 2 * owner
        radial = verts - axis
        radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
        for e in (0, 4, 8):
            dirs[:, :, (j - 1) * 9 + e] = -c[:, None] * radial
    return dirs


def _hand_means() -> tuple[np.ndarray, np.ndarray]:
    """A gentle finger curl (right hand: flexion about +z); the left hand is its mirror image."""
    curl = {"index": (0.08, 0.18, 0.12), "middle": (0.12, 0.22, 0.15), "pinky": (0.18, 0.28, 0.18),
            "ring": (0.15, 0.25, 0.16)}
    right = []
    for finger in _FINGERS:
        if finger == "thumb":
            thumb_dir = _hand_layout()["thumb"]["dir1"] * np.array([-1.0, 1.0, 1.0])
            axis = _normalize(np.array([thumb_dir[2], 0.0, -thumb_dir[0]]))
            right += [a * axis for a in (0.10, 0.15, 0.12)]
        else:
            right += [np.array([0.0, 0.0, a]) for a in curl[finger]]
    right_arr = np.concatenate(right)
    left_arr = (right_arr.reshape(15, 3) * np.array([1.0, -1.0, -1.0])).reshape(-1)
    return left_arr.astype(np.float32), right_arr.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# assembly

_LEG_RINGS, _LEG_AROUND = 46, 24
_FOOT_RINGS, _FOOT_AROUND = 20, 20
_ARM_RINGS, _FINGER_RINGS = 38, 13
_THUMB_RINGS, _THUMB_AROUND = 13, 8


def build_standin_arrays() -> dict[str, np.ndarray]:
    """Every array smplx reads from SMPLX_NEUTRAL.npz, for a deterministic human-shaped stand-in."""
    left_parts = [_build_leg(_LEG_RINGS, _LEG_AROUND), _build_foot(_FOOT_RINGS, _FOOT_AROUND),
                  _build_arm(_ARM_RINGS, _FINGER_RINGS), _build_thumb(_THUMB_RINGS, _THUMB_AROUND)]
    side = sum(len(p.verts) for p in left_parts)
    trunk_budget = NUM_VERTICES - 2 * side
    n_rings = (trunk_budget - 3) // _TRUNK_AROUND
    n_pad = trunk_budget - 3 - n_rings * _TRUNK_AROUND
    trunk, grid = _build_trunk(n_rings, n_pad)
    right_parts = [p.mirrored() for p in left_parts]
    parts = [trunk] + left_parts + right_parts

    offsets = np.cumsum([0] + [len(p.verts) for p in parts])
    verts = np.concatenate([p.verts for p in parts])
    faces = np.concatenate([p.faces + o for p, o in zip(parts, offsets)])
    weights = np.concatenate([p.weights for p in parts])
    axis = np.concatenate([p.axis for p in parts])
    girth = np.concatenate([p.girth for p in parts])
    trunk_mask = np.zeros(len(verts))
    trunk_mask[: len(trunk.verts)] = 1.0
    if len(verts) != NUM_VERTICES or len(faces) != NUM_FACES:
        raise RuntimeError(f"stand-in has {len(verts)} vertices / {len(faces)} faces")
    named = {}
    for p, o in zip(parts, offsets):
        for k, i in p.named.items():
            if k in KEYPOINT_VERTEX_IDS:
                named[k] = int(i + o)
    missing = set(KEYPOINT_VERTEX_IDS) - set(named)
    if missing:
        raise RuntimeError(f"keypoint vertices not placed: {sorted(missing)}")

    joints = joint_positions()
    lmk_faces, lmk_bary, dyn_faces, dyn_bary = _landmarks(grid, trunk.faces, face_offset=0)
    shapedirs = _shape_dirs(verts, axis, girth, trunk_mask)
    posedirs = _pose_dirs(verts, axis, weights, joints)
    regressor = _joint_regressor(verts, joints)

    # renumber vertices so the keypoint vertices carry the ids smplx looks up
    perm = np.arange(NUM_VERTICES)  # new id -> old id
    where = np.arange(NUM_VERTICES)  # old id -> new id
    for name, new_id in KEYPOINT_VERTEX_IDS.items():
        old = named[name]
        cur = where[old]
        other = perm[new_id]
        perm[new_id], perm[cur] = old, other
        where[old], where[other] = new_id, cur
    hands_meanl, hands_meanr = _hand_means()
    kintree = np.stack([np.array(parents()), np.arange(NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    return {
        "v_template": verts[perm].astype(np.float32),
        "f": where[faces].astype(np.int32),
        "shapedirs": shapedirs[perm].astype(np.float32),
        "posedirs": posedirs[perm].astype(np.float32),
        "J_regressor": regressor[:, perm].astype(np.float32),
        "kintree_table": kintree,
        "weights": weights[perm].astype(np.float32),
        "hands_componentsl": np.eye(45, dtype=np.float32),
        "hands_componentsr": np.eye(45, dtype=np.float32),
        "hands_meanl": hands_meanl,
        "hands_meanr": hands_meanr,
        "lmk_faces_idx": lmk_faces,
        "lmk_bary_coords": lmk_bary,
        "dynamic_lmk_faces_idx": dyn_faces,
        "dynamic_lmk_bary_coords": dyn_bary,
    }


def write_standin_smplx(path: str | os.PathLike) -> Path:
    """Write the stand-in model to path (an .npz smplx can load; parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = build_standin_arrays()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    # an .npz is a zip of .npy files; deflate level 1 keeps the mostly-zero blend shapes small and fast
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, array, allow_pickle=False)
    tmp.replace(path)
    LOG.info("wrote stand-in SMPL-X model %s", path)
    return path
