"""REP 155 (ROS4HRI) TF frames and joint values of one person, from a PersonResult.

Needs numpy, scipy and geometry_msgs only (no hri_msgs). See docs/REP155.md for the full picture.

Ids: REP 155 ids are strings, and a ROS 2 topic name token may not start with a digit
(``/humans/bodies/3/roi`` is not a valid name), so :func:`body_id` maps track id 3 to ``"h4w00003"``:
``h4w`` + the track id zero-padded to 5 digits (wider ids simply get longer; the mapping is
one-to-one and stable for the life of the track). :func:`face_id` gives the same string: faces
and bodies are separate id spaces in REP 155 (``/humans/faces/<id>``, ``face_<id>``), and the
body <-> face association is published on ``/humans/candidate_matches`` anyway.

Frames of one person (every name below takes the optional ``prefix``; ``<cam>`` is
``header.frame_id``, the camera optical frame, x right, y down, z forward)::

    <cam>
      body_<id>            origin: midpoint of L_Hip and R_Hip; z: hips midpoint -> Neck (up the
                           body), x: forward (hip line L_Hip - R_Hip crossed with z), y = z x x (left)
        waist_<id>         SMPL-X Spine_1 joint       \
        torso_<id>         SMPL-X Spine_3 joint        |
        head_<id>          SMPL-X Head joint           |  REP link axes: the SMPL-X global joint
        l_shoulder_<id>    SMPL-X L_Shoulder           |  orientation re-expressed so that at the
        l_elbow_<id>       SMPL-X L_Elbow              |  SMPL-X rest pose every link has the body's
        l_hip_<id>         SMPL-X L_Hip                |  axes: x forward, y left, z up
        l_knee_<id>        SMPL-X L_Knee               |  (R_link = R_joint @ SMPLX_TO_REP)
        l_ankle_<id>       SMPL-X L_Ankle             /   (and r_* for the right side)
        l_wrist_<id>       SMPL-X L_Wrist, SMPL-X joint axes (the existing wrist frame, unchanged)
          l_index_1_<id> -> l_index_2_<id> -> l_index_3_<id>, ... (15 finger frames, as frames.py)
        r_wrist_<id>       and its 15 finger frames
      face_<id>            origin: midpoint of L_Eye and R_Eye (about the sellion); x out of the
                           face, z towards the scalp, y to the face's left (SMPL-X Head orientation)
        gaze_<id>          same origin, optical convention: z along the face's x (no gaze
                           estimate), x to the face's right, y down
      smplx_pelvis_<id>    (optional, :func:`smplx_pelvis_transform`) the former ``body_<id>``:
                           SMPL-X pelvis position and orientation, SMPL-X axes (x left, y up,
                           z forward of the body)

Wrists and fingers keep the SMPL-X joint axes of frames.py (their world poses are those of the
existing frames; only the wrists' parent changes, from the SMPL-X pelvis to ``body_<id>``), so a
consumer of ``l_index_3_<id>`` sees no change.
"""
from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import numpy as np
from geometry_msgs.msg import TransformStamped
from scipy.spatial.transform import Rotation

from h4w_core.model.joint_tables import (
    LEFT_FINGERS,
    LEFT_WRIST,
    PELVIS,
    RIGHT_FINGERS,
    RIGHT_WRIST,
    SKELETON_JOINT_NAMES,
    joint_indices,
)
from h4w_ros.messages import stamped_transforms

BODY_FRAME = "body_{}"
FACE_FRAME = "face_{}"
GAZE_FRAME = "gaze_{}"
SMPLX_PELVIS_FRAME = "smplx_pelvis_{}"
ID_PREFIX = "h4w"

# Columns: the REP link axes (x forward, y left, z up) in SMPL-X joint axes (x left, y up, z forward)
SMPLX_TO_REP = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
# Columns: the gaze axes (x right, y down, z forward: optical) in face axes (x forward, y left, z up)
FACE_TO_GAZE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])

# REP 155 recommended links (except the wrists, which come with the hands) -> SMPL-X skeleton joint
REP_LINKS: tuple[tuple[str, str], ...] = (
    ("waist", "Spine_1"), ("torso", "Spine_3"), ("head", "Head"),
    ("l_shoulder", "L_Shoulder"), ("r_shoulder", "R_Shoulder"),
    ("l_elbow", "L_Elbow"), ("r_elbow", "R_Elbow"),
    ("l_hip", "L_Hip"), ("r_hip", "R_Hip"),
    ("l_knee", "L_Knee"), ("r_knee", "R_Knee"),
    ("l_ankle", "L_Ankle"), ("r_ankle", "R_Ankle"),
)
_LINK_JOINTS = np.array(joint_indices(*(j for _, j in REP_LINKS), table=SKELETON_JOINT_NAMES), dtype=np.intp)
_S = {name: i for i, name in enumerate(SKELETON_JOINT_NAMES)}
_L_HIP, _R_HIP, _NECK, _L_EYE, _R_EYE = joint_indices("L_Hip", "R_Hip", "Neck", "L_Eye", "R_Eye")
_HEAD = _S["Head"]

# Joints of the human_description URDF (ros4hri), in the order hri_fullbody publishes them
REP_JOINT_NAMES: tuple[str, ...] = (
    "waist", "r_head", "y_head", "p_head",
    "l_y_shoulder", "l_p_shoulder", "l_r_shoulder", "l_elbow",
    "r_y_shoulder", "r_p_shoulder", "r_r_shoulder", "r_elbow",
    "l_y_hip", "l_p_hip", "l_r_hip", "l_knee",
    "r_y_hip", "r_p_hip", "r_r_hip", "r_knee",
)

_EPS = 1e-9


def body_id(track_id: int, index: int | None = None) -> str:
    """REP 155 body id of a person: ``h4w`` + the track id zero-padded to 5 digits (3 -> 'h4w00003').

    Untracked people (track_id < 0) get ``h4wu<index>`` from their index in the frame when one is
    given (not stable across frames: only for untracked pipelines); otherwise ValueError.
    """
    track_id = int(track_id)
    if track_id >= 0:
        return f"{ID_PREFIX}{track_id:05d}"
    if index is None:
        raise ValueError(f"untracked person (track_id {track_id}) has no stable REP 155 id; pass its index")
    return f"{ID_PREFIX}u{int(index)}"


def face_id(track_id: int, index: int | None = None) -> str:
    """REP 155 face id of a person: the same string as :func:`body_id` (separate id spaces)."""
    return body_id(track_id, index)


def frame_name(template: str, ident: str, prefix: str = "") -> str:
    """``prefix + template.format(ident)``, e.g. frame_name(BODY_FRAME, 'h4w00003') -> 'body_h4w00003'."""
    return f"{prefix}{template.format(ident)}"


def _unit(v: np.ndarray) -> tuple[np.ndarray, float]:
    n = float(np.linalg.norm(v))
    return (v / n if n > _EPS else np.zeros(3)), n


def _orthonormal(r: np.ndarray) -> np.ndarray:
    """Nearest rotation (polar factor) of a 3x3 matrix (float32 rotations are orthogonal to ~1e-7)."""
    u, _, vt = np.linalg.svd(np.asarray(r, dtype=np.float64))
    out = u @ vt
    if np.linalg.det(out) < 0:
        u[:, -1] = -u[:, -1]
        out = u @ vt
    return out


def body_basis(result) -> tuple[np.ndarray, np.ndarray]:
    """(origin (3,), rotation (3, 3)) of ``body_<id>`` in the camera frame; columns x, y, z.

    Origin: midpoint of L_Hip and R_Hip. z: unit hips midpoint -> Neck. x: (L_Hip - R_Hip) x z,
    normalised (forward, orthogonal to z by construction); y = z x x. If the hip line is parallel
    to z, x falls back to the SMPL-X pelvis' forward axis made orthogonal to z; if the neck sits on
    the hips, the whole basis is the SMPL-X pelvis orientation in REP axes.
    """
    joints = np.asarray(result.joints, dtype=np.float64)
    pelvis_rep = _orthonormal(np.asarray(result.skeleton_rotations[PELVIS], dtype=np.float64)) @ SMPLX_TO_REP
    origin = 0.5 * (joints[_L_HIP] + joints[_R_HIP])
    z, z_len = _unit(joints[_NECK] - origin)
    if z_len <= 1e-6:
        return origin, pelvis_rep
    x, x_len = _unit(np.cross(joints[_L_HIP] - joints[_R_HIP], z))
    if x_len <= 1e-6:
        forward = pelvis_rep[:, 0]
        x, x_len = _unit(forward - np.dot(forward, z) * z)
        if x_len <= 1e-6:
            return origin, pelvis_rep
    y = np.cross(z, x)
    return origin, np.stack([x, y, z], axis=1)


def face_basis(result) -> tuple[np.ndarray, np.ndarray]:
    """(origin, rotation) of ``face_<id>`` in the camera frame: eyes midpoint, SMPL-X Head axes in REP axes."""
    joints = np.asarray(result.joints, dtype=np.float64)
    origin = 0.5 * (joints[_L_EYE] + joints[_R_EYE])
    rotation = _orthonormal(np.asarray(result.skeleton_rotations[_HEAD], dtype=np.float64)) @ SMPLX_TO_REP
    return origin, rotation


def face_visible(result) -> bool:
    """True when the face is turned towards the camera (its x axis points less than 90 deg from the
    direction to the camera): a person seen from behind has no REP face."""
    return _faces_camera(face_basis(result))


def _faces_camera(face: tuple[np.ndarray, np.ndarray]) -> bool:
    origin, rotation = face
    return bool(np.dot(rotation[:, 0], -origin) > 0.0)


def _relative(parent_p: np.ndarray, parent_r: np.ndarray, child_p: np.ndarray, child_r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Child poses (K, 3), (K, 3, 3) expressed in one parent pose (3,), (3, 3)."""
    rt = parent_r.T
    return (child_p - parent_p) @ rt.T, np.matmul(rt, child_r)


def _hand_chain(wrist: int, fingers: tuple[int, ...]) -> list[tuple[int, int]]:
    pairs = []
    for start in range(0, len(fingers), 3):
        a, b, c = fingers[start:start + 3]
        pairs += [(a, wrist), (b, a), (c, b)]
    return pairs


_FINGER_TREE = tuple(_hand_chain(LEFT_WRIST, LEFT_FINGERS) + _hand_chain(RIGHT_WRIST, RIGHT_FINGERS))
_FINGER_CHILDREN = np.array([c for c, _ in _FINGER_TREE], dtype=np.intp)
_FINGER_PARENTS = np.array([p for _, p in _FINGER_TREE], dtype=np.intp)
_WRISTS = np.array([LEFT_WRIST, RIGHT_WRIST], dtype=np.intp)

# A frame's poses: the (parent, child) frame names, translations (K, 3) and rotations (K, 3, 3).
# A person's names depend only on the camera frame, its ids and the options, so they are made once
# per such key (at most _NAMES_KEPT keys); a frame's poses go through one quaternion conversion
# and one build.
_Poses = tuple[tuple[tuple[str, str], ...], np.ndarray, np.ndarray]
_NAMES_KEPT = 1024


def _skeleton_frame(joint: int, ident: str, prefix: str) -> str:
    """frames.py's names: lower-cased SMPL-X joint name + _<id> (l_wrist_<id>, l_index_1_<id>, ...)."""
    return f"{prefix}{SKELETON_JOINT_NAMES[joint].lower()}_{ident}"


@functools.lru_cache(maxsize=_NAMES_KEPT)
def _hand_frame_names(ident: str, prefix: str) -> tuple[tuple[str, str], ...]:
    """The wrists under body_<id>, then the finger frames under their parents (_FINGER_TREE order)."""
    body = frame_name(BODY_FRAME, ident, prefix)
    return tuple([(body, _skeleton_frame(int(w), ident, prefix)) for w in _WRISTS]
                 + [(_skeleton_frame(p, ident, prefix), _skeleton_frame(c, ident, prefix)) for c, p in _FINGER_TREE])


@functools.lru_cache(maxsize=_NAMES_KEPT)
def _person_frame_names(camera: str, ident: str, face_ident: str | None, prefix: str, hands: bool,
                        smplx_pelvis: bool) -> tuple[tuple[str, str], ...]:
    """The (parent, child) names of one person's frames, in the order _person_poses gives them."""
    body = frame_name(BODY_FRAME, ident, prefix)
    names = [(camera, body)] + [(body, f"{prefix}{link}_{ident}") for link, _ in REP_LINKS]
    if hands:
        names += _hand_frame_names(ident, prefix)
    if face_ident is not None:
        face = frame_name(FACE_FRAME, face_ident, prefix)
        names += [(camera, face), (face, frame_name(GAZE_FRAME, face_ident, prefix))]
    if smplx_pelvis:
        names.append((camera, frame_name(SMPLX_PELVIS_FRAME, ident, prefix)))
    return tuple(names)


def _skeleton_poses(result) -> tuple[np.ndarray, np.ndarray]:
    """The skeleton's joint positions (55, 3) and global rotations (55, 3, 3), float64."""
    return np.asarray(result.skeleton_joints, dtype=np.float64), np.asarray(result.skeleton_rotations, dtype=np.float64)


def _hand_poses(positions: np.ndarray, rotations: np.ndarray, basis: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The wrists under body_<id>, then the finger frames under their parents (_FINGER_TREE order),
    from the skeleton's float64 positions and rotations (_skeleton_poses)."""
    origin, r_body = basis
    wrist_t, wrist_r = _relative(origin, r_body, positions[_WRISTS], rotations[_WRISTS])
    parent_rt = rotations[_FINGER_PARENTS].transpose(0, 2, 1)
    finger_r = np.matmul(parent_rt, rotations[_FINGER_CHILDREN])
    finger_t = np.matmul(parent_rt, (positions[_FINGER_CHILDREN] - positions[_FINGER_PARENTS])[:, :, None])[:, :, 0]
    return np.concatenate([wrist_t, finger_t]), np.concatenate([wrist_r, finger_r])


def _face_poses(face: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """face_<id> (the face basis) and gaze_<id> under it (same origin, optical axes)."""
    origin, rotation = face
    return np.stack([origin, np.zeros(3)]), np.stack([rotation, FACE_TO_GAZE])


def _person_poses(result, camera: str, ident: str, face_ident: str | None, prefix: str, hands: bool,
                  smplx_pelvis: bool, face: tuple[np.ndarray, np.ndarray] | None = None) -> _Poses:
    """One person's frames (module docstring), parents before children. ``face``: face_basis when known."""
    origin, r_body = body_basis(result)
    skeleton_t, skeleton_r = _skeleton_poses(result)
    link_t, link_r = _relative(origin, r_body, skeleton_t[_LINK_JOINTS], np.matmul(skeleton_r[_LINK_JOINTS], SMPLX_TO_REP))
    translations, rotations = [origin[None], link_t], [r_body[None], link_r]
    if hands:
        hand_t, hand_r = _hand_poses(skeleton_t, skeleton_r, (origin, r_body))
        translations.append(hand_t)
        rotations.append(hand_r)
    if face_ident is not None:
        face_t, face_r = _face_poses(face_basis(result) if face is None else face)
        translations.append(face_t)
        rotations.append(face_r)
    if smplx_pelvis:
        translations.append(skeleton_t[PELVIS][None])
        rotations.append(skeleton_r[PELVIS][None])
    names = _person_frame_names(camera, ident, face_ident, prefix, hands, smplx_pelvis)
    return names, np.concatenate(translations), np.concatenate(rotations)


def hand_transforms_under_body(result, header, body_id: str, prefix: str = "",
                               basis: tuple[np.ndarray, np.ndarray] | None = None) -> list[TransformStamped]:
    """l_wrist_<id> and r_wrist_<id> under body_<id>, then the 15 finger frames of each hand under
    its wrist (frames.py's names and chain, SMPL-X joint axes: the existing frames, re-parented).

    ``basis``: body_<id>'s (origin, rotation) when already computed (:func:`body_basis`).
    """
    translations, rotations = _hand_poses(*_skeleton_poses(result), body_basis(result) if basis is None else basis)
    return stamped_transforms(header.stamp, _hand_frame_names(body_id, prefix), translations, rotations)


def face_transforms(result, header, face_id: str, prefix: str = "") -> list[TransformStamped]:
    """face_<id> under the camera frame and gaze_<id> under face_<id> (same origin, optical axes)."""
    face = frame_name(FACE_FRAME, face_id, prefix)
    names = [(header.frame_id, face), (face, frame_name(GAZE_FRAME, face_id, prefix))]
    return stamped_transforms(header.stamp, names, *_face_poses(face_basis(result)))


def smplx_pelvis_transform(result, header, body_id: str, prefix: str = "") -> TransformStamped:
    """smplx_pelvis_<id> under the camera frame: SMPL-X pelvis position and orientation (SMPL-X axes)."""
    name = frame_name(SMPLX_PELVIS_FRAME, body_id, prefix)
    position = np.asarray(result.skeleton_joints[PELVIS], dtype=np.float64)[None]
    rotation = np.asarray(result.skeleton_rotations[PELVIS], dtype=np.float64)[None]
    return stamped_transforms(header.stamp, [(header.frame_id, name)], position, rotation)[0]


def rep155_transforms(result, header, body_id: str, face_id: str | None = None, prefix: str = "",
                      hands: bool = True) -> list[TransformStamped]:
    """All REP 155 frames of one person (module docstring), parents before children.

    body_<id> under ``header.frame_id``; the 13 links of REP_LINKS under it; with ``hands`` (the
    default) also the wrists and finger frames (:func:`hand_transforms_under_body`: do not call
    both); with a ``face_id``, face_<id> and gaze_<id> (pass None for people whose face is not
    visible, :func:`face_visible`). Stamps are ``header.stamp``.
    """
    return stamped_transforms(header.stamp, *_person_poses(result, header.frame_id, body_id, face_id, prefix, hands, False))


def people_transforms(results: Sequence, header, prefix: str = "", hands: bool = True,
                      smplx_pelvis: bool = True) -> list[TransformStamped]:
    """rep155_transforms of every person of a frame, with ids body_id(track_id, index) and a face
    (face_id) only where face_visible; plus smplx_pelvis_<id> when ``smplx_pelvis``. All of them
    in one quaternion conversion and one build (4 persons facing the camera: 196 transforms)."""
    names: list[tuple[str, str]] = []
    translations, rotations = [], []
    for index, result in enumerate(results):
        ident = body_id(result.track_id, index)
        face = face_basis(result)
        face_ident = face_id(result.track_id, index) if _faces_camera(face) else None
        person_names, person_t, person_r = _person_poses(result, header.frame_id, ident, face_ident, prefix, hands,
                                                         smplx_pelvis, face)
        names += person_names
        translations.append(person_t)
        rotations.append(person_r)
    if not names:
        return []
    return stamped_transforms(header.stamp, names, np.concatenate(translations), np.concatenate(rotations))


# ---- joint values for the human_description URDF ---------------------------------------------------


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2.0 * np.pi) - np.pi)


def _euler(seq: str, r: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():  # gimbal lock (arm hanging straight down): the sum stays right
        warnings.simplefilter("ignore", UserWarning)
        return Rotation.from_matrix(_orthonormal(r)).as_euler(seq)


def _hinge(direction: np.ndarray, frame: np.ndarray) -> float:
    """Angle of a 1-dof joint about the frame's -y that turns its -z onto ``direction`` (world)."""
    d = frame.T @ direction
    return float(np.arctan2(d[0], -d[2]))


def urdf_joint_positions(result, basis: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(20,) joint values (rad) of the human_description URDF, REP_JOINT_NAMES order.

    From the SMPL-X joint orientations (the forward kinematics of the estimated joint angles),
    re-expressed in the URDF's parent links, each decomposed along that URDF's joint axes:
    waist = pitch of Spine_3 in body_<id>; head roll/yaw/pitch (URDF axes x, z, -y) of Head in the
    URDF torso frame (body pitched by the waist); shoulder yaw/pitch/roll (axes z, x, z, mirrored
    for the right arm; the URDF's arm hangs down where SMPL-X's rest arm is horizontal, so the
    SMPL-X shoulder is turned by 90 deg about x first) in the torso frame; hip yaw/roll/pitch (axes
    -z, x, -y) in body_<id>; elbow and knee (1 dof about -y) from the forearm / shin direction
    between the skeleton joints in the upper-arm / thigh link. The 3-dof joints reproduce the
    SMPL-X limb orientations exactly; elbow and knee keep only their flexion. Use the values to
    drive a stick figure or read the posture; h4w publishes the TF frames itself.
    """
    origin, r_body = body_basis(result) if basis is None else basis
    rot = np.asarray(result.skeleton_rotations, dtype=np.float64)
    pos = np.asarray(result.skeleton_joints, dtype=np.float64)

    def rep(name: str) -> np.ndarray:
        return _orthonormal(rot[_S[name]]) @ SMPLX_TO_REP

    chest = r_body.T @ rep("Spine_3")
    waist = float(np.arctan2(chest[0, 2], chest[2, 2]))
    torso = r_body @ _ry(waist)
    head_x, head_z, head_y = _euler("XZY", torso.T @ rep("Head"))
    values = [waist, float(head_x), float(head_z), float(-head_y)]
    for side, reflect in (("L", 1.0), ("R", -1.0)):
        link = torso.T @ rep(f"{side}_Shoulder") @ _rx(reflect * np.pi / 2)
        e1, e2, e3 = _euler("ZXZ", link)
        if reflect * e2 < 0.0:  # the other ZXZ solution, with the abduction of the URDF's sign
            e1, e2, e3 = e1 + np.pi, -e2, e3 + np.pi
        upper = torso @ _rz(e1) @ _rx(e2) @ _rz(e3)
        forearm = pos[_S[f"{side}_Wrist"]] - pos[_S[f"{side}_Elbow"]]
        values += [_wrap(-reflect * e1), _wrap(reflect * e2), _wrap(reflect * e3), _hinge(forearm, upper)]
    for side, reflect in (("L", 1.0), ("R", -1.0)):
        thigh = r_body.T @ rep(f"{side}_Hip")
        e1, e2, e3 = _euler("ZXY", thigh)
        shin = pos[_S[f"{side}_Ankle"]] - pos[_S[f"{side}_Knee"]]
        values += [_wrap(-e1), _wrap(reflect * e2), _wrap(-e3), _hinge(shin, r_body @ thigh)]
    return np.array(values, dtype=np.float64)


def urdf_joint_names(body_id: str) -> list[str]:
    """REP_JOINT_NAMES suffixed with ``_<id>``, as the human_description URDF of that id names them."""
    return [f"{name}_{body_id}" for name in REP_JOINT_NAMES]


__all__ = [
    "BODY_FRAME", "FACE_FRAME", "FACE_TO_GAZE", "GAZE_FRAME", "REP_JOINT_NAMES", "REP_LINKS",
    "SMPLX_PELVIS_FRAME", "SMPLX_TO_REP", "body_basis", "body_id", "face_basis", "face_id", "face_transforms",
    "face_visible", "frame_name", "hand_transforms_under_body", "people_transforms", "rep155_transforms",
    "smplx_pelvis_transform", "urdf_joint_names", "urdf_joint_positions",
]
